"""Headroom of a learned synthesis on DIS flows: oracles that see the true frame.

    python tools/headroom.py PAIRS SCALE     (e.g. 4 0.5: 4 input pairs per dev clip at half size)

Prints mean PSNR per dev clip for dis, dis with flow at half scale, the plain time-weighted
average of the two warps, and oracles that choose with the ground truth: per pixel between
the two warped frames, per 8x8 block among {W0, W1, synthesis, average}, per 16x16 block and per
frame between full- and half-scale flow. A network that only re-blends DIS-warped frames cannot
beat them.
"""

import sys

import torch
import torch.nn.functional as F

from memc.evaluate import find_clips, pairs, psnr
from memc.motion.interpolate import Interpolator, render


def block_oracle(candidates: list[torch.Tensor], target: torch.Tensor, block: int) -> torch.Tensor:
    """Per block of ``block`` x ``block`` pixels, the candidate with the least squared error."""
    errors = torch.stack(
        [F.avg_pool2d(((c - target) ** 2).mean(1, keepdim=True), block, ceil_mode=True) for c in candidates]
    )
    h, w = target.shape[-2:]
    best = F.interpolate(errors.argmin(0).float(), scale_factor=block, mode="nearest")[..., :h, :w].long()
    out = torch.zeros_like(target)
    for k, candidate in enumerate(candidates):
        out = torch.where(best == k, candidate, out)
    return out


def candidates(half: Interpolator, image0, image1, flows, flows_half, target, t: float) -> dict[str, torch.Tensor]:
    """Every scored image at t; ``flows`` / ``flows_half`` are the pair's, estimated once for all t."""
    s = render(image0, image1, flows, t).synthesis
    at_half = half.frame(image0, image1, flows_half, t)
    average = (1 - t) * s.warped0 + t * s.warped1
    return {
        "dis": s.image,
        "dis_half": at_half,
        "avgwarp": average,
        "or_px_w0w1": block_oracle([s.warped0, s.warped1], target, 1),
        "or_8_w0w1s": block_oracle([s.warped0, s.warped1, s.image, average], target, 8),
        "or_16_dis_half": block_oracle([s.image, at_half], target, 16),
        "or_frame_dis_half": s.image if psnr(s.image, target) >= psnr(at_half, target) else at_half,
    }


def main() -> None:
    max_pairs, scale = int(sys.argv[1]), float(sys.argv[2])
    torch.set_num_threads(2)
    full, half = Interpolator("cpu", "dis"), Interpolator("cpu", "dis", flow_scale=0.5)
    rows = {}
    with torch.inference_mode():
        for clip in find_clips("../shared/data/dev"):
            scores: dict[str, list[float]] = {}
            for image0, image1, targets in pairs(clip, max_pairs=max_pairs, scale=scale):
                flows, flows_half = full.flows(image0, image1), half.flows(image0, image1)
                for t, target in targets.items():
                    for name, image in candidates(half, image0, image1, flows, flows_half, target, t).items():
                        scores.setdefault(name, []).append(psnr(image, target))
            rows[clip.name] = {name: sum(v) / len(v) for name, v in scores.items()}
            print(clip.name, {name: round(v, 2) for name, v in rows[clip.name].items()}, flush=True)
    names = next(iter(rows.values()))
    print("MEAN", {name: round(sum(r[name] for r in rows.values()) / len(rows), 3) for name in names})


if __name__ == "__main__":
    main()
