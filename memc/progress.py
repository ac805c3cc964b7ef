"""Progress bars on stderr, for people at a terminal: shared by the CLI and batches.

Bars appear only when stderr is a terminal and the user did not ask for quiet, so logs and
pipes stay clean; stdout is never touched (it may carry video).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

ProgressFactory = Callable[[int | None], Callable[[int], None]]


def bars_enabled(quiet: bool) -> bool:
    return not quiet and sys.stderr.isatty()


class progress_bar:
    """A per-file tqdm bar (frames) while one file converts; ``with`` yields the factory that
    ``pipeline.convert`` takes as ``progress_factory``, or None when bars are off.

    ``position`` stacks it under a batch's overall bar; ``on_frames`` also hears every update.
    """

    def __init__(
        self, quiet: bool, name: str, *, position: int = 0, on_frames: Callable[[int], None] | None = None
    ) -> None:
        self.enabled = bars_enabled(quiet)
        self.name = name
        self.position = position
        self.on_frames = on_frames
        self.bar = None

    def __enter__(self) -> ProgressFactory | None:
        def factory(total: int | None) -> Callable[[int], None]:
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
            if self.on_frames is None:
                return self.bar.update

            def update(n: int) -> None:
                self.bar.update(n)
                self.on_frames(n)

            return update

        return factory if self.enabled else None

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
