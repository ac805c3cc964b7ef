"""Progress bars on stderr, for people at a terminal: shared by the CLI and batches.

Bars appear only when stderr is a terminal. Elsewhere (logs, CI, cron) a plain line every
``LINE_SECONDS`` says how far a file is, so a long run is visibly alive; ``quiet`` silences both.
stdout is never touched (it may carry video).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

ProgressFactory = Callable[[int | None], Callable[[int], None]]


LINE_SECONDS = 5.0


def bars_enabled(quiet: bool) -> bool:
    return not quiet and sys.stderr.isatty()


class ProgressLines:
    """``update(n)`` that prints ``memc: NAME: 120/317 frames (38%), 2.1 frames/s, about 1m34s left``
    at most every ``every`` seconds: progress for a stderr that is not a terminal."""

    def __init__(self, name: str, total: int | None, every: float | None = None) -> None:
        self.name, self.total = name, total
        self.every = LINE_SECONDS if every is None else every
        self.done = 0
        self.started = self.last = time.monotonic()

    def __call__(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if now - self.last < self.every:
            return
        self.last = now
        rate = self.done / max(now - self.started, 1e-9)
        text = f"memc: {self.name}: {self.done}"
        if self.total:
            text += f"/{self.total} frames ({100 * self.done / self.total:.0f}%), {rate:.1f} frames/s"
            left = max(self.total - self.done, 0) / rate if rate > 0 else 0
            text += f", about {int(left // 60)}m{int(left % 60):02d}s left"
        else:
            text += f" frames, {rate:.1f} frames/s"
        print(text, file=sys.stderr, flush=True)


class progress_bar:
    """A per-file tqdm bar (frames) while one file converts; ``with`` yields the factory that
    ``pipeline.convert`` takes as ``progress_factory``, or None when bars are off.

    ``position`` stacks it under a batch's overall bar; ``on_frames`` also hears every update.
    """

    def __init__(
        self, quiet: bool, name: str, *, position: int = 0, on_frames: Callable[[int], None] | None = None
    ) -> None:
        self.enabled = bars_enabled(quiet)
        self.quiet = quiet
        self.name = name
        self.position = position
        self.on_frames = on_frames
        self.bar = None

    def __enter__(self) -> ProgressFactory | None:
        if self.quiet:
            return None

        def factory(total: int | None) -> Callable[[int], None]:
            update = self._bar(total) if self.enabled else ProgressLines(self.name, total)
            if self.on_frames is None:
                return update

            def both(n: int) -> None:
                update(n)
                self.on_frames(n)

            return both

        return factory

    def _bar(self, total: int | None) -> Callable[[int], None]:
        from tqdm import tqdm

        self.bar = tqdm(
            total=total,
            unit="frame",
            desc=Path(self.name).name[:30],
            file=sys.stderr,
            dynamic_ncols=True,
            leave=False,
            position=self.position,
        )
        return self.bar.update

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()


class BatchProgress:
    """The overall bar of a batch: files done out of all, with the output frames written so far.

    ``echo`` prints a line to stderr without tearing the bars (through tqdm when they are on).
    """

    def __init__(self, quiet: bool, total_files: int) -> None:
        self.enabled = bars_enabled(quiet)
        self.frames = 0
        self.bar = None
        if self.enabled:
            from tqdm import tqdm

            self.bar = tqdm(
                total=total_files, unit="file", desc="memc", file=sys.stderr, dynamic_ncols=True, position=0
            )

    def file_done(self) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def add_frames(self, n: int) -> None:
        self.frames += n
        if self.bar is not None:
            self.bar.set_postfix(frames=self.frames, refresh=False)

    def echo(self, line: str) -> None:
        if self.bar is not None:
            self.bar.write(line, file=sys.stderr)
        else:
            print(line, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

    def __enter__(self) -> BatchProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
