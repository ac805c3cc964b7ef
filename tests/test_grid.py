"""Projection on the half-size grid and its sharpening at the flows' size; the CPU fast paths
(OpenCV remap for ``backward_warp``, OpenCV opening for the still mask) against the torch ones."""

import pytest
import torch

from memc.motion import project, still
from memc.motion.interpolate import pair_flows
from memc.motion.interpolate import project as project_pair
from memc.motion.synthesize import blend_weight
from memc.motion.warp import backward_warp, sample_at
from memc.tensors import resize_flow


def rand(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


def test_remap_path_matches_grid_sample():
    image = rand(2, 5, 37, 53)
    flow = (rand(2, 2, 37, 53, seed=1) - 0.5) * 30  # many samples past the border
    fast = backward_warp(image, flow)  # no gradient: OpenCV remap
    reference = backward_warp(image.clone().requires_grad_(True), flow)  # grid_sample
    assert reference.requires_grad
    assert (fast - reference.detach()).abs().max() < 1e-4


def test_sample_at_matches_backward_warp():
    image = rand(2, 3, 20, 30)
    flow = (rand(2, 2, 20, 30, seed=2) - 0.5) * 8
    batch = torch.tensor([0, 1, 1])
    ys, xs = torch.tensor([3, 10, 19]), torch.tensor([4, 29, 0])
    points = sample_at(image, batch, ys + flow[batch, 1, ys, xs], xs + flow[batch, 0, ys, xs])  # (3, C)
    warped = backward_warp(image, flow)[batch, :, ys, xs]
    assert torch.allclose(points, warped, atol=1e-5)


def test_grid_is_half_size_unless_small():
    assert project.grid_size(720, 1280) == (360, 640)
    assert project.grid_size(181, 321) == (90, 160)
    assert project.grid_size(48, 640) == (48, 640)  # half of 48 is under MIN_GRID_SIDE


@pytest.mark.parametrize("t", [0.25, 0.5])
def test_uniform_motion_on_the_grid_is_exact(t):
    flow_01 = torch.tensor([3.0, -2.0]).view(1, 2, 1, 1).expand(1, 2, 96, 128).contiguous()
    flows = pair_flows(flow_01, -flow_01, grid=True)
    assert flows.grid is not None and flows.grid.flow_01.shape[-2:] == (48, 64)
    assert flows.detail_0.index.numel() == 0  # nothing the grid misses
    warp_t0, warp_t1 = project_pair(flows, t).warp_flows()
    inner = (..., slice(8, -8), slice(8, -8))
    assert warp_t0.shape[-2:] == (96, 128)
    assert torch.allclose(warp_t0[inner], -t * flow_01[inner], atol=1e-4)
    assert torch.allclose(warp_t1[inner], (1 - t) * flow_01[inner], atol=1e-4)


def _small_fast_object() -> tuple[torch.Tensor, torch.Tensor, tuple[float, float], tuple[float, float]]:
    """Flows of a disc of radius 3 px moving (20, 6) px over a background moving (2, 0) px."""
    h, w = 120, 160
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    start, motion = (40.0, 60.0), (20.0, 6.0)
    background = torch.tensor([2.0, 0.0]).view(2, 1, 1)
    disc0 = ((xs - start[0]) ** 2 + (ys - start[1]) ** 2) <= 9
    disc1 = ((xs - start[0] - motion[0]) ** 2 + (ys - start[1] - motion[1]) ** 2) <= 9
    flow_01 = torch.where(disc0, torch.tensor(motion).view(2, 1, 1), background)[None]
    flow_10 = torch.where(disc1, -torch.tensor(motion).view(2, 1, 1), -background)[None]
    return flow_01, flow_10, start, motion


def test_small_fast_object_survives_the_grid():
    flow_01, flow_10, start, motion = _small_fast_object()
    flows = pair_flows(flow_01, flow_10, grid=True)
    assert 0 < flows.detail_0.index.numel() < 0.02 * flow_01[0, 0].numel()  # the disc's pixels and few others
    t = 0.5
    projection = project_pair(flows, t)
    warp_t0, warp_t1 = projection.warp_flows()
    x, y = int(start[0] + t * motion[0]), int(start[1] + t * motion[1])  # the disc's centre at t
    centre = (0, slice(None), slice(y - 2, y + 3), slice(x - 2, x + 3))
    expected_t0 = -t * torch.tensor(motion).view(2, 1, 1)
    # measured 0.61 and 0.20 px (a full-size projection: 0.16); the grid's own splat mixes the
    # disc's inner vectors with the background's a little
    assert (warp_t0[centre] - expected_t0).abs().max() < 1.0
    assert (warp_t1[centre] + expected_t0).abs().max() < 1.0
    # the upsampled grid alone misses it by 7 px: the sharpening is what keeps the disc
    upsampled = resize_flow(projection.flow_t0, flow_01.shape[-2:])
    assert (upsampled[centre] - expected_t0).abs().max() > 5


def test_still_opening_matches_the_torch_one():
    for shape in ((2, 1, 50, 70), (1, 1, 5, 3)):
        mask = rand(*shape, seed=3) > 0.3
        reference = still._box_max(-still._box_max(-mask.float()))  # erode, then dilate, in torch
        assert torch.equal(still._opening(mask), reference)


def test_blend_weight_near_a_small_object_is_sharpened():
    """Where the disc was at frame 0 it has left by t: frame 0 (still showing it there) must lose weight.
    The grid's pooled flows blur that; the full-size arrival check near detail sources restores it."""
    flow_01, flow_10, start, motion = _small_fast_object()
    flows = pair_flows(flow_01, flow_10, grid=True)
    projection = project_pair(flows, 0.5)
    grid = flows.on_grid
    args = (projection, 0.5, grid.error_0, grid.error_1, grid.flow_01, grid.flow_10)
    coarse = torch.nn.functional.interpolate(blend_weight(*args)[0], size=flow_01.shape[-2:], mode="bilinear")
    fine = blend_weight(*args, flows.fine)[0]
    assert fine.shape[-2:] == flow_01.shape[-2:]
    ys, xs = torch.meshgrid(torch.arange(120.0), torch.arange(160.0), indexing="ij")
    left = ((xs - start[0]) ** 2 + (ys - start[1]) ** 2) <= 9  # the disc's place at frame 0
    # measured 0.19 against 0.33 from the grid alone (0.13 for a full-size projection)
    assert fine[0, 0][left].mean() < 0.25 < 0.3 < coarse[0, 0][left].mean()
