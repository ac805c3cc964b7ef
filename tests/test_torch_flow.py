"""The torch estimator (batched dense inverse search): known motions, batching, dtypes, and auto."""

import cv2
import numpy as np
import pytest
import torch
from synthetic import Scene, psnr, texture

from memc import config
from memc.motion.interpolate import Interpolator
from memc.motion.torch_flow import TorchFlowEstimator

BORDER = 24  # px: content entering at the edges has no match in the other image


def _tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float()


def _translated(shift: tuple[float, float], height: int = 120, width: int = 160, seed: int = 0):
    """A texture and the same texture moved by ``shift`` (x, y) px: image0(x) = image1(x + shift)."""
    base = texture(height, width, seed)
    moved = cv2.warpAffine(
        base,
        np.float32([[1, 0, -shift[0]], [0, 1, -shift[1]]]),
        (width, height),
        flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REFLECT,
    )
    return _tensor(base), _tensor(moved)


def _endpoint_error(flow: torch.Tensor, shift: tuple[float, float]) -> torch.Tensor:
    inner = flow[..., BORDER:-BORDER, BORDER:-BORDER]
    return (inner - torch.tensor(shift, dtype=flow.dtype).view(1, 2, 1, 1)).norm(dim=1)


@pytest.fixture(scope="module")
def plain():
    return TorchFlowEstimator(large_motion=False)


@pytest.mark.parametrize("shift", [(0.4, -0.3), (3.3, -1.7), (17.6, 9.2)])
def test_translation_is_found_both_ways(plain, shift):
    image0, image1 = _translated(shift)
    flow_01, flow_10 = plain.estimate(image0, image1)
    assert flow_01.shape == flow_10.shape == (1, 2, 120, 160) and flow_01.dtype == torch.float32
    # measured: mean 0.02-0.06 px, max 0.04-0.22 px
    for flow, expected in ((flow_01, shift), (flow_10, (-shift[0], -shift[1]))):
        error = _endpoint_error(flow, expected)
        assert error.mean() < 0.15 and error.max() < 0.5, (shift, float(error.mean()), float(error.max()))


def test_no_motion_gives_zero_flow(plain):
    image = _translated((0, 0))[0]
    flow_01, flow_10 = plain.estimate(image, image)
    assert flow_01.abs().max() < 0.01 and flow_10.abs().max() < 0.01


def test_batch_is_each_pair_alone(plain):
    pairs = [_translated((2.5, 1.0), seed=1), _translated((-6.0, 3.5), seed=2)]
    flow_01, flow_10 = plain.estimate(torch.cat([a for a, _ in pairs]), torch.cat([b for _, b in pairs]))
    for i, (a, b) in enumerate(pairs):
        alone_01, alone_10 = plain.estimate(a, b)
        assert torch.allclose(flow_01[i : i + 1], alone_01, atol=1e-3)
        assert torch.allclose(flow_10[i : i + 1], alone_10, atol=1e-3)


def test_float64_in_float64_out(plain):
    image0, image1 = _translated((3.3, -1.7))
    flow_01, flow_10 = plain.estimate(image0.double(), image1.double())
    assert flow_01.dtype == flow_10.dtype == torch.float64
    assert _endpoint_error(flow_01, (3.3, -1.7)).mean() < 0.15
    reference = plain.estimate(image0, image1)[0]
    assert torch.allclose(flow_01.float(), reference, atol=1e-3)  # measured 4e-5 px apart


def test_small_and_odd_sizes_work(plain):
    for height, width in ((9, 13), (37, 61)):
        image0, image1 = _translated((1.0, 0.5), height, width)
        flow_01, flow_10 = plain.estimate(image0, image1)
        assert flow_01.shape == (1, 2, height, width) and torch.isfinite(flow_01).all()


def test_interpolated_middle_frame_matches_truth():
    scene = Scene(height=240, width=320, bg_velocity=(7.3, -2.6), fg_velocity=(-11.0, 5.5), size=70)
    out = Interpolator(device="cpu", flow="torch").interpolate(scene.frame_u8(0), scene.frame_u8(1), 0.5)
    # measured 38.6 dB (dis 36.0, dis-bm 38.9): 3.5 dB of margin, and above what dis gets
    assert psnr(out, scene.frame_u8(0.5), 12) > 35.0


def test_auto_is_torch_on_cuda_and_dis_bm_on_the_cpu():
    assert config.resolve_flow("auto", device_type="cuda").name == "torch"
    assert config.resolve_flow("auto", device_type="cpu").name == "dis-bm" == config.resolve_flow("auto").name
    assert config.resolve_flow("torch").devices == ("cpu", "cuda") and not config.resolve_flow("torch").fp16
    with_weights = config.resolve_flow("auto", "some.pt", device_type="cuda")
    assert with_weights.name == "learned"  # --weights still picks the estimator they belong to
