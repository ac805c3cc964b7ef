"""VideoSink: exact output rates, audio copy and sync, bit depth, colour tags, odd sizes, pipes, errors.

Clips are tiny and encoded with fast presets; every decode check goes through PyAV directly or
through memc.io.decode.VideoSource.
"""

from __future__ import annotations

import dataclasses
import io
import sys
from fractions import Fraction

import av
import numpy as np
import pytest

from memc.errors import EncodeError, InputError
from memc.io.decode import StreamInfo, VideoSource
from memc.io.encode import EncodeOptions, VideoSink

W, H = 64, 48
FAST = EncodeOptions(preset="ultrafast")


def noise(seed: int, height: int = H, width: int = W) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def flat(rgb=(200, 40, 90), height: int = H, width: int = W, dtype=np.uint8) -> np.ndarray:
    image = np.empty((height, width, 3), dtype)
    image[:] = rgb
    return image


def info(**changes) -> StreamInfo:
    """A plausible 8-bit BT.709 limited-range source description."""
    base = StreamInfo(
        width=W,
        height=H,
        fps=Fraction(24),
        time_base=Fraction(1, 12288),
        start=Fraction(0),
        duration=Fraction(1),
        frame_count=24,
        bit_depth=8,
        pix_fmt="yuv420p",
        color_range=1,
        colorspace=1,
        color_primaries=1,
        color_trc=1,
        rotation=0,
        sample_aspect_ratio=None,
        codec_name="h264",
        format_name="mp4",
        has_audio=False,
    )
    return dataclasses.replace(base, **changes)


def make_av_clip(path, *, seconds=1.0, fps=24, video_start=0, sample_rate=48000):
    """H.264 + AAC (440 Hz sine) clip; video pts start at ``video_start`` frames, audio at 0."""
    n_video = round(seconds * fps)
    n_audio = round(seconds * sample_rate)
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=fps, options={"preset": "ultrafast"})
        video.width, video.height, video.pix_fmt = W, H, "yuv420p"
        audio = out.add_stream("aac", rate=sample_rate)
        audio_pts = 0
        for k in range(n_video):
            frame = av.VideoFrame.from_ndarray(noise(k)).reformat(format="yuv420p")
            frame.pts = video_start + k
            out.mux(video.encode(frame))
            while audio_pts < min((k + 1) * sample_rate // fps, n_audio):
                t = np.arange(audio_pts, audio_pts + 1024) / sample_rate
                wave = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
                chunk = av.AudioFrame.from_ndarray(np.stack([wave, wave]), format="fltp", layout="stereo")
                chunk.sample_rate, chunk.pts = sample_rate, audio_pts
                out.mux(audio.encode(chunk))
                audio_pts += 1024
        out.mux(video.encode(None))
        out.mux(audio.encode(None))
    return path


def stream_durations(path) -> tuple[Fraction, Fraction | None, str | None]:
    """(video, audio) durations in seconds from the packets themselves, and the audio codec."""
    with av.open(str(path)) as src:
        ends: dict[str, Fraction] = {}
        starts: dict[str, Fraction] = {}
        for packet in src.demux():
            if packet.pts is None:
                continue
            kind = packet.stream.type
            begin = packet.pts * packet.time_base
            end = (packet.pts + packet.duration) * packet.time_base
            starts[kind] = min(starts.get(kind, begin), begin)
            ends[kind] = max(ends.get(kind, end), end)
        codec = src.streams.audio[0].codec_context.name if src.streams.audio else None
    video = ends["video"] - starts["video"]
    audio = ends["audio"] - max(starts["audio"], Fraction(0)) if "audio" in ends else None
    return video, audio, codec


def test_ntsc_rate_is_exact(tmp_path):
    fps = Fraction(60000, 1001)
    path = tmp_path / "out.mp4"
    with VideoSink(path, fps=fps, width=W, height=H, options=FAST) as sink:
        for k in range(12):
            sink.write(noise(k), k)
    assert sink.frames_written == 12
    with av.open(str(path)) as out:
        stream = out.streams.video[0]
        assert stream.average_rate == fps and stream.frames == 12
    with VideoSource(path) as src:  # frame k at exactly k * 1001/60000 s
        assert [f.pts for f in src.frames()] == [k / fps for k in range(12)]


@pytest.mark.parametrize("video_start", [0, 12])  # source video starting at 0 s and at 0.5 s
def test_audio_is_copied_and_stays_in_sync(tmp_path, video_start):
    src_path = make_av_clip(tmp_path / "src.mp4", seconds=1.5, video_start=video_start)
    with VideoSource(src_path) as src:
        source = src.info
    assert source.start == Fraction(video_start, 24)
    n_out = round((Fraction(3, 2) - source.start) * 48)  # same span of time, at 48 fps
    out_path = tmp_path / "out.mp4"
    with VideoSink(
        out_path, fps=Fraction(48), width=W, height=H, source=source, options=FAST, copy_streams_from=src_path
    ) as sink:
        for k in range(n_out):
            sink.write(noise(k), k)
    video, audio, codec = stream_durations(out_path)
    assert codec == "aac"  # stream copy, not re-encoded
    # Audio covers the video span: within 60 ms (about 3 AAC frames of 21.3 ms) whatever the shift.
    assert abs(float(audio - video)) < 0.060, (video, audio)


def test_audio_is_reencoded_when_container_cannot_hold_it(tmp_path):
    src_path = make_av_clip(tmp_path / "src.mp4", seconds=0.5)
    with VideoSource(src_path) as src:
        source = src.info
    out_path = tmp_path / "out.webm"  # webm holds only Opus/Vorbis audio
    with VideoSink(
        out_path,
        fps=Fraction(24),
        width=W,
        height=H,
        source=source,
        options=EncodeOptions(preset="ultrafast", crf=40),
        copy_streams_from=src_path,
    ) as sink:
        for k in range(12):
            sink.write(noise(k), k)
    video, audio, codec = stream_durations(out_path)
    assert codec == "opus"
    assert abs(float(audio - video)) < 0.060, (video, audio)  # Opus frames are 20 ms


def test_ten_bit_source_gives_ten_bit_output(tmp_path):
    level = round(700 / 1023 * 65535)  # a 10-bit grey on the 16-bit scale
    image = flat((level, level, level), dtype=np.uint16)
    path = tmp_path / "ten.mp4"
    with VideoSink(
        path, fps=Fraction(24), width=W, height=H, options=FAST, source=info(bit_depth=10, pix_fmt="yuv420p10le")
    ) as sink:
        assert (sink.codec, sink.pix_fmt) == ("libx265", "yuv420p10le")
        for k in range(2):
            sink.write(image, k)
    with VideoSource(path) as src:
        assert (src.info.codec_name, src.info.pix_fmt, src.info.bit_depth) == ("hevc", "yuv420p10le", 10)
        decoded = next(src.frames()).rgb
    assert decoded.dtype == np.uint16
    # Flat grey at crf 18: within 4 ten-bit codes (4 * 64 on the 16-bit scale).
    assert np.abs(decoded.astype(int) - level).max() <= 4 * 64


@pytest.mark.parametrize("colorspace,color_range", [(1, 1), (1, 2), (5, 1), (2, 0)])
def test_colour_round_trip_keeps_tags_and_values(tmp_path, colorspace, color_range):
    source = info(
        colorspace=colorspace,
        color_range=color_range,
        color_primaries=1 if colorspace == 1 else 2,
        color_trc=1 if colorspace == 1 else 2,
    )
    path = tmp_path / "c.mp4"
    with VideoSink(path, fps=Fraction(24), width=W, height=H, source=source, options=FAST) as sink:
        sink.write(flat(), 0)
    with VideoSource(path) as src:
        out = src.info
        decoded = next(src.frames()).rgb
    assert out.colorspace == colorspace and out.color_primaries == source.color_primaries
    # An untagged source is written as limited range; H.264 may then signal nothing at all (0).
    assert out.color_range == color_range if color_range else out.color_range in (0, 1)
    # Flat patch: x264 at crf 18 is near lossless; RGB->YUV->RGB 8-bit rounding is <= 2 codes.
    assert np.abs(decoded.astype(int) - flat()).max() <= 3


def test_odd_size_is_padded_by_edge_replication(tmp_path):
    width, height = 321, 239
    x, y = np.meshgrid(np.arange(width), np.arange(height))
    # Smooth ramps: 4:2:0 chroma barely changes them, so pixel positions can be checked.
    image = np.stack(
        [x * 255 // (width - 1), y * 255 // (height - 1), (x + y) * 255 // (width + height)], axis=-1
    ).astype(np.uint8)
    path = tmp_path / "odd.mp4"
    with VideoSink(
        path, fps=Fraction(24), width=width, height=height, options=EncodeOptions(preset="ultrafast", crf=0)
    ) as sink:
        assert sink.coded_size == (322, 240)
        sink.write(image, 0)
    with VideoSource(path) as src:
        decoded = next(src.frames()).rgb.astype(int)
    assert decoded.shape == (240, 322, 3)
    # crf 0 is lossless in YUV; what remains is 8-bit YUV rounding and chroma subsampling of
    # ramps of <= 1.1 codes/pixel (bilinear chroma): 4 codes. The last source column and row are intact.
    assert np.abs(decoded[:height, :width] - image).max() <= 4
    # The added column and row repeat the edge.
    assert np.abs(decoded[:height, width] - decoded[:height, width - 1]).max() <= 3
    assert np.abs(decoded[height, :width] - decoded[height - 1, :width]).max() <= 3


def test_odd_size_is_kept_for_ffv1(tmp_path):
    path = tmp_path / "odd.mkv"
    with VideoSink(path, fps=Fraction(24), width=65, height=47, options=EncodeOptions(codec="ffv1")) as sink:
        assert sink.coded_size == (65, 47)
        sink.write(noise(0, 47, 65), 0)
    with VideoSource(path) as src:
        assert (src.info.width, src.info.height) == (65, 47)


def test_y4m_to_file_object():
    buf = io.BytesIO()
    frames = [noise(k) for k in range(3)]
    with VideoSink(buf, fps=Fraction(60), width=W, height=H, format="yuv4mpegpipe", source=info()) as sink:
        for k, image in enumerate(frames):
            sink.write(image, k)
    data = buf.getvalue()
    header = data.split(b"\n", 1)[0].split()
    assert header[0] == b"YUV4MPEG2" and b"F60:1" in header and b"W64" in header and b"H48" in header
    assert data.count(b"FRAME\n") == 3
    buf.seek(0)
    with VideoSource(buf, format="yuv4mpegpipe") as src:
        assert [f.pts for f in src.frames()] == [Fraction(k, 60) for k in range(3)]


def test_ten_bit_y4m_keeps_depth():
    buf = io.BytesIO()
    with VideoSink(
        buf,
        fps=Fraction(24),
        width=W,
        height=H,
        format="yuv4mpegpipe",
        source=info(bit_depth=10, pix_fmt="yuv420p10le"),
    ) as sink:
        sink.write(flat((30000, 30000, 30000), dtype=np.uint16), 0)
    assert b" C420p10 " in buf.getvalue().split(b"\n", 1)[0] + b" "


def test_stdout_gets_only_y4m(monkeypatch):
    class FakeStdout:
        buffer = io.BytesIO()

    monkeypatch.setattr(sys, "stdout", FakeStdout())
    with VideoSink("-", fps=Fraction(25), width=W, height=H) as sink:
        sink.write(noise(0), 0)
    assert FakeStdout.buffer.getvalue().startswith(b"YUV4MPEG2 W64 H48 F25:1")


def test_rawvideo_is_rgb24_bytes():
    buf = io.BytesIO()
    frames = [noise(k) for k in range(2)]
    with VideoSink(buf, fps=Fraction(24), width=W, height=H, format="rawvideo") as sink:
        for k, image in enumerate(frames):
            sink.write(image, k)
    assert buf.getvalue() == b"".join(f.tobytes() for f in frames)  # no conversion, no header


def test_rotation_and_aspect_ratio_are_carried(tmp_path):
    path = tmp_path / "r.mp4"
    source = info(rotation=90, sample_aspect_ratio=Fraction(4, 3))
    with VideoSink(path, fps=Fraction(24), width=W, height=H, source=source, options=FAST) as sink:
        sink.write(noise(0), 0)
    with VideoSource(path) as src:
        assert src.info.rotation == 90 and src.info.sample_aspect_ratio == Fraction(4, 3)


def test_unknown_codec_names_it_and_lists_choices(tmp_path):
    with pytest.raises(EncodeError, match=r"'nope'.*available: .*libx264"):
        VideoSink(tmp_path / "x.mp4", fps=Fraction(24), width=W, height=H, options=EncodeOptions(codec="nope"))
    with pytest.raises(EncodeError, match="not a video encoder"):
        VideoSink(tmp_path / "x.mp4", fps=Fraction(24), width=W, height=H, options=EncodeOptions(codec="aac"))


def test_nvenc_without_gpu_is_a_clear_error(tmp_path):
    try:
        with VideoSink(
            tmp_path / "x.mp4", fps=Fraction(24), width=W, height=H, options=EncodeOptions(codec="h264_nvenc")
        ):
            pass
    except EncodeError as e:
        assert "h264_nvenc is not usable here (no NVIDIA encoder)" in str(e)
    else:
        pytest.skip("an NVIDIA encoder works on this machine")


def test_hw_encode_auto_falls_back_to_software(tmp_path, monkeypatch):
    monkeypatch.setattr("memc.io.encode._nvenc_usable", lambda *a: "no NVIDIA GPU")
    with VideoSink(tmp_path / "x.mp4", fps=Fraction(24), width=W, height=H, options=FAST) as sink:
        assert sink.codec == "libx264"
        sink.write(noise(0), 0)


def test_hw_encode_auto_picks_nvenc_when_it_opens(monkeypatch):
    monkeypatch.setattr("memc.io.encode._nvenc_usable", lambda *a: None)
    assert VideoSink._hardware_or("libx264", "auto", "mp4", high_bit=False) == "h264_nvenc"
    assert VideoSink._hardware_or("libx265", "on", "matroska", high_bit=True) == "hevc_nvenc"
    assert VideoSink._hardware_or("libvpx-vp9", "auto", "webm", high_bit=False) == "libvpx-vp9"


def test_hw_encode_off_never_probes(tmp_path, monkeypatch):
    def probe(*args):
        raise AssertionError("--hw-encode off probed NVENC")

    monkeypatch.setattr("memc.io.encode._nvenc_usable", probe)
    options = EncodeOptions(preset="ultrafast", hw_encode="off")
    with VideoSink(tmp_path / "x.mp4", fps=Fraction(24), width=W, height=H, options=options) as sink:
        assert sink.codec == "libx264"


@pytest.mark.parametrize(
    "dest, match",
    [
        ("x.mp4", r"--hw-encode on: h264_nvenc cannot open here \(no NVIDIA GPU\)"),
        ("x.webm", "NVENC cannot write webm"),
    ],
)
def test_hw_encode_on_fails_in_one_line(tmp_path, monkeypatch, dest, match):
    monkeypatch.setattr("memc.io.encode._nvenc_usable", lambda *a: "no NVIDIA GPU")
    options = EncodeOptions(hw_encode="on")
    with pytest.raises(EncodeError, match=match) as err:
        VideoSink(tmp_path / dest, fps=Fraction(24), width=W, height=H, options=options)
    assert "\n" not in str(err.value)
    assert not (tmp_path / dest).exists()


@pytest.mark.parametrize(
    "codec, hw_encode, match",
    [
        ("libx264", "on", "-c:v names libx264"),
        ("h264_nvenc", "off", "-c:v names h264_nvenc"),
        ("auto", "gpu", "one of"),
    ],
)
def test_hw_encode_conflicts_with_codec(codec, hw_encode, match):
    with pytest.raises(InputError, match=match):
        EncodeOptions(codec=codec, hw_encode=hw_encode)


def test_unwritable_destination_names_the_path(tmp_path):
    bad = tmp_path / "no" / "such" / "dir" / "x.mp4"
    with pytest.raises(EncodeError, match="no such directory") as err:
        VideoSink(bad, fps=Fraction(24), width=W, height=H)
    assert str(bad) in str(err.value)


def test_bad_arguments_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="crf"):
        EncodeOptions(crf=99)
    with pytest.raises(InputError, match="fps"):
        VideoSink(tmp_path / "x.mp4", fps=Fraction(0), width=W, height=H)
    with VideoSink(tmp_path / "x.mp4", fps=Fraction(24), width=W, height=H, options=FAST) as sink:
        with pytest.raises(ValueError, match=r"shape \(48, 64, 3\)"):
            sink.write(noise(0, 10, 10), 0)


def test_exception_inside_with_closes_without_flushing(tmp_path):
    path = tmp_path / "x.mp4"
    with pytest.raises(RuntimeError, match="boom"):
        with VideoSink(path, fps=Fraction(24), width=W, height=H, options=FAST) as sink:
            sink.write(noise(0), 0)
            raise RuntimeError("boom")
    sink.close()  # idempotent after an abort
    assert not path.exists()  # nothing flushed, not even a header: the caller has nothing to clean


def test_metadata_and_chapters_are_copied(tmp_path):
    src_path = tmp_path / "src.mkv"
    with av.open(str(src_path), "w") as out:
        out.metadata["title"] = "memc test"
        out.set_chapters(
            [{"id": 1, "start": 0, "end": 500, "time_base": Fraction(1, 1000), "metadata": {"title": "one"}}]
        )
        stream = out.add_stream("ffv1", rate=24)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        frame = av.VideoFrame.from_ndarray(noise(0)).reformat(format="yuv420p")
        frame.pts, frame.time_base = 0, Fraction(1, 24)
        out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    out_path = tmp_path / "out.mkv"
    with VideoSink(out_path, fps=Fraction(24), width=W, height=H, options=FAST, copy_streams_from=src_path) as sink:
        sink.write(noise(0), 0)
    with av.open(str(out_path)) as result:
        assert result.metadata["title"] == "memc test"
        (chapter,) = result.chapters()
        assert chapter["metadata"]["title"] == "one"
        assert chapter["end"] * chapter["time_base"] == Fraction(1, 2)


def test_closed_pipe_raises_broken_pipe():
    import os

    read_end, write_end = os.pipe()
    os.close(read_end)
    with os.fdopen(write_end, "wb", buffering=0) as pipe, pytest.raises(BrokenPipeError):
        with VideoSink(pipe, fps=Fraction(24), width=W, height=H, format="yuv4mpegpipe") as sink:
            for k in range(3):
                sink.write(noise(k), k)
