"""Score frame interpolation on held-out frames of real video (the dev protocol of ../shared/data).

For a clip with protocol ``{"stride": s, "t": [t1, ...]}``: for i = 0, s, 2s, ... while i + s < frames,
frames i and i + s are the inputs and each t predicts frame ``i + t s`` (held out, never shown).
Each prediction is rounded to 8-bit RGB and scored over the full frame:

* PSNR, peak 255, MSE over all pixels and channels;
* SSIM, Gaussian window 11 / sigma 1.5 (Wang et al. 2004), per RGB channel, averaged;
* IE (Middlebury interpolation error): ``sqrt(mean((a - b)^2))`` on 0..255 values.

A clip's score is the mean over its frames (and per t for multi-t clips); the overall score is the
unweighted mean over clips. Frames are streamed: at most ``stride + 1`` decoded frames are held.
``blend`` is the plain ``(1 - t) A + t B`` baseline.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from .errors import InputError
from .tensors import to_image, to_tensor

logger = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov", ".avi", ".webm", ".y4m", ".nut")
DEFAULT_PROTOCOL = {"stride": 2, "t": [0.5]}
METRICS = ("psnr", "ssim", "ie")

# A predictor gets (image0, image1, ts) as (1, 3, H, W) tensors in [0, 1] and returns one image per t.
Predictor = Callable[[torch.Tensor, torch.Tensor, list[float]], list[torch.Tensor]]


@dataclass(frozen=True)
class Clip:
    name: str
    path: Path
    stride: int
    times: tuple[float, ...]


@dataclass
class ClipScore:
    """Per-frame metric lists of one clip, keyed by t, and the prediction time."""

    name: str
    scores: dict[float, dict[str, list[float]]] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def frames(self) -> int:
        return sum(len(s["psnr"]) for s in self.scores.values())

    def mean(self, metric: str, t: float | None = None) -> float:
        values = [v for key, s in self.scores.items() if t is None or key == t for v in s[metric]]
        return sum(values) / len(values) if values else math.nan


# ---------------------------------------------------------------------------------------------- metrics


def _quantize(image: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) in [0, 1] -> float64 0..255 integers, as an 8-bit file would hold them."""
    return (image.double().clamp(0, 1) * 255).round()


def psnr(prediction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> float:
    """PSNR (dB) of two images in [0, 1] after 8-bit rounding; over the pixels of ``mask`` (H, W) bool if given."""
    squared = (_quantize(prediction) - _quantize(target)) ** 2
    mse = float((squared if mask is None else squared[..., mask.to(squared.device)]).mean())
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


def interpolation_error(prediction: torch.Tensor, target: torch.Tensor) -> float:
    """Middlebury IE: RMS colour difference on 0..255 values."""
    return float(((_quantize(prediction) - _quantize(target)) ** 2).mean().sqrt())


def _gaussian_window(size: int, sigma: float, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    x = torch.arange(size, device=device, dtype=dtype) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def ssim(prediction: torch.Tensor, target: torch.Tensor, size: int = 11, sigma: float = 1.5) -> float:
    """Gaussian-window SSIM on 8-bit values, per RGB channel, averaged ('valid' window positions)."""
    a, b = _quantize(prediction), _quantize(target)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    g = _gaussian_window(size, sigma, a.device, a.dtype)
    channels = a.shape[1]
    gx = g.view(1, 1, 1, size).expand(channels, 1, 1, size)
    gy = g.view(1, 1, size, 1).expand(channels, 1, size, 1)

    def blur(x: torch.Tensor) -> torch.Tensor:  # separable Gaussian, depthwise
        return F.conv2d(F.conv2d(x, gx, groups=channels), gy, groups=channels)

    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a**2
    var_b = blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    num = (2 * mu_a * mu_b + c1) * (2 * cov + c2)
    den = (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
    return float((num / den).mean())


def score(prediction: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    return {
        "psnr": psnr(prediction, target),
        "ssim": ssim(prediction, target),
        "ie": interpolation_error(prediction, target),
    }


# ---------------------------------------------------------------------------------------------- clips


def find_manifest(folder: Path) -> Path | None:
    """``DIR/manifest.json`` or ``DIR/../manifest.json`` (the layout of ../shared/data)."""
    for candidate in (folder / "manifest.json", folder.parent / "manifest.json"):
        if candidate.is_file():
            return candidate
    return None


def _protocols(manifest: Path) -> dict[str, dict]:
    """Clip stem -> protocol, for the manifest entries that carry one."""
    data = json.loads(manifest.read_text())
    entries = data.get("entries", []) if isinstance(data, dict) else data
    return {Path(e["file"]).stem: e["protocol"] for e in entries if isinstance(e, dict) and e.get("protocol")}


def find_clips(folder: str | Path, names: Iterable[str] | None = None) -> list[Clip]:
    """The clips of ``folder`` with their protocol (the default one for clips the manifest does not list)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"eval: {str(folder)!r} is not a folder")
    manifest = find_manifest(folder)
    protocols = _protocols(manifest) if manifest is not None else {}
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
    wanted = list(names) if names else None
    if wanted is not None:
        missing = sorted(set(wanted) - {p.stem for p in files})
        if missing:
            raise InputError(
                f"--clips: {', '.join(missing)} not in {folder} (have: {', '.join(p.stem for p in files)})"
            )
        files = [p for p in files if p.stem in wanted]
    if not files:
        raise InputError(f"eval: no video files ({', '.join(VIDEO_SUFFIXES)}) in {folder}")
    clips = []
    for path in files:
        protocol = protocols.get(path.stem, DEFAULT_PROTOCOL)
        stride = int(protocol["stride"])
        times = tuple(float(t) for t in protocol["t"])
        for t in times:
            if abs(t * stride - round(t * stride)) > 1e-6 or not 0 < t < 1:
                raise InputError(f"{path.name}: t = {t} does not land on a frame with stride {stride}")
        clips.append(Clip(path.stem, path, stride, times))
    return clips


def _frames(path: Path, scale: float, device: torch.device) -> Iterator[torch.Tensor]:
    """Decoded frames as (1, 3, H, W) tensors, downscaled (area filter) when scale < 1."""
    from .io.decode import VideoSource

    with VideoSource(str(path)) as source:
        for frame in source.frames():
            image = to_tensor(frame.rgb, device)
            if scale < 1:
                h, w = image.shape[-2:]
                size = (max(8, round(h * scale)), max(8, round(w * scale)))
                image = F.interpolate(image, size=size, mode="area")
            yield image


def pairs(
    clip: Clip, *, max_pairs: int | None = None, scale: float = 1.0, device: torch.device | str = "cpu"
) -> Iterator[tuple[torch.Tensor, torch.Tensor, dict[float, torch.Tensor]]]:
    """The protocol's (image0, image1, {t: held-out frame}) in clip order; at most stride + 1 frames held."""
    window: list[torch.Tensor] = []  # frames i .. i + stride, never more
    count = 0
    for image in _frames(clip.path, scale, torch.device(device)):
        window.append(image)
        if len(window) < clip.stride + 1:
            continue
        yield window[0], window[-1], {t: window[round(t * clip.stride)] for t in clip.times}
        window = [window[-1]]
        count += 1
        if max_pairs is not None and count >= max_pairs:
            return


def evaluate_clip(
    clip: Clip,
    predictors: dict[str, Predictor],
    *,
    max_pairs: int | None = None,
    scale: float = 1.0,
    device: torch.device | str = "cpu",
) -> dict[str, ClipScore]:
    """Score every predictor on one clip; the clip is decoded once and shared by them."""
    results = {name: ClipScore(clip.name) for name in predictors}
    for image0, image1, targets in pairs(clip, max_pairs=max_pairs, scale=scale, device=device):
        for name, predict in predictors.items():
            start = time.perf_counter()
            predictions = predict(image0, image1, list(clip.times))
            results[name].seconds += time.perf_counter() - start
            for t, prediction in zip(clip.times, predictions):
                per_t = results[name].scores.setdefault(t, {m: [] for m in METRICS})
                for metric, value in score(prediction, targets[t]).items():
                    per_t[metric].append(value)
    return results


def blend(image0: torch.Tensor, image1: torch.Tensor, times: list[float]) -> list[torch.Tensor]:
    """The frame-blend baseline: no motion at all."""
    return [(1 - t) * image0 + t * image1 for t in times]


def interpolator_predictor(interpolator) -> Predictor:
    """Flows once per pair, then one frame per t: what ``convert`` does."""

    def predict(image0: torch.Tensor, image1: torch.Tensor, times: list[float]) -> list[torch.Tensor]:
        # as 8-bit frames, like decoded video, so the path measured is the one convert takes
        rgb0, rgb1 = to_image(image0), to_image(image1)
        frames = interpolator.interpolate(rgb0, rgb1, times)
        return [to_tensor(frame, image0.device) for frame in frames]

    return predict


@dataclass
class Report:
    """Scores per method and clip; ``summary()`` for JSON, ``table()`` for people."""

    methods: dict[str, list[ClipScore]]
    clips: list[Clip]
    scale: float = 1.0

    def summary(self) -> dict:
        out: dict = {"scale": self.scale, "clips": [c.name for c in self.clips], "methods": {}}
        for method, scores in self.methods.items():
            per_clip = {}
            for clip, s in zip(self.clips, scores):
                entry = {m: s.mean(m) for m in METRICS}
                entry["frames"] = s.frames
                entry["seconds_per_frame"] = s.seconds / max(s.frames, 1)
                if len(clip.times) > 1:
                    entry["per_t"] = {f"{t:g}": {m: s.mean(m, t) for m in METRICS} for t in clip.times}
                per_clip[clip.name] = entry
            frames = sum(s.frames for s in scores)
            mean = {m: _mean(e[m] for e in per_clip.values()) for m in METRICS}
            mean["frames"] = frames
            mean["seconds_per_frame"] = sum(s.seconds for s in scores) / max(frames, 1)
            out["methods"][method] = {"clips": per_clip, "mean": mean}
        return out

    def table(self) -> str:
        summary = self.summary()
        methods = list(summary["methods"])
        lines = []
        for metric, fmt in (("psnr", "{:.2f}"), ("ssim", "{:.4f}"), ("ie", "{:.2f}")):
            lines.append(f"## {metric.upper()}" + (" (dB)" if metric == "psnr" else ""))
            lines.append("")
            lines.append("| clip | frames | " + " | ".join(methods) + " |")
            lines.append("|---|---:|" + "---:|" * len(methods))
            for clip in self.clips:
                first = summary["methods"][methods[0]]["clips"][clip.name]
                row = [fmt.format(summary["methods"][m]["clips"][clip.name][metric]) for m in methods]
                lines.append(f"| {clip.name} | {first['frames']} | " + " | ".join(row) + " |")
                if len(clip.times) > 1:
                    for t in clip.times:
                        row = [
                            fmt.format(summary["methods"][m]["clips"][clip.name]["per_t"][f"{t:g}"][metric])
                            for m in methods
                        ]
                        lines.append(f"| &nbsp; t = {t:g} | | " + " | ".join(row) + " |")
            row = [fmt.format(summary["methods"][m]["mean"][metric]) for m in methods]
            lines.append(
                f"| **mean over {len(self.clips)} clips** | {summary['methods'][methods[0]]['mean']['frames']} | "
                + " | ".join(row)
                + " |"
            )
            lines.append("")
        lines.append(
            "seconds per frame: "
            + ", ".join(f"{m} {summary['methods'][m]['mean']['seconds_per_frame']:.3f}" for m in methods)
        )
        return "\n".join(lines)


def _mean(values: Iterable[float]) -> float:
    values = list(values)
    return sum(values) / len(values) if values else math.nan


def evaluate(
    folder: str | Path,
    predictors: dict[str, Predictor],
    *,
    clips: Iterable[str] | None = None,
    max_pairs: int | None = None,
    scale: float = 1.0,
    device: torch.device | str = "cpu",
    progress: Callable[[str], None] | None = None,
) -> Report:
    """Score ``predictors`` (name -> predictor) on every clip of ``folder``."""
    if not 0 < scale <= 1:
        raise InputError(f"--scale: {scale} must be in (0, 1]")
    if max_pairs is not None and max_pairs < 1:
        raise InputError(f"--max-pairs: {max_pairs} must be at least 1")
    found = find_clips(folder, clips)
    methods: dict[str, list[ClipScore]] = {name: [] for name in predictors}
    for clip in found:
        if progress is not None:
            progress(clip.name)
        for name, result in evaluate_clip(clip, predictors, max_pairs=max_pairs, scale=scale, device=device).items():
            methods[name].append(result)
    return Report(methods, found, scale)
