"""Encode RGB frames to a file or pipe at an exact frame rate, keeping colour, audio and metadata.

Conventions (shared with ``decode``):

* output frame ``k`` has ``pts = k`` in a time base of ``1 / fps``, so times stay exact for
  rates like 60000/1001;
* RGB -> YUV uses the source's matrix and range (BT.601 when the source is untagged, the same
  rule ``decode`` uses), and the output stream is tagged with the source's colour tags, so a
  decode -> encode round trip does not shift colours. Y4M cannot carry a matrix: its YUV is
  written in the source's matrix, as ``ffmpeg -i src -f yuv4mpegpipe -`` would;
* odd sizes: codecs that need even dimensions for subsampled chroma (x264, x265, NVENC, MPEG-4)
  get one extra row/column copied from the edge. Padding keeps every source pixel; the extra
  line is a copy of its neighbour and invisible. ``VideoSink.coded_size`` says what was written;
* audio, subtitles, chapters and tags of ``copy_streams_from`` are carried over by ``remux``,
  interleaved with the video by time.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass
from fractions import Fraction
from typing import BinaryIO

import av
import av.error
import numpy as np

from ..config import ENCODER_PRESETS, EncodeOptions
from ..errors import EncodeError, InputError, one_line
from . import yuv
from .colour import RANGE_FULL, RANGE_LIMITED, is_yuv, sws_matrix, yuv_range
from .decode import StreamInfo
from .pipes import StreamWriter
from .remux import VIDEO_ONLY_FORMATS, SideStreams

logger = logging.getLogger(__name__)

# x264/x265 preset names -> NVENC p1 (fastest) .. p7 (best).
_NVENC_PRESETS = dict(zip(ENCODER_PRESETS, ("p1", "p1", "p2", "p3", "p3", "p4", "p5", "p6", "p7", "p7"), strict=True))
# Encoders that take odd sizes with subsampled chroma (chroma size rounds up).
_ODD_SIZE_OK = {"ffv1", "rawvideo", "wrapped_avframe", "png", "utvideo"}
_MAX_REORDER = 64  # frames; no encoder delays a frame's decode this much
# Metadata FFmpeg writes itself or that describes the old file, not the new one.


def _codec_options(codec: str, options: EncodeOptions) -> dict[str, str]:
    """The codec's own spelling of quality and speed."""
    if codec in ("libx264", "libx265"):
        extra = {"x265-params": "log-level=error"} if codec == "libx265" else {}
        return {"crf": str(options.crf), "preset": options.preset, **extra}
    if codec.endswith("_nvenc"):
        return {"preset": _NVENC_PRESETS[options.preset], "rc": "vbr", "cq": str(options.crf)}
    if codec == "libvpx-vp9":
        return {"crf": str(options.crf), "row-mt": "1"}
    if codec == "libsvtav1":
        return {"crf": str(options.crf)}
    return {}


def _nvenc_usable(codec: str, width: int, height: int, pix_fmt: str) -> str | None:
    """None if ``codec`` opens here, else FFmpeg's reason (NVENC needs an NVIDIA GPU and driver)."""
    if codec not in av.codecs_available:
        return "not built into this FFmpeg"
    try:
        ctx = av.CodecContext.create(codec, "w")
        ctx.width, ctx.height, ctx.pix_fmt = width, height, pix_fmt
        ctx.time_base = Fraction(1, 25)
        ctx.open()
    except (av.error.FFmpegError, ValueError, OSError) as e:
        return one_line(e)
    return None


def _available_video_encoders() -> str:
    wanted = ("libx264", "libx265", "h264_nvenc", "hevc_nvenc", "libvpx-vp9", "libsvtav1", "ffv1", "mpeg4", "rawvideo")
    return ", ".join(c for c in wanted if c in av.codecs_available)


@dataclass(frozen=True)
class PlaneTarget:
    """The YUV an encoder takes, for ``yuv.rgb_to_planes`` (on the GPU) and ``VideoSink.write_planes``."""

    pix_fmt: str
    matrix: int  # swscale matrix id (``colour.sws_matrix``)
    full_range: bool
    pad: tuple[int, int]  # (rows, columns) of edge replication to the coded size


class VideoSink:
    """Context manager that writes frames ``write(rgb, k)`` at ``pts = k / fps``.

    On an exception inside ``with`` the container is closed without flushing the encoder;
    deleting the partial file is the caller's job. ``frames_written`` counts frames given to
    the encoder; ``coded_size`` is the (width, height) actually encoded (see odd sizes above).
    """

    def __init__(
        self,
        dest: str | os.PathLike | BinaryIO,
        *,
        fps: Fraction,
        width: int,
        height: int,
        source: StreamInfo | None = None,
        options: EncodeOptions | None = None,
        format: str | None = None,
        copy_streams_from: str | os.PathLike | None = None,
        label: str | os.PathLike | None = None,
    ) -> None:
        """``label`` names the output in messages (the final name, when ``dest`` is a temporary one)."""
        fps = Fraction(fps)
        if fps <= 0:
            raise InputError(f"fps must be positive, got {fps}")
        if width <= 0 or height <= 0:
            raise InputError(f"frame size must be positive, got {width}x{height}")
        self.fps, self.width, self.height = fps, width, height
        self.frames_written = 0
        self._closed = False
        self._side: SideStreams | None = None
        self._source = source
        target, format = self._target(dest, format)
        if label is not None:
            self._name = os.fspath(label)
        container_options = {"strict": "-1"} if format == "yuv4mpegpipe" else {}
        if isinstance(self._pipe, StreamWriter):
            container_options["flush_packets"] = "1"  # low latency: each packet leaves at once
        try:
            self._container = av.open(target, mode="w", format=format, options=container_options)
        except (av.error.FFmpegError, ValueError, OSError) as e:
            if format is None and "determine output format" in str(e):
                suffix = os.path.splitext(self._name)[1] or "(none)"
                raise EncodeError(
                    f"cannot write {self._name}: no container for the extension {suffix}; "
                    "use .mp4, .mkv, .mov, .webm, .y4m ... or name one with -f"
                ) from e
            raise EncodeError(f"cannot write {self._name}: {one_line(e)}") from e
        try:
            self._add_video_stream(options or EncodeOptions())
            if copy_streams_from is not None:
                shift = source.start if source is not None else Fraction(0)
                self._side = SideStreams(os.fspath(copy_streams_from), self._container, shift)
        except BaseException:
            self._abort()
            raise

    def _target(self, dest: str | os.PathLike | BinaryIO, format: str | None):
        """Where to write and in which container; checks a path up front (FFmpeg opens lazily)."""
        if isinstance(dest, (str, os.PathLike)) and os.fspath(dest) == "-":
            self._name = "<stdout>"
            self._pipe = StreamWriter(sys.stdout.buffer)
            return self._pipe, format or "yuv4mpegpipe"
        if isinstance(dest, (str, os.PathLike)):
            path = os.fspath(dest)
            self._name, self._pipe = path, None
            parent = os.path.dirname(os.path.abspath(path))
            if os.path.isdir(path):
                raise EncodeError(f"cannot write {path}: it is a directory")
            if not os.path.isdir(parent):
                raise EncodeError(f"cannot write {path}: no such directory {parent}")
            if not os.access(parent, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
                raise EncodeError(f"cannot write {path}: permission denied")
            return path, format
        self._name = getattr(dest, "name", None) or "<stream>"
        self._pipe = dest
        if format is None:
            raise InputError("format is required when writing to a file object")
        return dest, format

    def _add_video_stream(self, options: EncodeOptions) -> None:
        container, source = self._container, self._source
        fmt_name = container.format.name
        high_bit = source is not None and source.bit_depth > 8
        if options.hw_encode == "on" and fmt_name in ("yuv4mpegpipe", "rawvideo"):
            raise EncodeError(f"--hw-encode on: {fmt_name} output is not encoded; write a file, or --hw-encode auto")
        if fmt_name == "yuv4mpegpipe":
            codec = "wrapped_avframe"
            pix_fmt = options.pix_fmt or ("yuv420p10le" if high_bit else "yuv420p")
        elif fmt_name == "rawvideo":
            codec, pix_fmt = "rawvideo", options.pix_fmt or "rgb24"
        else:
            codec = self._pick_codec(options, fmt_name, high_bit)
            pix_fmt = self._pick_pix_fmt(codec, options.pix_fmt, high_bit, source.pix_fmt if source else None)
        self.codec, self.pix_fmt = codec, pix_fmt

        chroma = av.VideoFormat(pix_fmt)
        needs_even = codec not in _ODD_SIZE_OK and (chroma.chroma_width(3) != 3 or chroma.chroma_height(3) != 3)
        self._pad = ((self.height % 2) if needs_even else 0, (self.width % 2) if needs_even else 0)
        self.coded_size = (self.width + self._pad[1], self.height + self._pad[0])
        if any(self._pad):
            logger.debug(
                "%s needs even sizes: padding %dx%d to %dx%d by edge replication",
                codec,
                self.width,
                self.height,
                *self.coded_size,
            )

        try:
            stream = container.add_stream(codec, rate=self.fps, options=_codec_options(codec, options))
        except (av.error.FFmpegError, ValueError) as e:
            raise EncodeError(f"unknown video codec {codec!r}; available: {_available_video_encoders()}") from e
        stream.width, stream.height = self.coded_size
        stream.pix_fmt = pix_fmt
        stream.time_base = 1 / self.fps
        cc = stream.codec_context
        cc.time_base = 1 / self.fps
        if codec == "mpeg4":  # constant quantiser, the closest thing to crf (2 = best .. 31)
            cc.qmin = cc.qmax = max(2, min(31, round(options.crf / 6)))

        self._yuv = is_yuv(pix_fmt)
        self._matrix = sws_matrix(source.colorspace if source else 2)
        self._range = (
            RANGE_FULL
            if pix_fmt.startswith("yuvj")
            else yuv_range(source.color_range, source.pix_fmt)
            if source
            else RANGE_LIMITED
        )
        if self._yuv:  # the tags swscale gives a converted frame, for frames built from planes (write_planes)
            tagged = av.VideoFrame(2, 2, "rgb24").reformat(
                format=pix_fmt, dst_colorspace=self._matrix, dst_color_range=self._range
            )
            self._frame_tags = (tagged.colorspace, tagged.color_range)
            cc.color_range = self._range
            if source is not None:
                cc.colorspace = source.colorspace
                cc.color_primaries = source.color_primaries
                cc.color_trc = source.color_trc
        if source is not None and fmt_name not in VIDEO_ONLY_FORMATS:
            if source.rotation:
                stream.set_display_rotation(source.rotation)
            if source.sample_aspect_ratio:
                stream.sample_aspect_ratio = source.sample_aspect_ratio
                cc.sample_aspect_ratio = source.sample_aspect_ratio
        try:
            cc.open()  # now, so a codec that cannot run here fails before any frame is decoded
        except (av.error.FFmpegError, ValueError, OSError) as e:
            if codec.endswith("_nvenc"):
                raise EncodeError(
                    f"{codec} is not usable here (no NVIDIA encoder): {one_line(e)}; "
                    f"available: {_available_video_encoders()}"
                ) from e
            raise EncodeError(
                f"cannot open video codec {codec} ({pix_fmt}, {self.coded_size[0]}x{self.coded_size[1]}): {one_line(e)}"
            ) from e
        self._stream = stream
        self._last_dts: int | None = None

    def _pick_codec(self, options: EncodeOptions, fmt_name: str, high_bit: bool) -> str:
        """Resolve "auto" (and check an explicit name) against this FFmpeg and container."""
        codec = options.codec
        if codec == "auto":
            codec = "libvpx-vp9" if fmt_name == "webm" else ("libx265" if high_bit else "libx264")
            if options.hw_encode != "off":
                codec = self._hardware_or(codec, options.hw_encode, fmt_name, high_bit)
        if codec not in av.codecs_available:
            raise EncodeError(f"unknown video codec {codec!r}; available: {_available_video_encoders()}")
        try:
            encoder = av.Codec(codec, "w")
        except (av.error.FFmpegError, ValueError) as e:
            raise EncodeError(f"{codec!r} is not a video encoder; available: {_available_video_encoders()}") from e
        if encoder.type != "video":
            raise EncodeError(f"{codec!r} is not a video encoder; available: {_available_video_encoders()}")
        supported = self._container.supported_codecs
        if supported and codec not in supported:
            raise EncodeError(f"the {fmt_name} container cannot hold {codec}; pick another codec or output extension")
        return codec

    @staticmethod
    def _hardware_or(software: str, hw_encode: str, fmt_name: str, high_bit: bool) -> str:
        """``--hw-encode auto|on`` with ``-c:v auto``: NVENC when it opens here; else ``software``
        (auto) or a one-line error (on)."""
        if fmt_name == "webm":
            if hw_encode == "on":
                raise EncodeError("--hw-encode on: NVENC cannot write webm (VP9); use .mp4 or .mkv, or --hw-encode off")
            return software
        nvenc = "hevc_nvenc" if high_bit else "h264_nvenc"
        why = _nvenc_usable(nvenc, 256, 256, "p010le" if high_bit else "yuv420p")
        if why is None:
            return nvenc
        if hw_encode == "on":
            raise EncodeError(f"--hw-encode on: {nvenc} cannot open here ({why}); use --hw-encode auto or off")
        logger.info("%s is not usable (%s); encoding with %s", nvenc, why, software)
        return software

    @staticmethod
    def _pick_pix_fmt(codec: str, requested: str | None, high_bit: bool, source_fmt: str | None = None) -> str:
        """The requested format, else the source's own when the encoder takes it (as ffmpeg does), else 4:2:0."""
        formats = [f.name for f in (av.Codec(codec, "w").video_formats or [])]
        if requested is not None:
            if formats and requested not in formats:
                raise EncodeError(f"{codec} cannot encode pix_fmt {requested!r}; it takes {', '.join(formats)}")
            return requested
        wanted = ["yuv420p10le", "p010le"] if high_bit else ["yuv420p"]
        if source_fmt and is_yuv(source_fmt) and formats and source_fmt in formats:
            wanted.insert(0, source_fmt)
        for name in wanted:
            if not formats or name in formats:
                return name
        if high_bit:
            logger.info("%s has no 10-bit 4:2:0 format; writing 8-bit", codec)
            if "yuv420p" in formats:
                return "yuv420p"
        return formats[0]

    def write(self, rgb: np.ndarray, index: int) -> None:
        """Encode ``rgb`` (H, W, 3) uint8/uint16 as output frame ``index`` (pts = index / fps)."""
        if self._closed:
            raise EncodeError(f"{self._name} is already closed")
        if rgb.ndim != 3 or rgb.shape != (self.height, self.width, 3):
            raise ValueError(f"rgb must have shape ({self.height}, {self.width}, 3), got {rgb.shape}")
        if rgb.dtype == np.uint8:
            rgb_format = "rgb24"
        elif rgb.dtype == np.uint16:
            rgb_format = "rgb48le"
        else:
            raise ValueError(f"rgb must be uint8 or uint16, got {rgb.dtype}")
        if any(self._pad):
            rgb = np.pad(rgb, ((0, self._pad[0]), (0, self._pad[1]), (0, 0)), mode="edge")
        if rgb_format == "rgb48le" and sys.byteorder != "little":  # pragma: no cover
            rgb = rgb.byteswap()
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format=rgb_format)
        if self._yuv:
            frame = frame.reformat(format=self.pix_fmt, dst_colorspace=self._matrix, dst_color_range=self._range)
        else:
            frame = frame.reformat(format=self.pix_fmt)
        self._encode(frame, index)

    def _encode(self, frame: av.VideoFrame, index: int) -> None:
        frame.pts = index
        frame.time_base = self._stream.codec_context.time_base
        try:
            if self._side is not None:
                self._side.mux_until(Fraction(index) / self.fps)
            self._mux_video(self._stream.encode(frame))
        except BrokenPipeError:
            raise
        except (av.error.FFmpegError, OSError) as e:
            raise EncodeError(f"writing frame {index} to {self._name} failed: {one_line(e)}") from e
        self.frames_written += 1

    def planes_target(self) -> PlaneTarget | None:
        """What ``write_planes`` takes, for a caller that converts RGB -> YUV itself (on a GPU):
        None when the output is not a 4:2:0 format ``yuv`` converts."""
        if not self._yuv or not yuv.supports(self.pix_fmt) or self.coded_size[0] % 2 or self.coded_size[1] % 2:
            return None  # (odd coded sizes: codecs that take them, like FFV1, keep the swscale path)
        return PlaneTarget(self.pix_fmt, self._matrix, self._range == RANGE_FULL, self._pad)

    def write_planes(self, planes: yuv.HostPlanes, index: int) -> None:
        """Encode output frame ``index`` from the planes of ``planes_target()``'s format, converted
        (and padded to ``coded_size``) by the caller; the same frame ``write`` would encode, to
        within one code value."""
        if self._closed:
            raise EncodeError(f"{self._name} is already closed")
        if planes.pix_fmt != self.pix_fmt:
            raise ValueError(f"planes are {planes.pix_fmt}, the encoder takes {self.pix_fmt}")
        frame = av.VideoFrame(*self.coded_size, self.pix_fmt)
        for plane, data in zip(frame.planes, planes.arrays(), strict=True):
            rows = np.frombuffer(plane, data.dtype).reshape(plane.height, -1)
            if rows.shape[1] < data.shape[1] or plane.height != data.shape[0]:
                raise ValueError(f"a {data.shape} plane does not fit {self.pix_fmt} at {self.coded_size}")
            rows[:, : data.shape[1]] = data
        frame.colorspace, frame.color_range = self._frame_tags
        self._encode(frame, index)

    def _mux_video(self, packets: list[av.Packet]) -> None:
        """Mux encoder output, repairing impossible dts first.

        FFmpeg 8's libx265 wrapper sometimes returns uninitialised dts (e.g. -1.8e17) for
        streams without B-frames, which MP4 rejects ("pts/dts pair unsupported"). A dts after
        its pts, far before it, or not increasing is replaced by min(pts, previous dts + 1).
        """
        for packet in packets:
            dts, pts = packet.dts, packet.pts
            if pts is not None and (
                dts is None
                or dts > pts
                or pts - dts > _MAX_REORDER
                or (self._last_dts is not None and dts <= self._last_dts)
            ):
                fixed = pts if self._last_dts is None else min(pts, self._last_dts + 1)
                logger.debug("%s gave dts %s for pts %s; using %s", self.codec, dts, pts, fixed)
                packet.dts = fixed
            self._last_dts = packet.dts
            self._container.mux(packet)

    def close(self) -> None:
        """Flush the encoder, mux the remaining audio/subtitles, close; idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            try:
                self._mux_video(self._stream.encode(None))
                if self._side is not None:
                    self._side.finish()
            except BrokenPipeError:
                raise
            except (av.error.FFmpegError, OSError) as e:
                raise EncodeError(f"finishing {self._name} failed: {one_line(e)}") from e
            finally:
                if self._side is not None:
                    self._side.close()
            try:
                self._container.close()
            except BrokenPipeError:
                raise
            except (av.error.FFmpegError, OSError) as e:
                raise EncodeError(f"closing {self._name} failed: {one_line(e)}") from e
            if self._pipe is not None and hasattr(self._pipe, "flush"):
                self._pipe.flush()
        except BaseException:
            self._abort()
            raise

    def _abort(self) -> None:
        """Close without flushing; errors here would only hide the one that got us here."""
        self._closed = True
        for closer in ((self._side.close,) if self._side is not None else ()) + (self._container.close,):
            try:
                closer()
            except Exception as e:  # noqa: BLE001 - secondary error while failing
                logger.debug("ignoring error while aborting %s: %s", self._name, e)

    def __enter__(self) -> VideoSink:
        return self

    def __exit__(self, exc_type: type | None, *exc_info: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self._abort()
