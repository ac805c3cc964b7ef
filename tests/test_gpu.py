"""On a CUDA device: the same results as on the CPU, within stated tolerances.

Run with ``python -m pytest -q -m gpu tests/test_gpu.py`` (``tools/gpu_check.sh`` does). Every
test is marked ``gpu`` and skipped where ``torch.cuda.is_available()`` is false.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from media import decode_rgb, probe, write_clip
from synthetic import Scene, psnr

from memc.config import ESTIMATORS, ConvertConfig, EncodeOptions
from memc.io.yuv import HostPlanes, rgb_to_planes
from memc.motion.interpolate import Interpolator
from memc.tensors import to_tensor

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

CUDA = "cuda"


@pytest.fixture(scope="module")
def scene():
    return Scene(height=192, width=256, bg_velocity=(3.0, 1.0), fg_velocity=(-5.0, 2.0), size=48)


def _nvenc_opens() -> bool:
    from memc.io.encode import _nvenc_usable

    return _nvenc_usable("h264_nvenc", 256, 256, "yuv420p") is None


# the torch estimator (issue 11, item 1) joins when it is in the registry
FLOWS = [name for name in ("dis", "dis-bm", "learned", "torch") if name in ESTIMATORS]


@pytest.mark.parametrize("flow", FLOWS)
def test_cuda_frame_matches_cpu_frame(scene, flow):
    """The same pair through the Interpolator on each device: >= 40 dB apart (float32 on both)."""
    a, b = scene.frame_u8(0), scene.frame_u8(1)
    cpu = Interpolator("cpu", flow, fp16=False).interpolate(a, b, [0.25, 0.5])
    gpu = Interpolator(CUDA, flow, fp16=False).interpolate(a, b, [0.25, 0.5])
    for x, y in zip(cpu, gpu):
        assert x.shape == y.shape and x.dtype == y.dtype
        assert psnr(x, y) >= 40, f"{flow}: {psnr(x, y):.1f} dB between CPU and CUDA"


def test_fp16_close_to_fp32(scene):
    """fp16 only where the registry allows it (the learned estimator's networks)."""
    if not ESTIMATORS["learned"].fp16:
        pytest.skip("the learned estimator does not allow fp16")
    a, b = scene.frame_u8(0), scene.frame_u8(1)
    half = Interpolator(CUDA, "learned")  # fp16 by the registry
    assert half.fp16
    full = Interpolator(CUDA, "learned", fp16=False)
    x, y = half.interpolate(a, b, 0.5), full.interpolate(a, b, 0.5)
    assert psnr(x, y) >= 38, f"fp16 vs fp32: {psnr(x, y):.1f} dB"


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_pinned_upload_gives_identical_tensors(dtype):
    top = 256 if dtype == np.uint8 else 65536
    image = np.random.default_rng(0).integers(0, top, (67, 93, 3)).astype(dtype)
    on_gpu = to_tensor(image, CUDA)
    assert on_gpu.device.type == "cuda" and on_gpu.dtype == torch.float32
    assert torch.equal(on_gpu.cpu(), to_tensor(image, "cpu"))
    # a view with strides (a crop) goes through the same path
    crop = image[5:50, 7:81]
    assert torch.equal(to_tensor(crop, CUDA).cpu(), to_tensor(crop, "cpu"))


@pytest.mark.parametrize(
    "pix_fmt, matrix, full_range", [("yuv420p", 1, False), ("yuv420p10le", 5, False), ("p010le", 1, False)]
)
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_gpu_colour_path_equals_cpu_colour_path(scene, pix_fmt, matrix, full_range, dtype):
    """io.yuv on CUDA (planes downloaded through pinned memory) against the same code on the CPU."""
    rgb = scene.frame_u8(0)
    rgb = rgb if dtype == np.uint8 else rgb.astype(np.uint16) * 257
    bits = 8 * rgb.itemsize
    cpu = HostPlanes(rgb_to_planes(to_tensor(rgb), pix_fmt, matrix, full_range, bits), pix_fmt).arrays()
    gpu = HostPlanes(rgb_to_planes(to_tensor(rgb, CUDA), pix_fmt, matrix, full_range, bits), pix_fmt).arrays()
    for x, y in zip(cpu, gpu):
        diff = np.abs(x.astype(np.int32) - y.astype(np.int32)) >> (6 if pix_fmt == "p010le" else 0)
        assert diff.max() <= 1


def _convert(src, dst, device: str, encode: EncodeOptions):
    from memc.pipeline import convert

    return convert(src, dst, ConvertConfig(fps=60, encode=encode), Interpolator(device, "dis"), overwrite=True)


def test_cuda_conversion_matches_cpu_conversion(tmp_path, scene):
    """The whole device path (pinned upload, YUV on the GPU, planes to the encoder) against the CPU path."""
    src = tmp_path / "in.mkv"
    write_clip(src, [scene.frame_u8(k) for k in range(12)], 24, codec="ffv1")
    lossless = EncodeOptions(codec="libx264", crf=0, preset="ultrafast", hw_encode="off")
    cpu = _convert(src, tmp_path / "cpu.mkv", "cpu", lossless)
    gpu = _convert(src, tmp_path / "gpu.mkv", CUDA, lossless)
    assert cpu.output_frames == gpu.output_frames == 30
    a, b = decode_rgb(tmp_path / "cpu.mkv"), decode_rgb(tmp_path / "gpu.mkv")
    assert len(a) == len(b) == 30
    assert min(psnr(x, y) for x, y in zip(a, b)) >= 40


@pytest.mark.parametrize("encode", [EncodeOptions(hw_encode="on"), EncodeOptions(codec="h264_nvenc")])
def test_nvenc_convert_writes_the_exact_frame_count(tmp_path, scene, encode):
    if not _nvenc_opens():
        pytest.skip("NVENC does not open on this machine")
    src, out = tmp_path / "in.mp4", tmp_path / "out.mp4"
    write_clip(src, [scene.frame_u8(k) for k in range(48)], 24)
    stats = _convert(src, out, CUDA, encode)
    assert stats.encoder == "h264_nvenc" and stats.output_frames == 120
    info = probe(out)
    assert info["frames"] == 120 and info["rate"] == 60


def test_nvenc_from_the_command_line(tmp_path, scene):
    if not _nvenc_opens():
        pytest.skip("NVENC does not open on this machine")
    from memc.cli import main

    src, out = tmp_path / "in.mp4", tmp_path / "out.mp4"
    write_clip(src, [scene.frame_u8(k) for k in range(24)], 24)
    with pytest.raises(SystemExit) as exit_info:
        main(["convert", str(src), "--fps", "60", "-o", str(out), "--device", CUDA, "--hw-encode", "on", "-q"])
    assert exit_info.value.code == 0 and probe(out)["frames"] == 60
