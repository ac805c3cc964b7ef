"""io.yuv: the torch RGB -> YUV 4:2:0 conversion (the CUDA encoder path) against swscale's, which
``VideoSink.write`` uses on the CPU: every plane within one code value, 8 and 10 bits, BT.601/709."""

from __future__ import annotations

import av
import numpy as np
import pytest
import torch

from memc.io.yuv import HostPlanes, rgb_to_planes, supports
from memc.tensors import to_tensor

H, W = 48, 64


def smooth(dtype=np.uint8, seed: int = 0) -> np.ndarray:
    """A natural-looking frame: blurred noise stretched over the full range, plus black and white."""
    import cv2

    rng = np.random.default_rng(seed)
    image = cv2.GaussianBlur(rng.random((H, W, 3)).astype(np.float32), (0, 0), 2)
    image = (image - image.min()) / (image.max() - image.min())
    image[:4, :4], image[-4:, -4:] = 0, 1
    top = 255 if dtype == np.uint8 else 65535
    return np.round(image * top).astype(dtype)


def noise(dtype=np.uint8, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256 if dtype == np.uint8 else 65536, (H, W, 3)).astype(dtype)


def swscale_planes(rgb: np.ndarray, pix_fmt: str, matrix: int, full_range: bool) -> list[np.ndarray]:
    """What VideoSink.write encodes: PyAV's reformat of the RGB frame, planes cropped to their size."""
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24" if rgb.dtype == np.uint8 else "rgb48le")
    yuv = frame.reformat(format=pix_fmt, dst_colorspace=matrix, dst_color_range=2 if full_range else 1)
    dtype = np.uint8 if pix_fmt in ("yuv420p", "yuvj420p", "nv12") else np.uint16
    out = []
    for plane in yuv.planes:
        values = plane.width * (2 if pix_fmt in ("nv12", "p010le") and len(out) else 1)
        data = np.frombuffer(plane, dtype).reshape(plane.height, -1)
        out.append(data[:, :values])
    return out


CASES = [
    ("yuv420p", 5, False),
    ("yuv420p", 1, False),
    ("yuv420p10le", 5, False),
    ("yuv420p10le", 1, False),
    ("nv12", 1, False),
    ("p010le", 1, False),
    ("yuvj420p", 5, True),
    ("yuv420p", 1, True),
]


@pytest.mark.parametrize("pix_fmt, matrix, full_range", CASES)
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("image", [smooth, noise], ids=["smooth", "noise"])
def test_matches_swscale_within_one_code_value(pix_fmt, matrix, full_range, dtype, image):
    """Smooth frames, and noise: the hardest case for the chroma filter (every sample differs from its neighbours)."""
    rgb = image(dtype)
    expected = swscale_planes(rgb, pix_fmt, matrix, full_range)
    planes = rgb_to_planes(to_tensor(rgb), pix_fmt, matrix, full_range, source_bits=8 * rgb.itemsize)
    got = HostPlanes(planes, pix_fmt).arrays()
    assert [p.shape for p in got] == [p.shape for p in expected]
    for ours, theirs in zip(got, expected):
        assert ours.dtype == theirs.dtype
        diff = np.abs(ours.astype(np.int32) - theirs.astype(np.int32))
        if pix_fmt == "p010le":
            diff >>= 6
        assert diff.max() <= 1, f"{pix_fmt} matrix {matrix}: {diff.max()} code values apart"


def test_only_even_4_2_0_frames():
    assert supports("yuv420p") and supports("p010le") and not supports("yuv444p") and not supports("rgb24")
    with pytest.raises(ValueError, match="even"):
        rgb_to_planes(torch.zeros(1, 3, 5, 8), "yuv420p", 1, False)


# The pipeline's device path (CUDA: upload once, YUV on the device, planes to the encoder), run on
# the CPU: it must write the frames the RGB path writes, to within the one code value above.


def _convert(tmp_path, monkeypatch, name, src, on_device, **encode):
    from memc import pipeline
    from memc.config import ConvertConfig, EncodeOptions
    from memc.motion.interpolate import Interpolator

    monkeypatch.setattr(pipeline, "_colour_on_device", lambda device: on_device)
    options = EncodeOptions(**{"preset": "ultrafast", "crf": 0, "hw_encode": "off", **encode})
    out = tmp_path / name
    stats = pipeline.convert(src, out, ConvertConfig(fps=60, encode=options), Interpolator("cpu", "dis"))
    return out, stats


@pytest.mark.parametrize("size, codec", [((96, 64), "libx264"), ((95, 63), "libx264"), ((95, 63), "ffv1")])
def test_pipeline_device_path_writes_what_the_rgb_path_writes(tmp_path, monkeypatch, size, codec):
    from media import decode_rgb, write_clip
    from synthetic import Scene, psnr

    width, height = size
    scene = Scene(height=height, width=width, bg_velocity=(3.0, 1.0), fg_velocity=(-4.0, 2.0), size=20)
    src = tmp_path / "in.mkv"
    write_clip(src, [scene.frame_u8(k) for k in range(10)], 24, codec="ffv1", pix_fmt="yuv420p")
    cpu, cpu_stats = _convert(tmp_path, monkeypatch, "cpu.mkv", src, False, codec=codec)
    dev, dev_stats = _convert(tmp_path, monkeypatch, "dev.mkv", src, True, codec=codec)
    a, b = decode_rgb(cpu), decode_rgb(dev)
    assert len(a) == len(b) == cpu_stats.output_frames == dev_stats.output_frames == 25
    coded = (height, width) if codec == "ffv1" else (height + height % 2, width + width % 2)  # x264: padded
    assert a[0].shape == b[0].shape == (*coded, 3)
    assert min(psnr(x, y) for x, y in zip(a, b)) > 45


def test_pipeline_device_path_ten_bit(tmp_path, monkeypatch):
    from media import write_clip
    from synthetic import Scene

    from memc.io.decode import VideoSource

    scene = Scene(height=64, width=96, bg_velocity=(2.0, 1.0), fg_velocity=(-3.0, 2.0), size=20)
    frames = [(scene.frame_u8(k).astype(np.uint16) * 257) for k in range(6)]
    src = tmp_path / "in10.mkv"
    write_clip(src, frames, 24, codec="ffv1", pix_fmt="yuv420p10le")
    outs = [_convert(tmp_path, monkeypatch, f"{k}.mkv", src, k, codec="ffv1")[0] for k in (False, True)]
    decoded = []
    for out in outs:
        with VideoSource(out) as source:
            assert source.info.bit_depth == 10
            decoded.append([f.rgb.astype(np.int64) for f in source.frames()])
    assert len(decoded[0]) == len(decoded[1]) == 15
    for x, y in zip(*decoded):
        assert np.abs(x - y).mean() < 0.01 * 65535


@pytest.mark.parametrize("pix_fmt", ["yuv420p", "yuv420p10le", "nv12", "p010le"])
def test_write_planes_encodes_what_write_encodes(tmp_path, pix_fmt):
    """VideoSink.write (swscale) and write_planes (planes from io.yuv) put the same bytes in a raw
    file, to within one code value; NV12 and P010 are NVENC's formats. (Odd sizes, which rawvideo
    keeps odd, stay on swscale: planes_target is None.)"""
    from fractions import Fraction

    import torch.nn.functional as F

    from memc.config import EncodeOptions
    from memc.io.encode import VideoSink

    width, height = W, H
    rgb = smooth()
    options = EncodeOptions(pix_fmt=pix_fmt, hw_encode="off")
    raw = {}
    for how in ("write", "planes"):
        path = tmp_path / f"{how}.raw"
        with VideoSink(path, fps=Fraction(24), width=width, height=height, format="rawvideo", options=options) as sink:
            target = sink.planes_target()
            assert target is not None and target.pix_fmt == pix_fmt
            if how == "write":
                sink.write(rgb, 0)
            else:
                image = F.pad(to_tensor(rgb), (0, target.pad[1], 0, target.pad[0]), mode="replicate")
                planes = rgb_to_planes(image, pix_fmt, target.matrix, target.full_range)
                sink.write_planes(HostPlanes(planes, pix_fmt), 0)
        raw[how] = np.fromfile(path, np.uint8 if pix_fmt in ("yuv420p", "nv12") else np.uint16).astype(np.int32)
    assert raw["write"].size == raw["planes"].size > 0
    odd = VideoSink(tmp_path / "odd.raw", fps=Fraction(24), width=W - 1, height=H, format="rawvideo", options=options)
    with odd:
        assert odd.planes_target() is None
    diff = np.abs(raw["write"] - raw["planes"]) >> (6 if pix_fmt == "p010le" else 0)
    assert diff.max() <= 1


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_upload_keeps_every_sample(dtype):
    """tensors.upload (CUDA's pinned path, here on the CPU) carries uint16 as int16 words: no sample
    changes, 65535 included."""
    from memc.tensors import upload

    top = 256 if dtype == np.uint8 else 65536
    image = np.random.default_rng(0).integers(0, top, (5, 7, 3)).astype(dtype)
    image[0, 0] = top - 1
    samples = upload(image[:, 1:], torch.device("cpu"))  # a strided view too
    assert np.array_equal(samples.numpy(), image[:, 1:])
