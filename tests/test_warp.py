"""Stateless tensor ops: warping, projection and synthesis against exact expectations."""

import numpy as np
import pytest
import torch

from memc.motion import occlusion
from memc.motion.project import fill_holes, forward_splat, project_flow
from memc.motion.synthesize import synthesize
from memc.motion.warp import backward_warp, sample_planes, warp_rows
from memc.tensors import Padder, resize_flow, to_image, to_tensor


def rand(*shape: int) -> torch.Tensor:
    """Seeded here, not through torch's global generator (shared with every other test)."""
    return torch.rand(*shape, generator=torch.Generator().manual_seed(0))


def constant_flow(dx: float, dy: float, h: int = 24, w: int = 32) -> torch.Tensor:
    return torch.tensor([dx, dy]).view(1, 2, 1, 1).expand(1, 2, h, w).contiguous()


def test_zero_flow_is_identity():
    image = rand(2, 3, 24, 32)
    # not bit-exact: grid_sample normalizes coordinates to [-1, 1] and back (float32 rounding ~1e-6)
    assert torch.allclose(backward_warp(image, torch.zeros(2, 2, 24, 32)), image, atol=1e-5)


def test_integer_shift_is_exact_away_from_borders():
    image = rand(1, 3, 24, 32)
    out = backward_warp(image, constant_flow(3, -2))  # out[y, x] = image[y - 2, x + 3]
    assert torch.allclose(out[..., 2:, :-3], image[..., :-2, 3:], atol=1e-5)
    # border convention: samples past the edge repeat the edge pixel
    assert torch.allclose(out[..., 2:, -1], image[..., :-2, -1], atol=1e-5)


def test_half_pixel_is_bilinear_mean():
    image = rand(1, 1, 8, 8)
    out = backward_warp(image, constant_flow(0.5, 0, 8, 8))
    assert torch.allclose(out[..., :-1], (image[..., :-1] + image[..., 1:]) / 2, atol=1e-6)


def test_resize_flow_scales_each_axis():
    flow = constant_flow(2.0, 3.0, 10, 20)
    big = resize_flow(flow, (30, 80))
    assert big.shape == (1, 2, 30, 80)
    assert torch.allclose(big[0, 0], torch.full((30, 80), 8.0))
    assert torch.allclose(big[0, 1], torch.full((30, 80), 9.0))


def test_padder_round_trip():
    image = rand(1, 3, 61, 97)
    padder = Padder(61, 97, stride=16)
    padded = padder.pad(image)
    assert padded.shape[-2:] == (64, 112)
    assert torch.equal(padder.unpad(padded), image)


def test_tensor_image_round_trip_uint8_and_uint16():
    import numpy as np

    rng = np.random.default_rng(0)
    for dtype, top in ((np.uint8, 255), (np.uint16, 65535)):
        image = rng.integers(0, top + 1, size=(5, 7, 3)).astype(dtype)
        assert np.array_equal(to_image(to_tensor(image), dtype), image)


def test_splat_of_constant_flow_covers_everything_once():
    flow = constant_flow(0.25, 0.75)
    values = rand(1, 2, 24, 32)
    _, coverage = forward_splat(values, flow, torch.ones(1, 1, 24, 32))
    inner = coverage[..., 2:-2, 2:-2]
    assert torch.allclose(inner, torch.ones_like(inner), atol=1e-5)


def test_splat_collision_keeps_consistent_source():
    values = torch.zeros(1, 1, 1, 4)
    values[..., 0] = 1.0  # pixel 0 jumps onto pixel 2, which stays put
    values[..., 2] = 5.0
    flow = torch.zeros(1, 2, 1, 4)
    flow[0, 0, 0, 0] = 2.0
    importance = torch.ones(1, 1, 1, 4)
    importance[..., 2] = 1e-6  # pixel 2 is the inconsistent (occluded) one
    mean, coverage = forward_splat(values, flow, importance)
    assert mean[0, 0, 0, 2] == pytest.approx(1.0, abs=1e-4)
    assert coverage[0, 0, 0, 2] == pytest.approx(2.0)
    assert coverage[0, 0, 0, 0] == 0  # a hole where pixel 0 left


def test_fill_holes_interpolates_from_neighbours():
    values = torch.ones(1, 2, 16, 16) * torch.tensor([3.0, -1.0]).view(1, 2, 1, 1)
    coverage = torch.ones(1, 1, 16, 16)
    coverage[..., 5:9, 5:9] = 0
    values = values * coverage  # holes hold garbage zeros
    filled = fill_holes(values, coverage)
    assert torch.allclose(filled, torch.ones_like(filled) * torch.tensor([3.0, -1.0]).view(1, 2, 1, 1), atol=1e-4)


@pytest.mark.parametrize("t", [0.0, 0.3, 1.0])
def test_projection_of_uniform_motion(t):
    flow_01 = constant_flow(2.0, -1.0)
    flow_10 = -flow_01
    p = project_flow(flow_01, flow_10, t)
    inner = (..., slice(4, -4), slice(4, -4))
    assert torch.allclose(p.flow_t0[inner], -t * flow_01[inner], atol=1e-4)
    assert torch.allclose(p.flow_t1[inner], -(1 - t) * flow_10[inner], atol=1e-4)
    assert p.hole_t0[inner].max() < 1e-4 and p.hole_t1[inner].max() < 1e-4


def test_consistency_error_flags_disagreeing_flows():
    flow_01 = constant_flow(2.0, 0.0)
    assert occlusion.consistency_error(flow_01, -flow_01)[..., 4:-4].max() < 1e-5
    assert occlusion.consistency_error(flow_01, torch.zeros_like(flow_01)).min() == pytest.approx(2.0)


def test_synthesis_with_true_flows_reproduces_translation():
    # a smooth image translating by (4, 2) px per frame; the frame at t = 0.5 is the one moved (2, 1)
    ys, xs = torch.meshgrid(torch.arange(40.0), torch.arange(48.0), indexing="ij")

    def frame(shift_x, shift_y):
        x, y = xs - shift_x, ys - shift_y
        return torch.stack(
            [torch.sin(x / 3) * 0.4 + 0.5, torch.cos(y / 4) * 0.4 + 0.5, torch.sin((x + y) / 5) * 0.4 + 0.5]
        ).unsqueeze(0)

    image0, image1, truth = frame(0, 0), frame(4, 2), frame(2, 1)
    flow_01 = constant_flow(4.0, 2.0, 40, 48)
    flow_10 = -flow_01
    e0 = occlusion.consistency_error(flow_01, flow_10)
    e1 = occlusion.consistency_error(flow_10, flow_01)
    out = synthesize(image0, image1, project_flow(flow_01, flow_10, 0.5), 0.5, e0, e1, flow_01, flow_10)
    inner = (..., slice(6, -6), slice(6, -6))
    assert (out.image[inner] - truth[inner]).abs().max() < 2e-3  # bilinear error on a smooth pattern
    blend = (image0 + image1) / 2
    assert (blend[inner] - truth[inner]).abs().max() > 0.05  # the task is not trivial


def test_sample_planes_takes_any_number_of_points_as_the_band_warp_samples_them():
    """``remap`` refuses maps of 32767 columns or more: 300 x 400 = 120000 points go in rows. A band
    of rows warped by ``warp_rows`` is that band of the whole ``backward_warp``."""
    rng = np.random.default_rng(0)
    image = torch.from_numpy(rng.random((1, 3, 300, 400)).astype(np.float32))
    planes = list(image[0].numpy())
    flow = torch.from_numpy(rng.normal(0, 3, (1, 2, 300, 400)).astype(np.float32))
    whole = backward_warp(image, flow)[0].numpy()
    band = warp_rows(planes, flow[0, :, 100:164], 100, np.empty((3, 64, 400), np.float32))
    assert np.array_equal(band, whole[:, 100:164])
    ys, xs = np.nonzero(rng.random((300, 400)) < 0.9)
    map_x = (flow[0, 0].numpy() + np.arange(400, dtype=np.float32))[ys, xs]
    map_y = (flow[0, 1].numpy() + np.arange(300, dtype=np.float32)[:, None])[ys, xs]
    assert np.array_equal(sample_planes(planes, map_x, map_y), whole[:, ys, xs].T)
