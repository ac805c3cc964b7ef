"""Held frames: animation drawn on twos or threes, and captures that repeat a frame the source dropped.

Interpolating between a frame and its repeat makes no motion, and the next pair then jumps twice as
far: the result judders worse than the source. With ``--dedup`` a frame that repeats the last kept
one is taken out of the motion timeline, so the pairs around it span the real change at the right
times and the motion comes out even.

"Repeats" must survive compression noise, so it is not bit equality: the largest difference of
luma at a quarter of the size (area-averaged, which averages the noise away but keeps any real
edge that moved), in 8-bit grey levels. Measured on synthetic clips and the dev set: a repeated
frame re-encoded by x264 at CRF 23-30 differs by at most 8.4 levels; a 30 px square that moved
2 px by 20 or more. Ordinary footage can hold near-still pairs below the threshold (a talking
head: 3.0 levels), which is why dedup is opt-in.

One motion step may span at most ``MAX_RUN`` dropped repeats (on threes is 2): in a longer run
(a static shot) every ``MAX_RUN + 1``-th frame is kept, so a still picture is never stretched
over seconds, and a pair of repeats is shown as the earlier frame itself (bit-still).
"""

from __future__ import annotations

import cv2
import numpy as np

from ..config import DEDUP_AUTO_THRESHOLD

MAX_RUN = 2
SCALE = 4


def small_luma(rgb: np.ndarray) -> np.ndarray:
    """H x W x 3 RGB (uint8 or uint16) -> luma at 1/SCALE of the size, float32 on the 8-bit scale."""
    scale = 255.0 / (65535.0 if rgb.dtype == np.uint16 else 255.0)
    luma = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32) * scale
    h, w = luma.shape
    return cv2.resize(luma, (max(1, w // SCALE), max(1, h // SCALE)), interpolation=cv2.INTER_AREA)


def difference(a: np.ndarray, b: np.ndarray) -> float:
    """Largest luma difference of two ``small_luma`` images, in grey levels."""
    return float(np.abs(a - b).max())


DROP, STILL, NEW = "drop", "still", "new"


class HeldFrames:
    """Decides, frame by frame, what a frame is to the motion timeline (``step``)."""

    def __init__(self, threshold: float = DEDUP_AUTO_THRESHOLD, max_run: int = MAX_RUN) -> None:
        self.threshold, self.max_run = threshold, max_run
        self._kept: np.ndarray | None = None
        self._run = 0

    def step(self, rgb: np.ndarray) -> str:
        """DROP: ``rgb`` repeats the last kept frame. STILL: it repeats it too, but the run is at
        ``max_run``, so it is kept and the pair is shown as the earlier frame. NEW: a change."""
        small = small_luma(rgb)
        same = self._kept is not None and difference(self._kept, small) <= self.threshold
        if same and self._run < self.max_run:
            self._run += 1
            return DROP
        self._kept, self._run = small, 0
        return STILL if same else NEW
