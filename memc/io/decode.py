"""Decode the first video stream of a file or pipe into RGB frames with exact times.

Conventions (shared with ``encode``):

* times are ``Fraction`` seconds: ``pts = Fraction(frame.pts) * time_base`` exactly, never an
  accumulated float;
* frames are ``H x W x 3`` RGB arrays, ``uint8`` for 8-bit sources and ``uint16`` on the full
  0..65535 scale (rgb48le) for sources with more than 8 bits per sample;
* YUV -> RGB uses the source's own matrix (BT.601/709/2020) and range (limited/full), passed
  to swscale explicitly rather than trusting PyAV defaults (PyAV < 17 ignored the frame tags
  and decoded everything as BT.601 limited). Untagged YUV is decoded as BT.601, FFmpeg's
  default; ``encode`` uses the same rule, so an untagged source round-trips without a shift.

Memory is bounded: frames are decoded one at a time; the first frame is held ahead (it is read
at open time so that ``info`` can report the display rotation and a real start), and one frame is
held back until the next shows whether its time stamp is damaged.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import BinaryIO

import av
import av.error
import numpy as np

from ..errors import DecodeError, InputError, one_line
from .colour import RANGE_FULL, bit_depth, is_yuv, sws_matrix, yuv_range
from .pipes import StreamReader

logger = logging.getLogger(__name__)

# Demuxers that turn text into pictures: a text file is not a video to interpolate.
TEXT_DEMUXERS = {"tty", "ansi", "bin", "idf", "xbin", "adf"}
# Demuxers of still images (png_pipe, jpeg_pipe ... end in _pipe too): a picture is not a video.
STILL_DEMUXERS = {"image2"}


def is_still_image(format_name: str) -> bool:
    """Whether FFmpeg read the file with a still-image demuxer (``image2``, ``png_pipe`` ...)."""
    return format_name in STILL_DEMUXERS or format_name.endswith("_pipe")


@dataclass(frozen=True)
class StreamInfo:
    """What the pipeline needs to know about the source video stream."""

    width: int  # coded size of decoded frames (before rotation)
    height: int
    fps: Fraction  # nominal rate
    time_base: Fraction
    start: Fraction  # pts of the first frame, seconds
    duration: Fraction | None  # seconds, if the stream or container says
    frame_count: int | None  # declared, or estimated from duration * fps
    bit_depth: int  # 8, 10, 12, ...
    pix_fmt: str  # source pixel format, e.g. "yuv420p10le"
    color_range: int  # FFmpeg enums; 0/2 = unspecified
    colorspace: int
    color_primaries: int
    color_trc: int
    rotation: int  # degrees counter-clockwise, as VideoFrame.rotation; 0 if none
    sample_aspect_ratio: Fraction | None
    codec_name: str
    format_name: str  # container format
    has_audio: bool


@dataclass(frozen=True)
class SourceFrame:
    """One decoded frame: presentation order index, exact time, RGB pixels."""

    index: int  # 0-based, presentation order after dropping non-monotonic pts
    pts: Fraction  # seconds
    rgb: np.ndarray  # (H, W, 3) uint8, or uint16 for > 8-bit sources


def _rotation_from_metadata(metadata: dict) -> int:
    """Legacy 'rotate' tag (clockwise degrees) as counter-clockwise degrees."""
    try:
        clockwise = int(metadata.get("rotate", "0"))
    except ValueError:
        return 0
    ccw = (-clockwise) % 360
    return ccw - 360 if ccw > 180 else ccw


def _tag(frame_value: int | None, stream_value: int | None, unset: tuple[int, ...]) -> int:
    """A colour tag from the frame, else from the stream, as a plain int."""
    if frame_value is not None and int(frame_value) not in unset:
        return int(frame_value)
    return int(stream_value or 0) if stream_value is not None else int(frame_value or 0)


def _parse_hms(text: str) -> Fraction | None:
    """Matroska's per-stream DURATION tag, 'HH:MM:SS.fraction', as seconds (an end time, see ``_ends_early``)."""
    m = re.fullmatch(r"(\d+):(\d{2}):(\d{2})(?:\.(\d+))?", text.strip())
    if not m:
        return None
    h, mi, s, frac = m.groups()
    return Fraction(int(h) * 3600 + int(mi) * 60 + int(s)) + (Fraction(int(frac), 10 ** len(frac)) if frac else 0)


class VideoSource:
    """Context manager over one input; ``frames()`` streams its first decodable video stream.

    Single pass: ``frames()`` may be iterated once. Attributes: ``info`` (StreamInfo) and
    ``truncated`` (True once decoding stopped early on corrupt or missing data).

    ``seek`` (seconds, a file input) starts ``frames()`` at the keyframe at or before that time
    rather than at the start, for a segment of a long video; ``info`` still describes the whole
    stream (its ``start`` is the first frame's). Frame indices then count from that keyframe.
    """

    def __init__(
        self,
        source: str | os.PathLike | BinaryIO,
        *,
        format: str | None = None,
        raw_size: tuple[int, int] | None = None,
        raw_pix_fmt: str | None = None,
        raw_fps: Fraction | None = None,
        threads: bool = True,
        seek: Fraction | None = None,
    ) -> None:
        self.truncated = False
        self._name = self._describe(source)
        options = self._open_options(format, raw_size, raw_pix_fmt, raw_fps)
        if isinstance(source, (str, os.PathLike)) and os.fspath(source) == "-":
            source = StreamReader(sys.stdin.buffer)
            format = format or "yuv4mpegpipe"  # the documented pipe format
        elif isinstance(source, (str, os.PathLike)):
            path = os.fspath(source)
            if not os.path.exists(path):
                raise InputError(f"no such file: {path}")
            if os.path.isdir(path):
                raise InputError(f"is a directory, not a video file: {path}")
            if os.path.isfile(path) and os.path.getsize(path) == 0:  # a pipe (/dev/fd/N) has size 0 too
                raise InputError(f"empty file, not a video: {path}")
        try:
            # Tags that are not UTF-8 (old muxers, damage) must not make a playable file unreadable.
            self._container = av.open(source, mode="r", format=format, options=options, metadata_errors="replace")
        except (av.error.FFmpegError, ValueError, OSError) as e:
            # Only these are the system refusing the file; demuxers also report a damaged header
            # with errno codes (a Y4M one gave EBUSY, "Device or resource busy").
            if isinstance(e, (PermissionError, FileNotFoundError)):
                raise InputError(f"cannot open {self._name}: {one_line(e)}") from e
            raise InputError(f"not a video file: {self._name} ({one_line(e)})") from e
        try:
            self._start(threads)
            if seek is not None and seek > self.info.start:
                self._seek(Fraction(seek))
        except BaseException:
            self._container.close()
            raise

    @staticmethod
    def _describe(source: object) -> str:
        if isinstance(source, (str, os.PathLike)):
            return "<stdin>" if os.fspath(source) == "-" else os.fspath(source)
        return getattr(source, "name", None) or "<stream>"

    @staticmethod
    def _open_options(
        format: str | None,
        raw_size: tuple[int, int] | None,
        raw_pix_fmt: str | None,
        raw_fps: Fraction | None,
    ) -> dict[str, str]:
        """av.open options; rawvideo carries no header, so size, format and rate are required."""
        if format != "rawvideo":
            return {}
        missing = [
            n for n, v in (("raw_size", raw_size), ("raw_pix_fmt", raw_pix_fmt), ("raw_fps", raw_fps)) if v is None
        ]
        if missing:
            raise InputError(f"rawvideo input needs {', '.join(missing)}")
        width, height = raw_size  # type: ignore[misc]
        if width <= 0 or height <= 0:
            raise InputError(f"raw_size must be positive, got {width}x{height}")
        fps = Fraction(raw_fps)  # type: ignore[arg-type]
        if fps <= 0:
            raise InputError(f"raw_fps must be positive, got {fps}")
        return {
            "video_size": f"{width}x{height}",
            "pixel_format": str(raw_pix_fmt),
            "framerate": f"{fps.numerator}/{fps.denominator}",
        }

    def _start(self, threads: bool) -> None:
        """Pick the stream, read the first frame, fill ``info``."""
        container = self._container
        if not container.streams.video:
            raise InputError(f"not a video file (no video stream): {self._name}")
        if container.format.name in TEXT_DEMUXERS:
            # FFmpeg renders any text file as an ANSI-art "video"; nobody means that.
            raise InputError(f"not a video file (looks like text): {self._name}")
        if is_still_image(container.format.name):
            raise InputError(
                f"{self._name} is a still image, not a video; to interpolate between two images use memc pair A B"
            )
        # A damaged header can name a codec FFmpeg has no decoder for: PyAV then gives no codec context.
        stream = next((s for s in container.streams.video if s.codec_context is not None), None)
        if stream is None:
            raise DecodeError(f"cannot decode {self._name}: no decoder for its video (unknown codec, damaged header?)")
        if threads:
            stream.codec_context.thread_type = "AUTO"
        self._stream = stream
        time_base = stream.time_base or Fraction(1, 1000000)
        self._time_base = Fraction(time_base)
        fps = stream.average_rate or stream.guessed_rate or stream.base_rate
        self._fps = Fraction(fps) if fps else 1 / self._time_base
        self._decoded = 0  # frames out of the decoder, before dropping bad pts
        self._frames = self._decode_frames()
        try:
            self._first = next(self._frames)
        except StopIteration:
            self._first = None
        if self._first is None:
            raise DecodeError(f"no decodable video frames in {self._name}")
        self.info = self._build_info(self._first[0])

    def _seek(self, time: Fraction) -> None:
        """Restart decoding at the keyframe at or before ``time``; from the start if the demuxer overshoots."""
        self._frames.close()
        for target in (time, self.info.start):
            try:
                self._container.seek(round(target / self._time_base), stream=self._stream, backward=True)
            except (av.error.FFmpegError, OSError) as e:
                raise DecodeError(f"cannot seek in {self._name} to {float(target):.3f} s: {one_line(e)}") from e
            self._frames = self._decode_frames()
            self._first = next(self._frames, None)
            if self._first is not None and self._first[1] <= time:
                return
            self._frames.close()
            logger.debug("seeking %s to %s landed at %s; trying the start", self._name, target, self._first)
        raise DecodeError(f"cannot seek in {self._name} to {float(time):.3f} s: no frame at or before it")

    def _build_info(self, first: av.VideoFrame) -> StreamInfo:
        container, stream = self._container, self._stream
        cc = stream.codec_context
        pix_fmt = first.format.name
        duration: Fraction | None = None
        if stream.duration:
            duration = stream.duration * self._time_base
        elif container.duration:
            duration = Fraction(container.duration, av.time_base)
        frame_count = stream.frames if stream.frames and stream.frames > 0 else None
        if frame_count is None and duration is not None:
            frame_count = round(duration * self._fps)
        rotation = int(round(first.rotation or 0)) or _rotation_from_metadata(stream.metadata)
        sar = stream.sample_aspect_ratio
        return StreamInfo(
            width=first.width,
            height=first.height,
            fps=self._fps,
            time_base=self._time_base,
            start=self._first[1],
            duration=duration,
            frame_count=frame_count,
            bit_depth=bit_depth(pix_fmt),
            pix_fmt=pix_fmt,
            # Frame tags are authoritative; the codec context fills in what frames leave unset.
            color_range=_tag(first.color_range, cc.color_range, unset=(0,)),
            colorspace=_tag(first.colorspace, cc.colorspace, unset=(2,)),
            color_primaries=_tag(first.color_primaries, cc.color_primaries, unset=(0, 2)),
            color_trc=_tag(first.color_trc, cc.color_trc, unset=(0, 2)),
            rotation=rotation,
            sample_aspect_ratio=Fraction(sar) if sar else None,
            codec_name=cc.name,
            format_name=container.format.name,
            has_audio=bool(container.streams.audio),
        )

    def _decode_frames(self) -> Iterator[tuple[av.VideoFrame, Fraction]]:
        """Decoded frames with exact, increasing pts; stops (and flags truncation) on mid-stream errors.

        One frame is held back to see the next: a frame whose time stamp jumps ahead of both neighbours
        is damaged and dropped. Kept, it would make every frame after it "out of order" (dropped) and
        the pipeline would fill the jump with interpolated frames, seconds or hours of them.
        """
        previous: Fraction | None = None  # pts of the last frame yielded
        held: tuple[av.VideoFrame, Fraction] | None = None
        step = 1 / self._fps
        decoder = self._container.decode(self._stream)
        while True:
            try:
                frame = next(decoder)
            except StopIteration:
                break
            except (av.error.FFmpegError, EOFError) as e:
                if self._decoded == 0:
                    raise DecodeError(f"cannot decode {self._name}: {one_line(e)}") from e
                self._flag_truncated(f"({one_line(e)})")
                break
            self._decoded += 1
            if frame.pts is not None:
                pts = Fraction(frame.pts) * self._time_base
            elif frame.dts is not None:
                pts = Fraction(frame.dts) * self._time_base
            else:
                pts = Fraction(0) if held is None else held[1] + step
            if held is not None:
                if pts < held[1] and (previous is None or previous < pts):
                    self._drop_jump(held[1])
                elif pts <= held[1]:
                    logger.debug("dropping frame with non-monotonic pts %s (previous %s)", pts, held[1])
                    continue
                else:
                    previous = held[1]
                    yield held
            held = frame, pts
        if held is not None:
            # The last frame has no successor to judge it by: dropped if it lies past the declared end
            # of the stream and far (over 1 s) from the frame before it.
            end = self._declared_end()
            if previous is not None and end is not None and held[1] >= end + step and held[1] - previous > 1:
                self._drop_jump(held[1])
            else:
                previous = held[1]
                yield held
        if previous is not None and not self.truncated and self._ends_early(previous + step):
            self._flag_truncated("(stream ends before its declared duration)")

    def _drop_jump(self, pts: Fraction) -> None:
        logger.warning("dropping a frame of %s with a damaged time stamp (%.3f s)", self._name, pts)

    def _declared_end(self) -> Fraction | None:
        """Where the stream's own header says it ends, if it says."""
        stream = self._stream
        if stream.duration:
            return (stream.start_time or 0) * self._time_base + stream.duration * self._time_base
        # FFmpeg's Matroska muxer writes the track's end time (last pts + duration) in this tag, not its
        # length: adding the start counted it twice and flagged every MKV whose video starts after 0.
        tag = stream.metadata.get("DURATION") or stream.metadata.get("duration")
        return _parse_hms(tag) if tag else None

    def _ends_early(self, decoded_end: Fraction) -> bool:
        """True if the stream's own header promised clearly more than we decoded."""
        declared = self._declared_end()
        if declared is None:
            return False
        # Two frame intervals of slack: the last frame's duration and rounding of the tag.
        return decoded_end < declared - 2 / self._fps

    def _flag_truncated(self, reason: str) -> None:
        self.truncated = True
        logger.warning(
            "%s is truncated or corrupt after frame %d; converting what decoded %s",
            self._name,
            self._decoded,
            reason,
        )

    def _to_rgb(self, frame: av.VideoFrame) -> np.ndarray:
        """Frame -> (H, W, 3) RGB with the source matrix and range, full-range output."""
        fmt = frame.format.name
        out = "rgb48le" if bit_depth(fmt) > 8 else "rgb24"
        kwargs = {}
        if is_yuv(fmt):
            kwargs = dict(
                src_colorspace=sws_matrix(frame.colorspace),
                src_color_range=yuv_range(frame.color_range, fmt),
                dst_color_range=RANGE_FULL,
            )
        rgb = frame.to_ndarray(format=out, **kwargs)
        if out == "rgb48le" and sys.byteorder != "little":  # pragma: no cover
            rgb = rgb.byteswap()
        return rgb

    def frames(self) -> Iterator[SourceFrame]:
        """Frames in increasing pts; the first one was read at open time."""
        if self._first is None:
            raise RuntimeError("VideoSource.frames() can be iterated only once")
        first, self._first = self._first, None
        index = 0
        for frame, pts in _chain(first, self._frames):
            yield SourceFrame(index=index, pts=pts, rgb=self._to_rgb(frame))
            index += 1

    def close(self) -> None:
        """Close the container; idempotent."""
        self._frames.close()
        self._container.close()

    def __enter__(self) -> VideoSource:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _chain(first: tuple, rest: Iterator[tuple]) -> Iterator[tuple]:
    yield first
    yield from rest
