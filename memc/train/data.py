"""Training data: short windows of real video, cropped once into a cache, sampled with augmentation.

A cache sample is 5 frames ``f0..f4`` (a step of k = 1 or 2 source frames, at full or half size)
cropped to ``crop`` x ``crop`` where the picture moves most among a few random positions. From one
sample the loader draws a pair and its held-out frame: (f0, f4) with t = 1/4, 1/2 or 3/4, or
(f_j, f_j+2) with t = 1/2; then flips and time reversal (t -> 1 - t).
DIS runs per batch on the whole cached crop and only then are images and flows cut to ``size``:
the margin gives DIS the context a full frame would, so content entering at the training crop's
border is not mistaken for occlusion (v1 ran DIS on the small crop and learned border-only habits).
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np
import torch

from ..motion.estimate import DISEstimator
from ..outputs import atomic_output

logger = logging.getLogger(__name__)

WINDOW = 5


def _source(name: str) -> str:
    """The source group of a clip (``liveportrait_d6`` -> ``liveportrait``) for balanced sampling."""
    return name.split("_")[0]


def train_clips(data: Path, include_noncommercial: bool) -> list[dict]:
    """Manifest entries of the train videos, optionally without the non-commercial ones."""
    entries = json.loads((data / "manifest.json").read_text())["entries"]
    return [
        e
        for e in entries
        if e["split"] == "train" and e["file"].endswith(".mp4") and (include_noncommercial or not e["noncommercial"])
    ]


def _plan(
    clips: list[dict], samples: int, crop: int, rng: np.random.Generator
) -> dict[str, list[tuple[int, int, float]]]:
    """Per clip: (start, step, scale) of each sample; every source group gets an equal share."""
    groups = defaultdict(list)
    for clip in clips:
        groups[_source(Path(clip["file"]).stem)].append(clip)
    plan = defaultdict(list)
    per_group = samples / len(groups)
    for members in groups.values():
        total = sum(c["frames"] for c in members)
        for clip in members:
            count = int(round(per_group * clip["frames"] / total))
            for _ in range(count):
                step = int(rng.choice([1, 2]))
                span = (WINDOW - 1) * step
                if clip["frames"] <= span:
                    continue
                small = min(clip["width"], clip["height"]) // 2 >= crop
                scale = 0.5 if small and rng.random() < 0.5 else 1.0
                plan[clip["file"]].append((int(rng.integers(0, clip["frames"] - span)), step, scale))
    return plan


def _crop_most_motion(frames: list[np.ndarray], crop: int, rng: np.random.Generator, tries: int = 6) -> np.ndarray:
    h, w = frames[0].shape[:2]
    best, best_motion = None, -1.0
    for _ in range(tries):
        y, x = int(rng.integers(0, h - crop + 1)), int(rng.integers(0, w - crop + 1))
        motion = float(
            np.abs(
                frames[-1][y : y + crop, x : x + crop].astype(np.int16) - frames[0][y : y + crop, x : x + crop]
            ).mean()
        )
        if motion > best_motion:
            best, best_motion = (y, x), motion
    y, x = best
    return np.stack([f[y : y + crop, x : x + crop] for f in frames])


def build_cache(data: Path, out: Path, *, samples: int, crop: int, seed: int, include_noncommercial: bool) -> Path:
    """Decode each train clip once and write ``samples`` windows (N, 5, crop, crop, 3) uint8 to ``out``."""
    from ..io.decode import VideoSource

    if out.is_file():
        return out
    rng = np.random.default_rng(seed)
    clips = train_clips(data, include_noncommercial)
    plan = _plan(clips, samples, crop, rng)
    windows, names = [], []
    for file, wanted in sorted(plan.items()):
        wanted = sorted(wanted)
        last = max(s + (WINDOW - 1) * k for s, k, _ in wanted)
        buffer: dict[int, np.ndarray] = {}
        with VideoSource(str(data / file)) as source:
            for frame in source.frames():
                i = frame.index
                if i > last:
                    break
                buffer[i] = frame.rgb
                for start, step, scale in wanted:
                    if start + (WINDOW - 1) * step != i:
                        continue
                    frames = [buffer[start + j * step] for j in range(WINDOW)]
                    if scale < 1:
                        frames = [cv2.resize(f, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) for f in frames]
                    if min(frames[0].shape[:2]) >= crop:
                        windows.append(_crop_most_motion(frames, crop, rng))
                        names.append(file)
                oldest = min((s for s, k, _ in wanted if s + (WINDOW - 1) * k >= i), default=i)
                for key in [k for k in buffer if k < oldest]:
                    del buffer[key]
        logger.info("cache: %s -> %d windows", file, len(wanted))
    array = np.stack(windows)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(out) as tmp:
        np.save(tmp, array)
    out.with_suffix(".json").write_text(json.dumps({"clips": sorted(set(names)), "count": len(names)}, indent=1))
    return out


class Batches:
    """Random augmented batches from the cache: (image0, image1, target, t, flow_01, flow_10)."""

    def __init__(self, cache: Path, batch: int, size: int, seed: int, dis_preset: str = "medium") -> None:
        self.windows = np.load(cache, mmap_mode="r")
        self.batch, self.size = batch, size
        self.rng = np.random.default_rng(seed)
        self.dis = DISEstimator(dis_preset)

    def _one(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        rng = self.rng
        window = self.windows[int(rng.integers(len(self.windows)))]
        if rng.random() < 0.4:
            j = int(rng.integers(1, 4))
            a, b, target, t = window[0], window[4], window[j], j / 4
        else:
            j = int(rng.integers(0, 3))
            a, b, target, t = window[j], window[j + 2], window[j + 1], 0.5
        if rng.random() < 0.5:
            a, b, target = (im[:, ::-1] for im in (a, b, target))
        if rng.random() < 0.5:
            a, b, target = (im[::-1] for im in (a, b, target))
        if rng.random() < 0.5:
            a, b, t = b, a, 1 - t
        return a, b, target, t

    def __iter__(self):
        return self

    def __next__(self):
        items = [self._one() for _ in range(self.batch)]

        def stack(k: int) -> torch.Tensor:
            return (
                torch.from_numpy(np.stack([np.ascontiguousarray(it[k]) for it in items])).permute(0, 3, 1, 2).float()
                / 255
            )

        image0, image1, target = stack(0), stack(1), stack(2)
        t = torch.tensor([it[3] for it in items], dtype=torch.float32).view(-1, 1, 1, 1)
        flow_01, flow_10 = self.dis.estimate(image0, image1)  # on the whole crop: context for DIS
        full = image0.shape[-1]
        cut = []
        for i in range(self.batch):
            y, x = (int(v) for v in self.rng.integers(0, full - self.size + 1, size=2))
            cut.append(
                [
                    z[i : i + 1, :, y : y + self.size, x : x + self.size]
                    for z in (image0, image1, target, flow_01, flow_10)
                ]
            )
        image0, image1, target, flow_01, flow_10 = (torch.cat(parts) for parts in zip(*cut))
        return image0, image1, target, t, flow_01, flow_10
