"""The conversion loop, one source pair at a time.

    (file | stdin) -> decode.VideoSource ==queue==> loop ==queue==> encode.VideoSink -> (file | stdout)

    loop, per source pair (i, i+1), for the output frames timing.retime puts in [pts_i, pts_i+1):
        t == 0          -> frame i as decoded (bit-exact)
        scene cut       -> the nearer of frames i and i+1, never a blend
        otherwise       -> Interpolator: flows once per pair, then project -> synthesize for each t

Decoding and encoding run in their own threads behind bounded queues, so memory stays bounded
whatever the video's length and each output frame is handed to the encoder as soon as it exists.
A worker's exception is re-raised in the calling thread.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import torch

from . import scene
from .config import ConvertConfig
from .decode import SourceFrame, VideoSource
from .encode import VideoSink
from .errors import InputError
from .interpolate import Interpolator
from .tensors import to_image, to_tensor
from .timing import output_frame_count, retime, snap_to_grid

logger = logging.getLogger(__name__)

QUEUE_FRAMES = 8


@dataclass
class Stats:
    source_frames: int = 0
    output_frames: int = 0
    interpolated: int = 0
    scene_cuts: int = 0  # source pairs treated as cuts
    seconds: float = 0.0
    fps: Fraction = Fraction(0)
    truncated: bool = False

    def summary(self) -> str:
        speed = self.output_frames / self.seconds if self.seconds > 0 else 0.0
        return (
            f"{self.source_frames} source frames -> {self.output_frames} output frames at {_fps_text(self.fps)} fps "
            f"({self.interpolated} interpolated, {self.scene_cuts} scene cuts held) "
            f"in {self.seconds:.1f} s ({speed:.1f} frames/s)"
        )


def _fps_text(fps: Fraction) -> str:
    return str(fps.numerator) if fps.denominator == 1 else f"{fps.numerator}/{fps.denominator} (~{float(fps):.3f})"


_DONE = object()


class _Failure:
    def __init__(self, where: str, error: BaseException) -> None:
        self.where, self.error = where, error


def _put(q: queue.Queue, item: object, stop: threading.Event) -> bool:
    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def _get(q: queue.Queue, alive: Callable[[], bool]) -> object:
    while True:
        try:
            return q.get(timeout=0.1)
        except queue.Empty:
            if not alive():
                return _DONE


def background(items: Iterable, name: str, maxsize: int = QUEUE_FRAMES) -> Iterator:
    """Iterate ``items`` in a thread, through a bounded queue; its errors surface here."""
    q: queue.Queue = queue.Queue(maxsize)
    stop = threading.Event()

    def work() -> None:
        try:
            for item in items:
                if not _put(q, item, stop):
                    return
            _put(q, _DONE, stop)
        except BaseException as exc:  # forwarded to the consumer, raised there
            _put(q, _Failure(name, exc), stop)

    thread = threading.Thread(target=work, name=name, daemon=True)
    thread.start()
    try:
        while True:
            item = _get(q, thread.is_alive)
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item
    finally:
        stop.set()
        thread.join()


class BackgroundWriter:
    """Calls ``write(item)`` in a thread for each ``put``; ``close`` drains, joins and re-raises."""

    def __init__(self, write: Callable[[object], None], name: str, maxsize: int = QUEUE_FRAMES) -> None:
        self._q: queue.Queue = queue.Queue(maxsize)
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._write = write
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()

    def _work(self) -> None:
        try:
            while True:
                item = _get(self._q, lambda: not self._stop.is_set())
                if item is _DONE:
                    return
                self._write(item)
        except BaseException as exc:
            self._error = exc
            self._stop.set()

    def put(self, item: object) -> None:
        if self._error is None and not _put(self._q, item, self._stop) and self._error is None:
            raise RuntimeError("writer stopped")
        self._raise()

    def close(self, drain: bool = True) -> None:
        if drain and self._error is None:
            _put(self._q, _DONE, self._stop)
        else:
            self._stop.set()
        self._thread.join()
        self._raise()

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error


class _Pairs:
    """Per source pair: scene decision and flows, computed at most once and reused for every t."""

    def __init__(self, interpolator: Interpolator, config: ConvertConfig, stats: Stats) -> None:
        self.interpolator, self.config, self.stats = interpolator, config, stats
        self.index: int | None = None
        self.cut = False
        self.flows = None

    def prepare(self, i: int, image0: torch.Tensor, image1: torch.Tensor) -> None:
        if self.index == i:
            return
        self.index, self.flows, self.cut = i, None, False
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
                logger.info("scene cut between source frames %d and %d (histogram distance %.2f)", i, i + 1, distance)
        if not self.cut and self.flows is None:
            self.flows = self.interpolator.flows(image0, image1)


def run(
    source: VideoSource,
    sink_factory: Callable[[Fraction], VideoSink],
    interpolator: Interpolator,
    config: ConvertConfig,
    progress: Callable[[int], None] | None = None,
) -> Stats:
    """Convert everything ``source`` decodes into the sink made for the output rate; returns Stats."""
    started = time.perf_counter()
    info = source.info
    fps = config.output_fps(info.fps)
    stats = Stats(fps=fps)
    device = interpolator.device
    frames: dict[int, SourceFrame] = {}
    tensors: dict[int, torch.Tensor] = {}
    pairs = _Pairs(interpolator, config, stats)

    def pts_stream() -> Iterator[Fraction]:
        last: Fraction | None = None
        for frame in background(source.frames(), "memc-decode"):
            pts = snap_to_grid(frame.pts, info.start, info.fps, info.time_base)
            if last is not None and pts <= last:
                logger.debug("dropping source frame %d: pts %s does not increase", frame.index, pts)
                continue
            index = stats.source_frames  # dense numbering of the frames we keep
            frames[index] = frame
            stats.source_frames += 1
            last = pts
            yield pts

    def tensor(i: int) -> torch.Tensor:
        if i not in tensors:
            tensors[i] = to_tensor(frames[i].rgb, device)
        return tensors[i]

    with sink_factory(fps) as sink:
        writer = BackgroundWriter(lambda item: sink.write(*item), "memc-encode")
        try:
            for out in retime(pts_stream(), fps):
                for old in [k for k in frames if k < out.source]:  # keep only the pair in use
                    frames.pop(old)
                    tensors.pop(old, None)
                i = out.source
                if out.t == 0:
                    rgb = frames[i].rgb
                else:
                    pairs.prepare(i, tensor(i), tensor(i + 1))
                    if pairs.cut:
                        rgb = frames[i if out.t < Fraction(1, 2) else i + 1].rgb
                    else:
                        image = interpolator.frame(tensor(i), tensor(i + 1), pairs.flows, float(out.t))
                        rgb = to_image(image, frames[i].rgb.dtype)
                        stats.interpolated += 1
                writer.put((rgb, out.index))
                stats.output_frames += 1
                if progress is not None:
                    progress(1)
        except BaseException:
            writer.close(drain=False)
            raise
        writer.close()
    stats.truncated = source.truncated
    stats.seconds = time.perf_counter() - started
    return stats


def estimated_output_frames(source: VideoSource, fps: Fraction) -> int | None:
    """For the progress bar: output frames if the source's duration is known."""
    info = source.info
    if info.duration is None:
        return None
    return output_frame_count(info.start, info.start + info.duration, fps)


def temporary_path(dst: Path) -> Path:
    """A hidden name beside ``dst`` with the same extension, so the container is still inferred."""
    return dst.with_name(f".{dst.stem}.memc-tmp-{os.getpid()}{dst.suffix}")


def check_output(src: str, dst: str, overwrite: bool) -> None:
    """Refuse to overwrite the input, or an existing output unless asked."""
    if dst == "-":
        return
    dst_path = Path(dst)
    if src != "-" and (
        Path(src).resolve() == dst_path.resolve()
        or (Path(src).exists() and dst_path.exists() and os.path.samefile(src, dst_path))  # hard links
    ):
        raise InputError(f"output is the input: {dst} (choose another -o)")
    if dst_path.is_dir():
        raise InputError(f"output is a directory: {dst}")
    if dst_path.exists() and not overwrite:
        raise InputError(f"output exists: {dst} (use --overwrite/-y to replace it)")
    if not dst_path.parent.exists():
        raise InputError(f"output folder does not exist: {dst_path.parent}")
    if not os.access(dst_path.parent, os.W_OK):
        raise InputError(f"output folder is not writable: {dst_path.parent}")


def convert(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    config: ConvertConfig,
    interpolator: Interpolator,
    *,
    overwrite: bool = False,
    progress_factory: Callable[[int | None], Callable[[int], None]] | None = None,
) -> Stats:
    """Convert one input (path or '-') into one output (path or '-').

    A file output is written under a temporary name and renamed on success; on any failure or
    interruption the temporary file is removed and an existing output is left untouched.
    """
    src, dst = os.fspath(src), os.fspath(dst)
    check_output(src, dst, overwrite)
    opts = config.input
    with VideoSource(
        src,
        format=opts.format,
        raw_size=opts.raw_size,
        raw_pix_fmt=opts.raw_pix_fmt,
        raw_fps=opts.raw_fps,
    ) as source:
        info = source.info
        fps = config.output_fps(info.fps)
        progress = progress_factory(estimated_output_frames(source, fps)) if progress_factory else None
        copy_from = src if src != "-" else None  # audio, subtitles, chapters, metadata
        tmp = temporary_path(Path(dst)) if dst != "-" else None

        def make_sink(rate: Fraction) -> VideoSink:
            return VideoSink(
                tmp if tmp is not None else "-",
                fps=rate,
                width=info.width,
                height=info.height,
                source=info,
                options=config.encode,
                format=config.output_format,
                copy_streams_from=copy_from,
            )

        try:
            stats = run(source, make_sink, interpolator, config, progress)
            if tmp is not None:
                os.replace(tmp, dst)
        except BaseException:
            if tmp is not None and tmp.exists():
                tmp.unlink()
            raise
    return stats  # a truncated input was already reported by decode
