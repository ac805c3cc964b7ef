"""The whole interpolation path on synthetic scenes whose true in-between frames are known."""

import numpy as np
import pytest
import torch
from synthetic import Scene, psnr

from memc.errors import InputError
from memc.motion.interpolate import Interpolator, resolve_device
from memc.tensors import to_image, to_tensor

# A background moving one way and a textured square moving the other: translation plus
# occlusion and disocclusion at the square's edges.
SCENE = dict(height=240, width=320, bg_velocity=(7.3, -2.6), fg_velocity=(-11.0, 5.5), size=70)
BORDER = 12  # content entering at the frame edges is unknowable from either input


@pytest.fixture(scope="module")
def dis():
    return Interpolator(device="cpu", flow="dis")


@pytest.mark.parametrize("t", [0.25, 0.5, 0.75])
def test_dis_matches_ground_truth_and_beats_blend(dis, t):
    scene = Scene(**SCENE)
    f0, f1, truth = scene.frame_u8(0), scene.frame_u8(1), scene.frame_u8(t)
    out = dis.interpolate(f0, f1, t)
    blend = ((1 - t) * f0.astype(np.float64) + t * f1).round().astype(np.uint8)
    ours, base = psnr(out, truth, BORDER), psnr(blend, truth, BORDER)
    # measured ~35-37 dB (DIS medium), blend ~28-30 dB: floors leave ~2 dB of margin
    assert ours > 33.0, ours
    assert ours > base + 4.0, (ours, base)


def test_pure_translation_has_no_ghosts(dis):
    scene = Scene(height=120, width=160, bg_velocity=(5.5, 2.25), fg_velocity=(5.5, 2.25), size=40)
    out = dis.interpolate(scene.frame_u8(0), scene.frame_u8(1), 0.5)
    # one rigid motion: a ghost/double image would cost many dB; measured ~44 dB
    assert psnr(out, scene.frame_u8(0.5), BORDER) > 40.0


def test_endpoints_are_exact_and_several_t_share_flows(dis, monkeypatch):
    scene = Scene(height=60, width=80)
    f0, f1 = scene.frame_u8(0), scene.frame_u8(1)
    calls = []
    original = dis.estimator.estimate
    monkeypatch.setattr(dis.estimator, "estimate", lambda a, b: calls.append(1) or original(a, b))
    outs = dis.interpolate(f0, f1, [0.0, 0.2, 0.4, 0.6, 1.0])
    assert np.array_equal(outs[0], f0) and np.array_equal(outs[-1], f1)
    assert len(calls) == 1  # flows estimated once for all t of the pair


def test_identical_frames_give_zero_flow_and_same_frame(dis):
    frame = Scene(height=60, width=80).frame_u8(0)
    flows = dis.flows(*(torch.from_numpy(frame).permute(2, 0, 1)[None].float() / 255,) * 2)
    assert flows.flow_01.abs().max() < 0.05
    assert np.abs(dis.interpolate(frame, frame, 0.5).astype(int) - frame).max() <= 1


def test_sixteen_bit_in_sixteen_bit_out(dis):
    scene = Scene(height=48, width=64)
    f0 = (scene.render(0) * 65535).round().astype(np.uint16)
    f1 = (scene.render(1) * 65535).round().astype(np.uint16)
    out = dis.interpolate(f0, f1, 0.5)
    assert out.dtype == np.uint16 and out.shape == f0.shape
    # measured 37.4 dB, as the 8-bit path
    assert psnr((out / 257).round().astype(np.uint8), scene.frame_u8(0.5), 8) > 34


def test_odd_size_and_flow_scale():
    scene = Scene(height=61, width=97, size=20)
    ip = Interpolator(device="cpu", flow="dis", flow_scale=0.5)
    out = ip.interpolate(scene.frame_u8(0), scene.frame_u8(1), 0.5)
    assert out.shape == (61, 97, 3)
    assert psnr(out, scene.frame_u8(0.5), 8) > 33  # measured 35.1; a plain blend is 30.3


@pytest.mark.parametrize("flow_scale", [1.0, 0.5])
def test_array_path_matches_tensor_path(flow_scale):
    """convert's 8-bit CPU path (OpenCV warp and blend, motion upsampled) draws what the tensor path draws."""
    scene = Scene(**SCENE)
    f0, f1 = scene.frame_u8(0), scene.frame_u8(1)
    ip = Interpolator(device="cpu", flow="dis", flow_scale=flow_scale)
    a, b = to_tensor(f0), to_tensor(f1)
    flows = ip.flows(a, b)
    assert flows.flow_01.shape[-2:] == (round(240 * flow_scale), round(320 * flow_scale))
    for t in (0.3, 0.5):
        fast = ip.frame_array(a, b, flows, t, f0.dtype).astype(np.int16)
        reference = to_image(ip.frame(a, b, flows, t)).astype(np.int16)
        difference = np.abs(fast - reference)[BORDER:-BORDER, BORDER:-BORDER]
        # OpenCV's remap places samples to 1/32 px: measured at most 1 level apart, 0.10-0.18 on average
        assert difference.max() <= 2 and difference.mean() < 0.3, (difference.max(), difference.mean())
        assert psnr(fast.astype(np.uint8), scene.frame_u8(t), BORDER) > 34.0  # measured 36.1-38.1


def test_bad_arguments():
    with pytest.raises(InputError):
        resolve_device("tpu")
    with pytest.raises(InputError):
        Interpolator(device="cpu", flow="nope")
    ip = Interpolator(device="cpu", flow="dis")
    frame = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(InputError):
        ip.interpolate(frame, frame, 1.5)
    with pytest.raises(InputError):
        ip.interpolate(frame, np.zeros((8, 9, 3), np.uint8), 0.5)
