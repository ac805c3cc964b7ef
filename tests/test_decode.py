"""VideoSource: exact times, stream info, colour matrices, bit depth, pipes and broken inputs.

All media is generated in tmp_path with PyAV (there is no ffmpeg CLI); clips are tiny.
"""

from __future__ import annotations

import io
import logging
import sys
from fractions import Fraction

import av
import numpy as np
import pytest

from memc.errors import DecodeError, InputError
from memc.io.decode import VideoSource

W, H = 64, 48


def noise(seed: int, height: int = H, width: int = W) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def write_clip(
    path,
    frames,
    *,
    codec="libx264",
    pix_fmt="yuv420p",
    rate=24,
    pts=None,
    time_base=None,
    options=None,
    tags=None,
    rotation=0,
    fmt=None,
):
    """Encode RGB (uint8/uint16) or prebuilt VideoFrames; ``pts`` in ``time_base`` units."""
    with av.open(str(path) if not hasattr(path, "write") else path, "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=rate, options=options or {})
        first = frames[0]
        stream.height, stream.width = (
            (first.height, first.width) if isinstance(first, av.VideoFrame) else first.shape[:2]
        )
        stream.pix_fmt = pix_fmt
        stream.time_base = stream.codec_context.time_base = time_base or 1 / Fraction(rate)
        for key, value in (tags or {}).items():
            setattr(stream.codec_context, key, value)
        if rotation:
            stream.set_display_rotation(rotation)
        for k, image in enumerate(frames):
            if not isinstance(image, av.VideoFrame):
                rgb_fmt = "rgb48le" if image.dtype == np.uint16 else "rgb24"
                image = av.VideoFrame.from_ndarray(image, format=rgb_fmt).reformat(format=pix_fmt)
            image.pts = k if pts is None else pts[k]
            image.time_base = stream.codec_context.time_base
            out.mux(stream.encode(image))
        out.mux(stream.encode(None))
    return path


FAST_X264 = {"preset": "ultrafast"}


def test_cfr_clip_exact_pts_and_info(tmp_path):
    path = write_clip(tmp_path / "a.mp4", [noise(k) for k in range(12)], options=FAST_X264)
    with VideoSource(path) as src:
        info = src.info
        frames = list(src.frames())
    assert [f.pts for f in frames] == [Fraction(k, 24) for k in range(12)]  # exact, no float drift
    assert [f.index for f in frames] == list(range(12))
    assert (info.width, info.height, info.fps, info.frame_count) == (W, H, 24, 12)
    assert isinstance(info.fps, Fraction) and isinstance(info.start, Fraction)
    assert info.start == 0 and info.duration == Fraction(12, 24)
    assert (info.bit_depth, info.pix_fmt, info.codec_name) == (8, "yuv420p", "h264")
    assert "mp4" in info.format_name and not info.has_audio and info.rotation == 0
    assert frames[0].rgb.shape == (H, W, 3) and frames[0].rgb.dtype == np.uint8
    assert not src.truncated


def test_start_offset_is_kept(tmp_path):
    # First frame at pts 12/24 s: the 1/12288 mp4 time base holds k/24 exactly.
    path = write_clip(tmp_path / "late.mp4", [noise(k) for k in range(6)], pts=list(range(12, 18)), options=FAST_X264)
    with VideoSource(path) as src:
        assert src.info.start == Fraction(1, 2)
        assert [f.pts for f in src.frames()] == [Fraction(1, 2) + Fraction(k, 24) for k in range(6)]


def test_vfr_pts_come_out_exactly(tmp_path):
    # Matroska stores milliseconds; ffv1 is intra-only so packet order = presentation order.
    ms = [0, 40, 50, 120, 130, 200, 333]
    path = write_clip(
        tmp_path / "vfr.mkv", [noise(k) for k in range(len(ms))], codec="ffv1", pts=ms, time_base=Fraction(1, 1000)
    )
    with VideoSource(path) as src:
        assert src.info.time_base == Fraction(1, 1000)
        assert [f.pts for f in src.frames()] == [Fraction(t, 1000) for t in ms]


def test_ten_bit_source_decodes_to_uint16(tmp_path):
    level = 700  # a 10-bit code value, full-scale: 700/1023
    rgb = np.full((H, W, 3), round(level / 1023 * 65535), np.uint16)
    path = write_clip(tmp_path / "ten.mkv", [rgb, rgb], codec="ffv1", pix_fmt="yuv420p10le")
    with VideoSource(path) as src:
        frames = list(src.frames())
        assert (src.info.bit_depth, src.info.pix_fmt) == (10, "yuv420p10le")
    assert frames[0].rgb.dtype == np.uint16
    # Through limited-range 10-bit YUV and back: within 2 ten-bit codes (2 * 64 on the 16-bit scale).
    np.testing.assert_allclose(frames[0].rgb.astype(float), rgb.astype(float), atol=2 * 64)


def _yuv_frame(rgb, matrix: str, full_range: bool, pix_fmt="yuv420p") -> av.VideoFrame:
    """YUV computed here from the textbook formula, independent of swscale."""
    kr, kb = {"bt709": (0.2126, 0.0722), "bt601": (0.299, 0.114)}[matrix]
    r, g, b = (rgb[..., i] / 255.0 for i in range(3))
    y = kr * r + (1 - kr - kb) * g + kb * b
    cb, cr = (b - y) / (2 * (1 - kb)), (r - y) / (2 * (1 - kr))
    if full_range:
        planes = (255 * y, 128 + 255 * cb, 128 + 255 * cr)
    else:
        planes = (16 + 219 * y, 128 + 224 * cb, 128 + 224 * cr)
    y8, u8, v8 = (np.clip(np.round(p), 0, 255).astype(np.uint8) for p in planes)
    packed = np.concatenate([y8.ravel(), u8[::2, ::2].ravel(), v8[::2, ::2].ravel()])
    return av.VideoFrame.from_ndarray(packed.reshape(-1, rgb.shape[1]), format=pix_fmt)


# FFmpeg enums: colorspace 1 = BT.709, 5 = BT.470BG (601); range 1 = limited, 2 = full.
@pytest.mark.parametrize(
    "matrix,colorspace,color_range",
    [
        ("bt709", 1, 1),  # HD broadcast: the case a BT.601 default would get wrong by ~20 codes
        ("bt709", 1, 2),
        ("bt601", 5, 1),
    ],
)
def test_colour_matrix_and_range_are_honoured(tmp_path, matrix, colorspace, color_range):
    rgb = np.zeros((H, W, 3), np.uint8)
    rgb[:] = (200, 40, 90)
    frame = _yuv_frame(rgb, matrix, full_range=color_range == 2)
    tags = dict(colorspace=colorspace, color_range=color_range, color_primaries=1, color_trc=1)
    path = write_clip(tmp_path / "c.mp4", [frame], tags=tags, options={"qp": "0", **FAST_X264})
    with VideoSource(path) as src:
        (decoded,) = list(src.frames())
        assert (src.info.colorspace, src.info.color_range) == (colorspace, color_range)
    # 8-bit YUV rounding (and 4:2:0 on a flat patch, which is lossless) costs <= 2 codes.
    assert np.abs(decoded.rgb.astype(int) - rgb).max() <= 2


def test_truncated_file_decodes_what_it_can(tmp_path, caplog):
    path = write_clip(tmp_path / "t.mkv", [noise(k) for k in range(24)], options=FAST_X264)
    data = path.read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    with caplog.at_level(logging.WARNING, logger="memc.io.decode"), VideoSource(cut) as src:
        frames = list(src.frames())
        assert src.truncated
    assert 0 < len(frames) < 24
    assert "truncated or corrupt after frame" in caplog.text


def test_mkv_starting_late_is_not_truncated(tmp_path, caplog):
    # Video from 0.5 s, as `ffmpeg -itsoffset 0.5 -i v.mkv -c copy` makes it. Its DURATION tag is the
    # track's end time (1.5 s), not a length; adding the start to it made a false truncation warning.
    path = write_clip(tmp_path / "late.mkv", [noise(k) for k in range(24)], pts=list(range(12, 36)), options=FAST_X264)
    with caplog.at_level(logging.WARNING, logger="memc.decode"), VideoSource(path) as src:
        frames = list(src.frames())
        assert src.info.start == Fraction(1, 2)
        assert not src.truncated
    assert len(frames) == 24
    assert "truncated" not in caplog.text


def test_truncated_mkv_starting_late_is_still_flagged(tmp_path, caplog):
    path = write_clip(tmp_path / "late.mkv", [noise(k) for k in range(24)], pts=list(range(12, 36)), options=FAST_X264)
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(path.read_bytes()[: int(path.stat().st_size * 0.6)])
    with caplog.at_level(logging.WARNING, logger="memc.decode"), VideoSource(cut) as src:
        frames = list(src.frames())
        assert src.truncated
    assert 0 < len(frames) < 24
    assert "truncated or corrupt after frame" in caplog.text


def test_text_file_is_input_error(tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_text("hello, this is not a video\n" * 20)
    with pytest.raises(InputError, match="not a video file") as err:
        VideoSource(path)
    assert "\n" not in str(err.value)


def test_missing_path_and_directory_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        VideoSource(tmp_path / "nope.mp4")
    with pytest.raises(InputError, match="directory"):
        VideoSource(tmp_path)


def test_audio_only_file_has_no_video_stream(tmp_path):
    path = tmp_path / "a.mka"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("aac", rate=48000)
        samples = np.zeros((2, 1024), np.float32)
        for k in range(3):
            frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="stereo")
            frame.sample_rate, frame.pts = 48000, k * 1024
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    with pytest.raises(InputError, match=r"no video stream"):
        VideoSource(path)


@pytest.mark.parametrize("payload", [b"", b"FRAME\n" + b"\0" * 100])  # no frame / a cut frame
def test_video_stream_without_frames_is_decode_error(payload):
    header = b"YUV4MPEG2 W64 H48 F25:1 Ip A1:1 C420jpeg\n"
    with pytest.raises(DecodeError, match="no decodable video frames"):
        VideoSource(io.BytesIO(header + payload), format="yuv4mpegpipe")


def _y4m_bytes(frames, rate) -> bytes:
    buf = io.BytesIO()
    write_clip(buf, frames, codec="wrapped_avframe", rate=rate, fmt="yuv4mpegpipe")
    return buf.getvalue()


def test_y4m_from_file_object(tmp_path):
    frames = [noise(k) for k in range(5)]
    data = _y4m_bytes(frames, Fraction(30000, 1001))
    with VideoSource(io.BytesIO(data), format="yuv4mpegpipe") as src:
        decoded = list(src.frames())
        assert src.info.fps == Fraction(30000, 1001)
    assert [f.pts for f in decoded] == [Fraction(1001 * k, 30000) for k in range(5)]


def test_stdin_dash_defaults_to_y4m(monkeypatch):
    data = _y4m_bytes([noise(0), noise(1)], 25)

    class FakeStdin:
        buffer = io.BytesIO(data)

    monkeypatch.setattr(sys, "stdin", FakeStdin())
    with VideoSource("-") as src:
        assert src.info.format_name == "yuv4mpegpipe"
        assert len(list(src.frames())) == 2


def test_rawvideo_rgb24_is_bit_exact():
    frames = [noise(k) for k in range(4)]
    raw = io.BytesIO(b"".join(f.tobytes() for f in frames))
    with VideoSource(
        raw, format="rawvideo", raw_size=(W, H), raw_pix_fmt="rgb24", raw_fps=Fraction(30000, 1001)
    ) as src:
        decoded = list(src.frames())
        assert src.info.fps == Fraction(30000, 1001)
    assert [f.pts for f in decoded] == [Fraction(1001 * k, 30000) for k in range(4)]
    for got, want in zip(decoded, frames):
        np.testing.assert_array_equal(got.rgb, want)  # RGB in, RGB out: no conversion at all


def test_rawvideo_needs_size_format_and_rate():
    with pytest.raises(InputError, match="raw_size"):
        VideoSource(io.BytesIO(b"\0" * 100), format="rawvideo", raw_pix_fmt="rgb24", raw_fps=Fraction(25))


def test_rotation_and_aspect_ratio_are_reported(tmp_path):
    path = tmp_path / "r.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=24, options=FAST_X264)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        stream.set_display_rotation(90)
        stream.sample_aspect_ratio = Fraction(4, 3)
        frame = av.VideoFrame.from_ndarray(noise(0)).reformat(format="yuv420p")
        frame.pts = 0
        out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    with VideoSource(path) as src:
        assert src.info.rotation == 90
        assert src.info.sample_aspect_ratio == Fraction(4, 3)
