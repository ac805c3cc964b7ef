"""The synthesizer's bilateral pick: where the two intermediate flows disagree, one motion that
explains both frames is used alone, so a moving object is drawn once, not twice."""

import numpy as np
import pytest
import torch
from synthetic import Scene, psnr

from memc.motion import synthesize
from memc.motion.synthesize import compose_array
from memc.tensors import resize_flow, to_image, to_tensor

T = 0.5
VELOCITY = (30.0, 0.0)
SIZE = 20


def _square_at_t(scene: Scene) -> tuple[slice, slice]:
    """Pixels well inside the square at time T (its edges are anti-aliased)."""
    x0 = scene.w * 0.5 - SIZE / 2 + VELOCITY[0] * T - VELOCITY[0]
    y0 = scene.h * 0.5 - SIZE / 2
    return slice(int(y0) + 2, int(y0) + SIZE - 2), slice(int(x0) + 2, int(x0) + SIZE - 2)


def _one_side_lost_the_square():
    """A square moving 30 px (more than its size) over a still background; flow_t0 follows it, flow_t1
    has lost it (a wrong vector everywhere, as when frame 1's flow took a neighbour's)."""
    scene = Scene(bg_velocity=(0.0, 0.0), fg_velocity=VELOCITY, size=SIZE)
    rgb0, rgb1, truth = scene.frame_u8(0), scene.frame_u8(1), scene.frame_u8(T)
    rows, cols = _square_at_t(scene)
    flow_t0 = torch.zeros(1, 2, scene.h, scene.w)
    flow_t0[0, 0, rows.start - 3 : rows.stop + 3, cols.start - 3 : cols.stop + 3] = -T * VELOCITY[0]
    flow_t1 = (1 - T) * torch.tensor([-8.0, 6.0]).view(1, 2, 1, 1).expand_as(flow_t0).contiguous()
    mask0 = torch.full((1, 1, scene.h, scene.w), 1 - T)  # no visibility says which side is right
    return rgb0, rgb1, truth, flow_t0, flow_t1, mask0, (rows, cols)


def test_disagreeing_flows_draw_the_object_once():
    rgb0, rgb1, truth, flow_t0, flow_t1, mask0, square = _one_side_lost_the_square()
    out = _compose(rgb0, rgb1, flow_t0, flow_t1, mask0, T)
    assert psnr(out[square], truth[square]) > 40  # measured: exact (inf); the square where it is at t, once


def test_without_the_pick_the_object_is_drawn_twice(monkeypatch):
    """The test above measures something: the visibility blend alone mixes both positions."""
    rgb0, rgb1, truth, flow_t0, flow_t1, mask0, square = _one_side_lost_the_square()
    monkeypatch.setattr(synthesize, "DISAGREE", float("inf"))
    out = _compose(rgb0, rgb1, flow_t0, flow_t1, mask0, T)
    assert psnr(out[square], truth[square]) < 25  # measured 21.9


def test_a_large_frame_that_disagrees_everywhere():
    """More disagreeing pixels than ``remap`` takes in one row of its maps (32767)."""
    scene = Scene(height=240, width=320, bg_velocity=(0.0, 0.0), fg_velocity=VELOCITY, size=SIZE)
    rgb0, rgb1 = scene.frame_u8(0), scene.frame_u8(1)
    flow_t0 = torch.zeros(1, 2, 240, 320)
    flow_t1 = (1 - T) * torch.tensor([-8.0, 6.0]).view(1, 2, 1, 1).expand_as(flow_t0).contiguous()
    mask0 = torch.full((1, 1, 240, 320), 1 - T)
    out = _compose(rgb0, rgb1, flow_t0, flow_t1, mask0, T)
    expected, picked = _dense(rgb0, rgb1, flow_t0, flow_t1, mask0, T)
    assert bool(picked.any()) and np.abs(out.astype(int) - expected.astype(int)).max() <= 1


def test_tensor_path_picks_the_same():
    """``synthesize.warp_and_blend`` (the tensor path: CUDA, refiners, training) makes the same
    choice as ``compose_array``: motion 0 on the square, and the same frame."""
    rgb0, rgb1, truth, flow_t0, flow_t1, mask0, square = _one_side_lost_the_square()
    expected, picked = _dense(rgb0, rgb1, flow_t0, flow_t1, mask0, T)
    rows, cols = square
    assert bool(picked[0, 0, rows, cols].all())
    assert psnr(expected[square], truth[square]) > 40
    out = _compose(rgb0, rgb1, flow_t0, flow_t1, mask0, T)
    assert np.abs(out.astype(int) - expected.astype(int)).max() <= 1


def _compose(rgb0, rgb1, flow_t0, flow_t1, mask0, t):
    """``compose_array`` on 8-bit frames, as ``Interpolator.frame_array`` calls it."""
    return compose_array(to_tensor(rgb0), to_tensor(rgb1), flow_t0, flow_t1, mask0, t)


def _dense(rgb0, rgb1, flow_t0, flow_t1, mask0, t):
    """compose_array's result through the tensor path (CUDA, refiners, training): every warp over
    the whole frame (``synthesize.warp_and_blend``), and which pixels it picked."""
    image0, image1 = (torch.from_numpy(x).permute(2, 0, 1)[None].float() / 255 for x in (rgb0, rgb1))
    image, warped0, warped1 = synthesize.warp_and_blend(image0, image1, flow_t0, flow_t1, mask0, t)
    picked = (image - (warped1 + mask0 * (warped0 - warped1))).abs().amax(1, keepdim=True) > 0
    return (image[0].permute(1, 2, 0).numpy() * 255).round().clip(0, 255).astype(np.uint8), picked


@pytest.mark.parametrize("t", [0.25, 0.5, 0.8])
def test_array_path_samples_only_where_the_motions_disagree_and_matches_the_dense_one(t):
    """``compose_array`` samples the cross warps at the disagreeing pixels only; the frame is the
    one that warping both frames whole along both motions gives."""
    scene = Scene(bg_velocity=(4.0, -2.0), fg_velocity=(-12.0, 3.0), size=30)
    rgb0, rgb1 = scene.frame_u8(0), scene.frame_u8(1)
    h, w = rgb0.shape[:2]
    generator = torch.Generator().manual_seed(3)
    flow_t0 = -t * torch.tensor([4.0, -2.0]).view(1, 2, 1, 1).repeat(1, 1, h, w)
    flow_t1 = (1 - t) * torch.tensor([4.0, -2.0]).view(1, 2, 1, 1).repeat(1, 1, h, w)
    flow_t0[..., 40:80, 50:90] = -t * torch.tensor([-12.0, 3.0]).view(1, 2, 1, 1)  # one side sees the square
    flow_t1 += (1 - t) * 0.15 * torch.randn(1, 2, h, w, generator=generator)  # noise well under DISAGREE
    mask0 = torch.rand(1, 1, h, w, generator=generator)
    out = _compose(rgb0, rgb1, flow_t0, flow_t1, mask0, t)
    expected, picked = _dense(rgb0, rgb1, flow_t0, flow_t1, mask0, t)
    disagree = synthesize.disagreement(flow_t0, flow_t1, t)
    assert 0.01 < float(disagree.float().mean()) < 0.3 and bool(picked.any())  # the case is exercised
    assert np.abs(out.astype(int) - expected.astype(int)).max() <= 1


def test_bands_make_the_frame_that_the_whole_frame_makes(monkeypatch):
    """``compose_array`` makes the frame a few rows at a time, from flows and a weight at half the
    size: band edges (here every 7 rows) cut through the disagreeing square and its 3 x 3 costs
    without changing a pixel of what the whole-frame tensor path draws."""
    t = 0.4
    scene = Scene(bg_velocity=(4.0, -2.0), fg_velocity=(-12.0, 3.0), size=30)
    rgb0, rgb1 = scene.frame_u8(0), scene.frame_u8(1)
    h, w = rgb0.shape[:2]
    generator = torch.Generator().manual_seed(5)
    flow_t0 = -t * torch.tensor([4.0, -2.0]).view(1, 2, 1, 1).repeat(1, 1, h // 2, w // 2)
    flow_t1 = (1 - t) * torch.tensor([4.0, -2.0]).view(1, 2, 1, 1).repeat(1, 1, h // 2, w // 2)
    flow_t0[..., 20:40, 25:45] = -t * torch.tensor([-6.0, 1.5]).view(1, 2, 1, 1)  # half size: half the px
    flow_t1 += (1 - t) * 0.1 * torch.randn(1, 2, h // 2, w // 2, generator=generator)
    mask0 = torch.rand(1, 1, h // 2, w // 2, generator=generator)
    monkeypatch.setattr(synthesize, "BAND_ROWS", 7)
    out = _compose(rgb0, rgb1, flow_t0, flow_t1, mask0, t)
    full = [resize_flow(flow, (h, w)) for flow in (flow_t0, flow_t1)]
    weight = torch.nn.functional.interpolate(mask0, size=(h, w), mode="bilinear", align_corners=False)
    expected, picked = _dense(rgb0, rgb1, *full, weight, t)
    assert int(picked.sum()) > 200  # the square is picked, across many band edges
    difference = np.abs(out.astype(int) - expected.astype(int))
    assert difference.max() <= 1 and difference.mean() < 0.01


def test_headroom_tools_bilateral_motion_descends_to_the_true_motion():
    """``tools/headroom.py --motion``'s BMBC-style refinement at t (what its dev figures rest on):
    started from projected motions 0.75 px off, it finds a pan's true motion, and each frame moved
    along it is the true middle frame."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("headroom", Path(__file__).parents[1] / "tools" / "headroom.py")
    headroom = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(headroom)
    velocity = (3.5, 1.25)
    scene = Scene(bg_velocity=velocity, fg_velocity=velocity)
    image0, image1 = to_tensor(scene.frame_u8(0)), to_tensor(scene.frame_u8(1))
    off = torch.tensor([velocity[0] + 0.75, velocity[1] - 0.5]).view(1, 2, 1, 1).expand(1, 2, scene.h, scene.w)
    motion, cost = headroom.bilateral_motion(image0, image1, -T * off, (1 - T) * off, T)
    inner = (slice(None), slice(None), slice(12, -12), slice(12, -12))
    assert torch.allclose(motion[inner].median(-1).values.median(-1).values[0], torch.tensor(velocity), atol=0.13)
    # each frame moved to t along the found motion lands on the true frame (the symmetric mean of the
    # two would hide an error: it blurs instead of shifting)
    along = headroom._along(image0, image1, motion, T)
    start = headroom._along(image0, image1, off, T)
    truth = scene.frame_u8(T)
    for found, started in zip(along, start):
        found_db, started_db = psnr(to_image(found), truth, border=12), psnr(to_image(started), truth, border=12)
        assert found_db > 43 and found_db > started_db + 4, (found_db, started_db)
    assert float(cost[inner].mean()) < float(headroom._bilateral_cost(*start)[inner].mean()) / 3
