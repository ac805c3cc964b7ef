"""Headroom of a learned synthesis on DIS flows: oracles that see the true frame.

    python tools/headroom.py PAIRS SCALE     (e.g. 4 0.5: 4 input pairs per dev clip at half size)

Prints mean PSNR per dev clip for dis, dis with flow at half scale, the plain time-weighted
average of the two warps, and three oracles that choose with the ground truth: per pixel between
the two warped frames, per 8x8 block among {W0, W1, synthesis, average}, per 16x16 block between
full- and half-scale flow. A network that only re-blends DIS-warped frames cannot beat these.
"""
import sys, math, torch, torch.nn.functional as F
torch.set_num_threads(2)
from memc.evaluate import find_clips, _frames, psnr
from memc.interpolate import Interpolator
from memc.project import project_flow
from memc.synthesize import synthesize
pairs, scale = int(sys.argv[1]), float(sys.argv[2])
ip = Interpolator("cpu", "dis")
ip_half = Interpolator("cpu", "dis", flow_scale=0.5)
rows = {}
def block_oracle(cands, target, b):
    errs = torch.stack([F.avg_pool2d(((c - target) ** 2).mean(1, keepdim=True), b, ceil_mode=True) for c in cands])
    idx = errs.argmin(0)
    h, w = target.shape[-2:]
    idx = F.interpolate(idx.float(), scale_factor=b, mode="nearest")[..., :h, :w].long()
    out = torch.zeros_like(target)
    for k, c in enumerate(cands):
        out = torch.where(idx == k, c, out)
    return out
with torch.inference_mode():
    for clip in find_clips("../shared/data/dev"):
        win, n, acc = [], 0, {}
        for im in _frames(clip.path, scale, torch.device("cpu")):
            win.append(im)
            if len(win) < clip.stride + 1:
                continue
            a, b = win[0], win[-1]
            fl = ip.flows(a, b); fh = ip_half.flows(a, b)
            for t in clip.times:
                target = win[round(t * clip.stride)]
                p = project_flow(fl.flow_01, fl.flow_10, t, fl.error_0, fl.error_1)
                s = synthesize(a, b, p, t, fl.error_0, fl.error_1)
                sh = ip_half.frame(a, b, fh, t)
                avg = (1 - t) * s.warped0 + t * s.warped1
                cands = {"dis": s.image, "dis_half": sh, "avgwarp": avg,
                         "or_px_w0w1": block_oracle([s.warped0, s.warped1], target, 1),
                         "or_8_w0w1s": block_oracle([s.warped0, s.warped1, s.image, avg], target, 8),
                         "or_16_dis_half": block_oracle([s.image, sh], target, 16),
                         "or_frame_dis_half": s.image if psnr(s.image, target) >= psnr(sh, target) else sh}
                for k, v in cands.items():
                    acc.setdefault(k, []).append(psnr(v, target))
            win = [win[-1]]; n += 1
            if n >= pairs: break
        rows[clip.name] = {k: sum(v) / len(v) for k, v in acc.items()}
        print(clip.name, {k: round(v, 2) for k, v in rows[clip.name].items()}, flush=True)
keys = next(iter(rows.values())).keys()
print("MEAN", {k: round(sum(r[k] for r in rows.values()) / len(rows), 3) for k in keys})
