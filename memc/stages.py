"""Seconds spent in each stage of a conversion, for ``memc bench``'s breakdown.

Decoding and encoding run in their own threads, so the stages overlap and their sum exceeds the
wall time. On CUDA the work is queued, not done, when a call returns: the main loop's stages
synchronise the device at their ends, so each is charged with its own GPU work. That costs speed,
so ``pipeline.run`` times stages only when given a timer (benchmarks), never in a normal run.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import torch

# decode: source frames to RGB arrays (decoder thread); upload: arrays -> tensors on the device;
# flows: scene check and both flows of a pair; synthesis: projection + synthesis of each frame;
# colour: RGB -> YUV and the download on CUDA (on the CPU swscale does it inside encode);
# encode: the encoder and muxer (encoder thread).
STAGES = ("decode", "upload", "flows", "synthesis", "colour", "encode")


class StageTimer:
    """Accumulates seconds per stage name; safe to use from the decoder and encoder threads."""

    def __init__(self, device: torch.device | str | None = None) -> None:
        device = torch.device(device) if device is not None else None
        self._cuda = device if device is not None and device.type == "cuda" else None
        self._lock = threading.Lock()
        self.seconds = dict.fromkeys(STAGES, 0.0)

    def add(self, name: str, seconds: float) -> None:
        with self._lock:
            self.seconds[name] = self.seconds.get(name, 0.0) + seconds

    def _sync(self) -> None:
        if self._cuda is not None:
            torch.cuda.synchronize(self._cuda)

    @contextmanager
    def stage(self, name: str, sync: bool = True) -> Iterator[None]:
        """Time the block; with ``sync`` (the loop's device stages), GPU work queued in it included."""
        if sync:
            self._sync()
        start = time.perf_counter()
        try:
            yield
        finally:
            if sync:
                self._sync()
            self.add(name, time.perf_counter() - start)

    def iterate(self, name: str, items: Iterable) -> Iterator:
        """``items``, with the time spent producing each one charged to ``name``."""
        iterator = iter(items)
        try:
            while True:
                start = time.perf_counter()
                try:
                    item = next(iterator)
                except StopIteration:
                    return
                self.add(name, time.perf_counter() - start)
                yield item
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()
