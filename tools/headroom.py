"""Headroom: oracles that see the true frame, on the dev clips.

    python tools/headroom.py PAIRS SCALE            (e.g. 4 0.5: 4 input pairs per dev clip at half size)
    python tools/headroom.py PAIRS SCALE --motion   (e.g. 4 1)

Prints mean PSNR per dev clip and the mean over clips.

Default (synthesis): dis, dis with flow at half scale, the plain time-weighted average of the two
warps, and oracles that choose with the ground truth: per pixel between the two warped frames, per
8x8 block among {W0, W1, synthesis, average}, per 16x16 block and per frame between full- and
half-scale flow. A network that only re-blends DIS-warped frames cannot beat them.

``--motion``: what better *motion* could give memc's default (dis-bm). ``bilateral`` refines the
motion at t itself, BMBC's way: per pixel, of the two projected motions the one with the lower
bilateral cost ``|I0(x - t v) - I1(x + (1 - t) v)|`` (Charbonnier, 5 x 5 mean), then a descent by
+-0.5 and +-0.25 px steps on that cost; the frame is the time-weighted mean of both frames along it
where its cost is under BILATERAL_COST, memc's frame elsewhere. ``or_8_default_bilateral`` chooses
per 8x8 block with the truth between memc's frame and that motion's frame everywhere. The
``truth_*`` columns cheat: DIS from the true frame to each input frame (motion at t as it really
was, non-linear or not), then the time-weighted mean of the two warps, and per 8x8 block the best of
those two warps and their mean.
"""

import argparse

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from memc.evaluate import find_clips, pairs, psnr
from memc.motion.interpolate import Interpolator, render
from memc.motion.warp import backward_warp
from memc.tensors import resize_flow, to_image

# Mean Charbonnier bilateral cost (on [0, 1] values) under which the refined motion is used.
BILATERAL_COST = 0.03


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


def _along(image0, image1, motion, t: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Both frames sampled along a motion through x at t (px per frame interval)."""
    return backward_warp(image0, -t * motion), backward_warp(image1, (1 - t) * motion)


def _bilateral_cost(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    d = a - b
    cost = torch.sqrt(d * d + 1e-6).mean(1, keepdim=True)
    return F.avg_pool2d(F.pad(cost, (2, 2, 2, 2), mode="replicate"), 5, stride=1)


def bilateral_motion(image0, image1, flow_t0, flow_t1, t: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The motion at t with the lower bilateral cost of the two projected ones, refined by descent
    on that cost; (motion (N, 2, H, W), its cost (N, 1, H, W))."""
    motions = (-flow_t0 / t, flow_t1 / (1 - t))
    costs = [_bilateral_cost(*_along(image0, image1, m, t)) for m in motions]
    motion = torch.where(costs[0] <= costs[1], *motions)
    cost = torch.minimum(*costs)
    for step in (0.5, 0.5, 0.25, 0.25):
        best, best_cost = motion, cost
        for dx, dy in ((step, 0), (-step, 0), (0, step), (0, -step)):
            moved = motion + torch.tensor([dx, dy], dtype=motion.dtype).view(1, 2, 1, 1)
            moved_cost = _bilateral_cost(*_along(image0, image1, moved, t))
            better = moved_cost < best_cost
            best, best_cost = torch.where(better, moved, best), torch.where(better, moved_cost, best_cost)
        motion, cost = best, best_cost
    return motion, cost


def _grey(image: torch.Tensor) -> np.ndarray:
    return cv2.cvtColor(to_image(image), cv2.COLOR_RGB2GRAY)


def motion_candidates(dis, image0, image1, flows, target, t: float) -> dict[str, torch.Tensor]:
    """``--motion``'s scored images at t (see the module's docstring)."""
    size = image0.shape[-2:]
    rendered = render(image0, image1, flows, t)
    image = rendered.image
    flow_t0, flow_t1 = (resize_flow(flow, size) for flow in rendered.projection.warp_flows())
    motion, cost = bilateral_motion(image0, image1, flow_t0, flow_t1, t)
    along0, along1 = _along(image0, image1, motion, t)
    bilateral = (1 - t) * along0 + t * along1
    truth = _grey(target)
    warps = []
    for frame in (image0, image1):
        flow = torch.from_numpy(dis.calc(truth, _grey(frame), None)).permute(2, 0, 1)[None]
        warps.append(backward_warp(frame, flow))
    truth_mean = (1 - t) * warps[0] + t * warps[1]
    return {
        "default": image,
        "bilateral": torch.where(cost < BILATERAL_COST, bilateral, image),
        "bilateral_all": bilateral,
        "or_8_default_bilateral": block_oracle([image, bilateral], target, 8),
        "truth_mean": truth_mean,
        "or_8_truth": block_oracle([*warps, truth_mean], target, 8),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pairs", type=int, help="input pairs per clip")
    parser.add_argument("scale", type=float, help="frame scale (1 = full size)")
    parser.add_argument("--motion", action="store_true", help="the motion oracles (see above)")
    parser.add_argument("--data", default="../shared/data/dev")
    args = parser.parse_args()
    torch.set_num_threads(2)
    if args.motion:
        default, dis = Interpolator("cpu", "dis-bm"), cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    else:
        full, half = Interpolator("cpu", "dis"), Interpolator("cpu", "dis", flow_scale=0.5)
    rows = {}
    with torch.inference_mode():
        for clip in find_clips(args.data):
            scores: dict[str, list[float]] = {}
            for image0, image1, targets in pairs(clip, max_pairs=args.pairs, scale=args.scale):
                if args.motion:
                    flows = default.flows(image0, image1)
                else:
                    flows, flows_half = full.flows(image0, image1), half.flows(image0, image1)
                for t, target in targets.items():
                    if args.motion:
                        scored = motion_candidates(dis, image0, image1, flows, target, t)
                    else:
                        scored = candidates(half, image0, image1, flows, flows_half, target, t)
                    for name, image in scored.items():
                        scores.setdefault(name, []).append(psnr(image.clamp(0, 1), target))
            rows[clip.name] = {name: sum(v) / len(v) for name, v in scores.items()}
            print(clip.name, {name: round(v, 2) for name, v in rows[clip.name].items()}, flush=True)
    names = next(iter(rows.values()))
    print("MEAN", {name: round(sum(r[name] for r in rows.values()) / len(rows), 3) for name in names})


if __name__ == "__main__":
    main()
