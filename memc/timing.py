"""All timestamp arithmetic of memc, in exact ``Fraction`` seconds.

Output frame ``k`` is shown at ``start + k / fps_out``. It falls into the source interval
``[pts_i, pts_{i+1})`` of the source frames around it and is synthesized at phase
``t = (pts_k - pts_i) / (pts_{i+1} - pts_i)`` in ``[0, 1)``; ``t == 0`` copies source frame ``i``.
The last source frame covers ``[pts_last, end)`` where ``end`` is its pts plus its duration, so
the output lasts as long as the input (to within one output frame). Nothing here knows about
tensors or containers, which keeps it unit-testable for every rate pair.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction

from .errors import InputError

# What people type when they mean the NTSC rates: 59.94 is 60000/1001, not 5997/100.
_NTSC = {
    "23.976": Fraction(24000, 1001),
    "23.98": Fraction(24000, 1001),
    "29.97": Fraction(30000, 1001),
    "47.952": Fraction(48000, 1001),
    "59.94": Fraction(60000, 1001),
    "119.88": Fraction(120000, 1001),
    "239.76": Fraction(240000, 1001),
}
MAX_FPS = 1000  # above it, nothing plays the file and the frame count explodes: surely a typo
_RATIONAL = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:[/:]\s*(\d+(?:\.\d+)?))?\s*$")


def parse_fps(text: str | int | float | Fraction, *, name: str = "--fps") -> Fraction:
    """Parse a frame rate the way ffmpeg users write it: ``60``, ``60000/1001``, ``59.94``."""
    if isinstance(text, Fraction):
        value = text
    elif isinstance(text, int):
        value = Fraction(text)
    else:
        raw = str(text).strip()
        if raw in _NTSC:
            return _NTSC[raw]
        match = _RATIONAL.match(raw)
        if not match:
            raise InputError(f"{name}: {raw!r} is not a frame rate (use e.g. 60, 60000/1001 or 59.94)")
        num = Fraction(match.group(1))
        den = Fraction(match.group(2)) if match.group(2) else Fraction(1)
        if den == 0:
            raise InputError(f"{name}: {raw!r} divides by zero")
        value = num / den
    if value <= 0:
        raise InputError(f"{name}: {text!r} must be positive")
    if value > MAX_FPS:
        raise InputError(f"{name}: {text!r} is above the {MAX_FPS} fps limit")
    return value


@dataclass(frozen=True)
class OutputFrame:
    """One frame of the output: its number, its time, and where it comes from."""

    index: int  # k, the output frame number (its pts in a 1/fps time base)
    pts: Fraction  # seconds, start + k / fps
    source: int  # i, the source frame at or before pts
    t: Fraction  # phase in [0, 1) between source frames i and i + 1


def first_index_at_or_after(time: Fraction, start: Fraction, fps: Fraction) -> int:
    """Smallest k with start + k/fps >= time."""
    return max(0, math.ceil((time - start) * fps))


def output_times(lo: Fraction, hi: Fraction, start: Fraction, fps: Fraction) -> range:
    """Output frame numbers k with lo <= start + k/fps < hi."""
    return range(first_index_at_or_after(lo, start, fps), first_index_at_or_after(hi, start, fps))


def output_frame_count(start: Fraction, end: Fraction, fps: Fraction) -> int:
    """How many output frames an input spanning [start, end) gives."""
    return first_index_at_or_after(end, start, fps)


def retime(
    source_pts: Iterable[Fraction],
    fps: Fraction,
    end: Fraction | None = None,
    frame_duration: Fraction | None = None,
    start: Fraction | None = None,
) -> Iterator[OutputFrame]:
    """Map output frames onto source intervals, streaming.

    ``source_pts`` must increase strictly. ``end`` is where the last source frame stops showing;
    without it the last frame lasts as long as the interval before it (CFR behaviour), and a lone
    frame lasts ``frame_duration`` (the source's nominal 1/fps; one output frame if not given).
    ``start`` is the grid's origin (output frame 0), the first pts by default; a segment of a longer
    video passes the video's own start, so its frames keep the numbers and times of the whole.
    """
    it = iter(source_pts)
    try:
        prev = next(it)
    except StopIteration:
        return
    if start is None:
        start = prev
    i = 0
    last_step: Fraction | None = None
    for pts in it:
        if pts <= prev:
            raise ValueError(f"source pts must increase: {pts} after {prev}")
        step = pts - prev
        for k in output_times(prev, pts, start, fps):
            at = start + Fraction(k) / fps
            yield OutputFrame(k, at, i, (at - prev) / step)
        prev, last_step, i = pts, step, i + 1
    if end is None:
        lone = frame_duration if frame_duration is not None else 1 / fps
        end = prev + (last_step if last_step is not None else lone)
    # Past the last source frame there is nothing to move towards: hold it (t = 0).
    for k in output_times(prev, end, start, fps):
        yield OutputFrame(k, start + Fraction(k) / fps, i, Fraction(0))


def snap_to_grid(pts: Fraction, start: Fraction, fps: Fraction, tolerance: Fraction) -> Fraction:
    """The nominal time ``start + n / fps`` nearest ``pts`` if within ``tolerance``, else ``pts``.

    Containers with coarse time bases (Matroska's milliseconds) store 1/30 s as 33 or 34 ms; a
    30 fps source is still exactly 30 fps, and counting it so keeps output frame counts exact.
    """
    n = round((pts - start) * fps)
    nominal = start + Fraction(n) / fps
    return nominal if abs(nominal - pts) <= tolerance else pts
