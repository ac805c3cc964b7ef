"""The conversion loop, one source pair at a time.

    (file | stdin) -> decode.VideoSource ==queue==> loop ==queue==> encode.VideoSink -> (file | stdout)

    with --dedup, frames that repeat the last kept one leave the timeline first (motion.held);
    loop, per source pair (i, i+1), for the output frames timing.retime puts in [pts_i, pts_i+1):
        t == 0          -> frame i as decoded (bit-exact)
        repeat (dedup)  -> frame i as decoded (a still pair stays bit-still)
        scene cut       -> the nearer of frames i and i+1, never a blend
        otherwise       -> Interpolator: flows once per pair, then project -> synthesize for each t

Decoding and encoding run in their own threads behind bounded queues (``threads``), so memory
stays bounded whatever the video's length and each output frame is handed to the encoder as soon
as it exists. On a CPU the frames of a pair are synthesized in a third thread while the loop
estimates the next pair's flows. Output safety (temporary name, rename on success) is ``outputs``.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import CancelledError, Future
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import torch
import torch.nn.functional as F

from .config import ConvertConfig
from .io import yuv
from .io.decode import SourceFrame, VideoSource
from .io.encode import PlaneTarget, VideoSink
from .motion import scene
from .motion.held import DROP, NEW, STILL, HeldFrames
from .motion.interpolate import Interpolator, Motion, PairFlows
from .motion.pictures import frame_with_pictures
from .outputs import atomic_output, check_output
from .stages import StageTimer
from .tensors import to_image, to_tensor
from .threads import Ahead, BackgroundWriter, background
from .timing import output_frame_count, retime, snap_to_grid

logger = logging.getLogger(__name__)

SYNTHESIS_AHEAD = 3  # frames given to the synthesis thread and not yet made: bounds the flows held
_UNTIMED = nullcontext()  # a stage when no timer is given: nothing to enter, nothing to sync


@dataclass
class Stats:
    source_frames: int = 0
    output_frames: int = 0
    interpolated: int = 0
    scene_cuts: int = 0  # source pairs treated as cuts
    held: int = 0  # source frames that repeated the previous one, left out of the motion timeline (--dedup)
    seconds: float = 0.0
    fps: Fraction = Fraction(0)
    truncated: bool = False
    encoder: str = ""  # the video encoder that wrote the output (libx264, h264_nvenc ...)

    def summary(self) -> str:
        speed = self.output_frames / self.seconds if self.seconds > 0 else 0.0
        return (
            f"{self.source_frames} source frames -> {self.output_frames} output frames at {_fps_text(self.fps)} fps "
            f"({self.interpolated} interpolated, {self.scene_cuts} scene cuts held"
            + (f", {self.held} repeated frames re-timed" if self.held else "")
            + ") "
            f"in {self.seconds:.1f} s ({speed:.1f} frames/s)"
        )


def _fps_text(fps: Fraction) -> str:
    return str(fps.numerator) if fps.denominator == 1 else f"{fps.numerator}/{fps.denominator} (~{float(fps):.3f})"


class _Pairs:
    """Per source pair: scene decision and flows, computed at most once and reused for every t.

    With ``later`` (the synthesis thread) only the motion is estimated here; the pair-level work on
    it that every t needs (``Motion.pair_flows``: consistency, projection grid) is queued there,
    ahead of the pair's frames, and ``flows`` is its Future: this thread has the most to do."""

    def __init__(
        self,
        interpolator: Interpolator,
        config: ConvertConfig,
        stats: Stats,
        later: Ahead | None = None,
        timed: Callable[[str], AbstractContextManager] = lambda name: _UNTIMED,
    ) -> None:
        self.interpolator, self.config, self.stats, self.later, self.timed = interpolator, config, stats, later, timed
        self.index: int | None = None
        self.cut = False
        self.still = False  # with --dedup: the pair repeats a frame, so the earlier one is shown as it is
        self.flows: PairFlows | Future[PairFlows] | None = None

    def prepare(self, i: int, image0: torch.Tensor, image1: torch.Tensor, still: bool = False) -> None:
        if self.index == i:
            return
        self.index, self.flows, self.cut, self.still = i, None, False, still
        if still:
            return
        motion = None
        with self.timed("flows"):
            threshold = self.config.scene_threshold
            if self.config.scene_detect:
                distance = scene.histogram_distance(image0, image1)
                if scene.needs_flow_check(distance, threshold):
                    self.flows = self.interpolator.flows(image0, image1)
                    self.cut = scene.is_cut(distance, threshold, self.flows.failure)
                else:
                    self.cut = scene.is_cut(distance, threshold)
                if self.cut:
                    self.stats.scene_cuts += 1
                    message = "scene cut between source frames %d and %d (histogram distance %.2f)"
                    logger.info(message, i, i + 1, distance)
            if not self.cut and self.flows is None:
                motion = self.interpolator.motion(image0, image1)
                if self.later is None:
                    self.flows = motion.pair_flows()
        if motion is not None and self.later is not None:  # may wait for the synthesis thread: not timed
            self.flows = self.later.submit(self._finish, motion)

    def _finish(self, motion: Motion) -> PairFlows:
        with self.timed("flows"):  # in the synthesis thread: still charged to the flows
            return motion.pair_flows()


def run(
    source: VideoSource,
    sink_factory: Callable[[Fraction], VideoSink],
    interpolator: Interpolator,
    config: ConvertConfig,
    progress: Callable[[int], None] | None = None,
    window: tuple[Fraction, Fraction | None] | None = None,
    timer: StageTimer | None = None,
) -> Stats:
    """Convert everything ``source`` decodes into the sink made for the output rate; returns Stats.

    ``window`` = (lo, hi) writes only the output frames with lo <= pts < hi (hi None: to the end),
    for a segment of a longer video (``segments``). The output grid stays the whole video's
    (``info.start + k / fps``, frame numbers k included), and every output frame depends only on
    the source pair around it, so a segment's frames are the ones the whole run makes there. The
    source must start at or before lo; decoding stops at the first source frame at or after hi.

    On CUDA (when the encoder takes 4:2:0) the frames stay on the device to the end: each source
    frame is uploaded once, every output frame is converted to YUV there (``io.yuv``) and only its
    planes come back, without blocking the loop; the CPU hands RGB arrays to the encoder as before.
    ``timer`` (benchmarks) gets the seconds of each stage.
    """
    started = time.perf_counter()
    info = source.info
    fps = config.output_fps(info.fps)
    stats = Stats(fps=fps)
    device = interpolator.device
    frames: dict[int, SourceFrame] = {}
    tensors: dict[int, torch.Tensor] = {}
    still_pairs: set[int] = set()  # i where frame i + 1 repeats frame i (--dedup, a run at its bound)

    def timed(name: str, sync: bool = True):
        return timer.stage(name, sync) if timer is not None else _UNTIMED

    def pts_stream() -> Iterator[Fraction]:
        last: Fraction | None = None
        kept = 0  # dense numbering of the frames in the motion timeline
        held = HeldFrames(config.dedup) if config.dedup is not None else None
        decoded = source.frames() if timer is None else timer.iterate("decode", source.frames())
        for frame in background(decoded, "memc-decode"):
            pts = snap_to_grid(frame.pts, info.start, info.fps, info.time_base)
            if last is not None and pts <= last:
                logger.debug("dropping source frame %d: pts %s does not increase", frame.index, pts)
                continue
            stats.source_frames += 1
            verdict = held.step(frame.rgb) if held is not None else NEW
            if verdict == DROP:
                logger.debug("source frame %d repeats the previous one: out of the motion timeline", frame.index)
                stats.held += 1
                continue
            if verdict == STILL:
                still_pairs.add(kept - 1)
            frames[kept] = frame
            kept += 1
            last = pts
            yield pts

    def tensor(i: int) -> torch.Tensor:
        if i not in tensors:
            with timed("upload"):
                tensors[i] = to_tensor(frames[i].rgb, device)
        return tensors[i]

    def frame_at(
        image0: torch.Tensor,
        image1: torch.Tensor,
        flows: PairFlows | Future[PairFlows],
        index: int,
        t: float,
        on_device: bool,
        dtype: np.dtype,
    ) -> np.ndarray | torch.Tensor:
        """Output frame ``index`` between two source frames, with its pictures if asked for: an
        array of ``dtype`` (the decoded frames'), or with ``on_device`` a tensor on the
        interpolator's device. Everything it reads comes in as arguments: on a CPU it runs in the
        synthesis thread (``Ahead``)."""
        if isinstance(flows, Future):  # done: it was queued before this frame (``_Pairs``)
            flows = flows.result()
        with timed("synthesis"):
            start, end = config.debug_frames
            if config.debug_dir is None or not start <= index < end:
                if on_device:
                    return interpolator.frame(image0, image1, flows, t)
                return interpolator.frame_array(image0, image1, flows, t, dtype)
            name = f"frame_{index:06d}"
            image = frame_with_pictures(interpolator, config.debug_dir, name, image0, image1, flows, t)
            return image if on_device else to_image(image, dtype)

    lo, hi = window if window is not None else (None, None)
    with sink_factory(fps) as sink:
        stats.encoder = sink.codec
        target = sink.planes_target() if _colour_on_device(device) else None

        def write(item: tuple[np.ndarray | yuv.HostPlanes | Future, int]) -> None:
            picture, index = item
            if isinstance(picture, Future):  # a frame the synthesis thread is making
                try:
                    picture = picture.result()
                except CancelledError:  # the loop is stopping (an error, Ctrl-C): nothing more to write
                    return
            with timed("encode", sync=False):  # the encoder thread: nothing of the device to wait for
                if isinstance(picture, yuv.HostPlanes):
                    sink.write_planes(picture, index)
                else:
                    sink.write(picture, index)

        writer = BackgroundWriter(write, "memc-encode")
        # On a CPU the frames are synthesized in their own thread while this one estimates the next
        # pair's flows; each gets half the torch threads (the encoder and decoder share the cores too)
        threaded = device.type == "cpu" and target is None  # (tests put a CPU run on the device path)
        synthesis = Ahead("memc-synthesis", SYNTHESIS_AHEAD) if threaded else None
        pairs = _Pairs(interpolator, config, stats, synthesis, timed)
        threads = torch.get_num_threads()
        if synthesis is not None:
            torch.set_num_threads(max(1, threads // 2))
        outputs = retime(pts_stream(), fps, frame_duration=1 / info.fps, start=info.start)
        try:
            for out in outputs:
                for old in [k for k in frames if k < out.source]:  # keep only the pair in use
                    frames.pop(old)
                    tensors.pop(old, None)
                    still_pairs.discard(old)
                if hi is not None and out.pts >= hi:
                    break
                if lo is not None and out.pts < lo:
                    continue
                i = out.source
                shown: int | None = i  # the source frame shown as it is, None for an interpolated one
                if out.t != 0:
                    image0, image1 = tensor(i), tensor(i + 1)
                    pairs.prepare(i, image0, image1, still=i in still_pairs)  # times its own stage
                    if pairs.cut and not pairs.still:
                        shown = i if out.t < Fraction(1, 2) else i + 1
                    elif not pairs.still:
                        shown = None
                if shown is not None:
                    picture = frames[shown].rgb if target is None else tensor(shown)
                else:
                    job = (tensor(i), tensor(i + 1), pairs.flows, out.index, float(out.t))
                    job += (target is not None, frames[i].rgb.dtype)  # on_device, dtype
                    picture = synthesis.submit(frame_at, *job) if synthesis is not None else frame_at(*job)
                    stats.interpolated += 1
                if target is not None:
                    with timed("colour"):
                        picture = _planes(picture, target, 8 * frames[i].rgb.itemsize)
                writer.put((picture, out.index))
                stats.output_frames += 1
                if progress is not None:
                    progress(1)
            writer.close()  # drains: waits for the frames still being made, then the encoder
            if synthesis is not None:
                synthesis.close()
        except BaseException:  # an error or a signal, also while draining: stop both threads
            try:
                if synthesis is not None:
                    synthesis.close(cancel=True)
            finally:
                writer.close(drain=False)
            raise
        finally:
            outputs.close()  # stops the decoder thread now when a window ends early
            torch.set_num_threads(threads)
    stats.truncated = source.truncated
    stats.seconds = time.perf_counter() - started
    return stats


def _colour_on_device(device: torch.device) -> bool:
    """RGB -> YUV on the device only on CUDA: on a CPU, swscale in the encoder thread is faster and
    runs beside the loop (the tests turn this on to check the device path on a CPU)."""
    return device.type == "cuda"


def _planes(image: torch.Tensor, target: PlaneTarget, source_bits: int) -> yuv.HostPlanes:
    """A frame on the device -> the encoder's YUV planes, on their way to the host."""
    if any(target.pad):  # edge replication to the coded size, as VideoSink.write pads an array
        image = F.pad(image, (0, target.pad[1], 0, target.pad[0]), mode="replicate")
    planes = yuv.rgb_to_planes(image, target.pix_fmt, target.matrix, target.full_range, source_bits)
    return yuv.HostPlanes(planes, target.pix_fmt)


def estimated_output_frames(source: VideoSource, fps: Fraction) -> int | None:
    """For the progress bar: output frames if the source's duration is known."""
    info = source.info
    if info.duration is None:
        return None
    return output_frame_count(info.start, info.start + info.duration, fps)


def open_source(src: str, config: ConvertConfig, seek: Fraction | None = None) -> VideoSource:
    """The decoder for ``src`` with the input options of ``config`` (raw/pipe formats), from ``seek`` if given."""
    opts = config.input
    return VideoSource(
        src, format=opts.format, raw_size=opts.raw_size, raw_pix_fmt=opts.raw_pix_fmt, raw_fps=opts.raw_fps, seek=seek
    )


def sink_for(
    target: str | os.PathLike,
    source: VideoSource,
    config: ConvertConfig,
    label: str,
    copy_streams_from: str | None = None,
) -> Callable[[Fraction], VideoSink]:
    """The encoder ``run`` opens once it knows the output rate: the source's size and colour,
    ``config``'s encoding and container; errors name ``label`` (the final output, not ``target``)."""
    info = source.info

    def sink(rate: Fraction) -> VideoSink:
        return VideoSink(
            target,
            fps=rate,
            width=info.width,
            height=info.height,
            source=info,
            options=config.encode,
            format=config.output_format,
            copy_streams_from=copy_streams_from,
            label=label,
        )

    return sink


def convert(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    config: ConvertConfig,
    interpolator: Interpolator,
    *,
    overwrite: bool = False,
    progress_factory: Callable[[int | None], Callable[[int], None]] | None = None,
    timer: StageTimer | None = None,
) -> Stats:
    """Convert one input (path or '-') into one output (path or '-').

    A file output is written under a temporary name and renamed on success; on any failure or
    interruption the temporary file is removed and an existing output is left untouched.
    """
    src, dst = os.fspath(src), os.fspath(dst)
    check_output(dst, overwrite, inputs=(src,))
    if config.debug_dir is not None:
        os.makedirs(config.debug_dir, exist_ok=True)
    with open_source(src, config) as source:
        info = source.info
        fps = config.output_fps(info.fps)
        progress = progress_factory(estimated_output_frames(source, fps)) if progress_factory else None
        copy_from = src if src != "-" else None  # audio, subtitles, chapters, metadata
        if dst == "-":
            return run(
                source, sink_for("-", source, config, dst, copy_from), interpolator, config, progress, timer=timer
            )
        with atomic_output(dst) as tmp:
            return run(
                source, sink_for(tmp, source, config, dst, copy_from), interpolator, config, progress, timer=timer
            )
