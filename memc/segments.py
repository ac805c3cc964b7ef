"""One video as several pieces of work: cut at keyframes, converted apart, joined by stream copy.

    plan(src) -> Segment[a, b) ... -> convert_segment (any worker, any order) -> join -> dst

Why the joined file is the file one process would have written:

* the output grid is the whole video's: output frame k is at ``start + k / fps`` with ``start``
  the video's first frame, whichever segment makes it (``pipeline.run(window=...)``); a segment
  covering source frames [a, b) writes exactly the output frames with pts_a <= pts < pts_b, with
  their global numbers as pts. The windows tile the video, so no frame is lost or repeated at a
  join, and the times are the same ``Fraction`` arithmetic as a local run's;
* every output frame depends only on the source pair around it (its t, the scene-cut decision,
  the flows): a segment decodes from its first keyframe a up to frame b (the frame after its
  range), so each of its pairs sees the same two frames a local run sees. No frame before a is
  needed. ``--dedup`` is the exception (it remembers frames across pairs): such files are not cut;
* each segment is encoded video-only with the output's own codec and options, and starts with a
  keyframe; ``join`` copies the packets (no re-encode) into the final container and adds the
  audio, subtitles, chapters and tags of the source with ``remux``, as ``VideoSink`` does locally.
  Pixels differ from a local run's only by the encoder's choices at a cut (a keyframe there);
  lossless codecs (``--crf 0``, ffv1) give identical frames.

Segment files are written under a temporary name and renamed when complete (``outputs``), so a
segment file that exists is finished work: a rerun after an interruption converts only the rest.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import av.error

from .config import ConvertConfig
from .errors import DecodeError, EncodeError, InputError, one_line
from .outputs import atomic_output

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Segment:
    """Source frames [a, b) of a video, as the output frames it must write."""

    index: int
    seek: Fraction | None  # raw pts of its first frame (a keyframe), where decoding starts; None: the start
    lo: Fraction  # its first frame's time on the pipeline's grid: it writes output frames at or after it
    hi: Fraction | None  # the next segment's lo: it writes output frames before it; None: to the end
    outputs: int  # output frames it writes (from the container's index; checked for a middle segment)
    first: int = 0  # the number (pts in 1/fps) of its first output frame

    @property
    def window(self) -> tuple[Fraction, Fraction | None]:
        return (self.lo, self.hi)


@dataclass(frozen=True)
class Plan:
    """How one file is converted: its output rate, its output frame count, its segments."""

    fps: Fraction
    outputs: int  # from the index, or from the declared duration for a file left whole (0 if unknown)
    segments: tuple[Segment, ...]
    source_frames: int | None = None  # from the index; None for a file left whole


def _video_stream(container: av.container.InputContainer):
    """The stream ``VideoSource`` decodes: the first video stream with a decoder."""
    return next((s for s in container.streams.video if s.codec_context is not None), None)


def frame_times(src: str | os.PathLike) -> tuple[list[Fraction], set[Fraction]] | None:
    """Raw pts (seconds, presentation order) of every video packet and of the keyframes, from the
    container alone (no decoding); None when the index cannot be trusted to cut by (missing or
    repeated time stamps)."""
    try:
        with av.open(os.fspath(src), metadata_errors="replace") as container:
            stream = _video_stream(container)
            if stream is None or stream.time_base is None:
                return None
            tb = Fraction(stream.time_base)
            times: list[Fraction] = []
            keys: set[Fraction] = set()
            for packet in container.demux(stream):
                if packet.size == 0 and packet.pts is None:
                    continue  # the demuxer's end-of-stream marker
                if packet.pts is None:
                    return None
                pts = Fraction(packet.pts) * tb
                times.append(pts)
                if packet.is_keyframe:
                    keys.add(pts)
    except (av.error.FFmpegError, OSError, ValueError) as e:
        raise InputError(f"cannot read {os.fspath(src)}: {one_line(e)}") from e
    times.sort()
    if len(set(times)) != len(times):
        return None
    return times, keys


def plan(src: str | os.PathLike, config: ConvertConfig, seconds: float | None) -> Plan:
    """Cut ``src`` at the first keyframe at least ``seconds`` after the previous cut (None or 0: do
    not cut). A file is left whole when it cannot be cut safely: --dedup, a damaged index, or a
    last piece of under two frames. InputError/DecodeError when it is no video."""
    from .io.decode import VideoSource
    from .timing import output_frame_count, output_times, snap_to_grid

    opts = config.input
    with VideoSource(
        src, format=opts.format, raw_size=opts.raw_size, raw_pix_fmt=opts.raw_pix_fmt, raw_fps=opts.raw_fps
    ) as source:
        info = source.info
        fps = config.output_fps(info.fps)
        whole_outputs = (
            output_frame_count(info.start, info.start + info.duration, fps) if info.duration is not None else 0
        )
    whole = Plan(fps, whole_outputs, (Segment(0, None, info.start, None, whole_outputs),))
    if not seconds or config.dedup is not None or opts.format is not None:
        return whole
    found = frame_times(src)
    if found is None or len(found[0]) < 4:
        return whole
    raw, keys = found
    if raw[0] != info.start:
        return whole  # the decoder drops leading frames the index lists: cut nothing
    grid = [snap_to_grid(pts, info.start, info.fps, info.time_base) for pts in raw]
    if any(b <= a for a, b in zip(grid, grid[1:])):
        return whole
    end = grid[-1] + (grid[-1] - grid[-2])  # as retime ends a run: the last frame lasts the interval before it
    cuts = [0]
    for i in range(1, len(raw) - 1):  # the last piece keeps at least two frames
        if raw[i] in keys and grid[i] - grid[cuts[-1]] >= Fraction(seconds):
            cuts.append(i)
    segments = []
    for n, a in enumerate(cuts):
        last = n + 1 == len(cuts)
        lo, hi = grid[a], None if last else grid[cuts[n + 1]]
        numbers = output_times(lo, end if hi is None else hi, info.start, fps)
        segments.append(Segment(n, None if a == 0 else raw[a], lo, hi, len(numbers), numbers.start))
    return Plan(fps, output_frame_count(info.start, end, fps), tuple(segments), len(raw))


def convert_segment(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    config: ConvertConfig,
    interpolator,
    segment: Segment,
    progress: Callable[[int], None] | None = None,
):
    """Write ``segment``'s output frames, video only, to ``dst`` (renamed there when complete).

    Returns the run's Stats. DecodeError when a middle segment comes out short (the source
    decodes differently from what its index says); nothing is left under ``dst`` then.
    """
    from .pipeline import open_source, run, sink_for

    with open_source(src, config, seek=segment.seek) as source:
        with atomic_output(dst) as tmp:
            sink = sink_for(tmp, source, config, os.fspath(dst))  # video only: the join adds the rest
            stats = run(source, sink, interpolator, config, progress, window=segment.window)
            if segment.hi is not None and stats.output_frames != segment.outputs:
                raise DecodeError(
                    f"{os.fspath(src)}: segment {segment.index} made {stats.output_frames} output frames, "
                    f"its index promised {segment.outputs} (damaged file?); convert it without segments"
                )
    return stats


def join(
    src: str | os.PathLike,
    parts: Sequence[tuple[str | os.PathLike, int]],
    dst: str | os.PathLike,
    config: ConvertConfig,
    fps: Fraction,
) -> int:
    """Concatenate the segment files ``parts`` ((path, number of its first output frame), in order)
    into ``dst`` by stream copy, with the source's audio, subtitles, chapters and tags; returns the
    video packets written. Written under a temporary name and renamed when complete.
    """
    from .io.decode import VideoSource
    from .io.remux import VIDEO_ONLY_FORMATS, SideStreams

    with VideoSource(src) as source:
        info = source.info
    with atomic_output(dst) as tmp:
        try:
            with av.open(str(tmp), mode="w", format=config.output_format) as out:
                with av.open(os.fspath(parts[0][0])) as first:
                    stream = out.add_stream_from_template(first.streams.video[0])
                if info.rotation and out.format.name not in VIDEO_ONLY_FORMATS:
                    stream.set_display_rotation(info.rotation)
                side = SideStreams(os.fspath(src), out, info.start)
                try:
                    written = 0
                    for part, first_frame in parts:
                        written += _copy_video(Path(part), first_frame / fps, 1 / fps, out, stream, side)
                    side.finish()
                finally:
                    side.close()
        except (av.error.FFmpegError, OSError) as e:
            raise EncodeError(f"joining the segments of {os.fspath(dst)} failed: {one_line(e)}") from e
    return written


def _copy_video(part: Path, start: Fraction, step: Fraction, out, stream, side) -> int:
    """Mux the video packets of one segment file, after the side packets due before each.

    The segment's first frame belongs at ``start``. Containers that store absolute times (Matroska,
    NUT) have it there already; MP4/MOV keep a late start as an edit list in the movie's coarse time
    scale (ms), which moves it slightly: the packets are put back by that (sub-frame) offset, so the
    times inside the segment, exact in the track's own time scale, land on the grid again.
    """
    count = 0
    with av.open(str(part)) as container:
        packets = (p for p in container.demux(container.streams.video[0]) if not (p.size == 0 and p.pts is None))
        head = list(itertools.islice(packets, _REORDER_WINDOW))
        if not head:
            return 0
        tb = head[0].time_base
        shift = math.floor(start / tb + Fraction(1, 2)) - min(p.pts for p in head)  # as FFmpeg rounds
        if abs(shift * tb) >= step / 2:  # more than rounding: not the segment it should be
            raise EncodeError(f"segment {part} does not start at {float(start):.3f} s")
        for packet in itertools.chain(head, packets):
            if shift:
                packet.pts += shift
                if packet.dts is not None:
                    packet.dts += shift
            stamp = packet.dts if packet.dts is not None else packet.pts
            side.mux_until(stamp * packet.time_base)
            packet.stream = stream
            out.mux(packet)
            count += 1
    return count


_REORDER_WINDOW = 64  # packets: the earliest frame of a segment is among its first few (encoder delay)
