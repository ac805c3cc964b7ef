"""Flow projection: from the pair's flows to the intermediate flows at time t (MEMC-Net / DAIN).

A pixel x of frame 0 moving linearly along ``flow_01(x)`` is at ``x + t flow_01(x)`` at time t,
so there ``flow_t0 = -t flow_01(x)``. Likewise a pixel y of frame 1 is at ``y + (1 - t) flow_10(y)``
with ``flow_t1 = -(1 - t) flow_10(y)``. Forward-projecting ("splatting") these values bilinearly
onto the grid of frame t gives flow_t0 and flow_t1 for backward warping.

* Collisions (several sources on one target): a softmax-splatting weighted mean, where the weight
  favours sources with a small forward-backward error (``occlusion.splat_importance``): the
  occluder keeps its flow, the pixels it covers lose.
* Holes (no source): filled from the neighbours by push-pull over an image pyramid, and reported
  as ``hole`` in [0, 1] (1 - splat coverage) so the synthesizer knows that frame is occluded there.

Splatting every pixel for every t was most of a CPU conversion's time, so it runs on a grid of half
the flow's size (``GRID_SCALE``) and is upsampled, then sharpened (``sharpen``): the pixels whose
flow the grid does not represent ("detail sources": motion edges, objects a few pixels across,
well under 1 % of a frame) are splatted at full size and compete with the upsampled value by the
same importance, so a small fast object is not averaged away on the grid. (A fixed-point step
towards ``flow_t0(x) = -t flow_01(x + flow_t0(x))`` at every pixel was tried too: no gain.)

Everything is plain torch (``index_add``), differentiable and device-agnostic. Runs in float32.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ..tensors import check_shape, resize_flow
from . import occlusion
from .warp import coords_grid, sample_at

# Projection grid size as a fraction of the flow's: 0.25 lost 0.6 dB on the hard-motion suite's
# objects, 0.5 none on the dev set (the sharpening step restores the detail).
GRID_SCALE = 0.5
# Short side (px) below which the grid is not coarsened: small frames are cheap at full size.
MIN_GRID_SIDE = 32
# A source pixel whose flow differs from the grid's (upsampled) by more than this (px) is splatted
# at full size by ``sharpen``; the result hardly depends on it (0.25 to 1 px gave the same scores).
DETAIL = 1.0
# Arrival error (px) at which the upsampled vector counts half against the detail sources: tighter
# than occlusion.TOLERANCE, since it only has to tell a smeared vector from a clean one (1.5 px
# here lost 0.07 dB of the hard-motion suite's objects against 0.5).
ARRIVAL = 0.5
# Reach (px) around detail sources within which the blend weight is recomputed at full size.
DETAIL_REACH = 2


@dataclass(frozen=True)
class Projection:
    """The pair's motion at time t, on the projection grid; ``warp_t0/warp_t1`` (when the grid is
    coarser than the flows) is the same motion sharpened at the flows' size, for the final warp."""

    flow_t0: torch.Tensor  # (N, 2, H, W)
    flow_t1: torch.Tensor  # (N, 2, H, W)
    hole_t0: torch.Tensor  # (N, 1, H, W), 1 where no pixel of frame 0 lands
    hole_t1: torch.Tensor  # (N, 1, H, W), 1 where no pixel of frame 1 lands
    warp_t0: torch.Tensor | None = None  # (N, 2, H', W') at the flows' size
    warp_t1: torch.Tensor | None = None

    def warp_flows(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The intermediate flows to warp the frames with: the sharpened ones where there are."""
        if self.warp_t0 is None or self.warp_t1 is None:
            return self.flow_t0, self.flow_t1
        return self.warp_t0, self.warp_t1


@dataclass(frozen=True)
class Detail:
    """Source pixels of one flow that its grid version does not represent (``detail_sources``)."""

    index: torch.Tensor  # (M,) flat index into N*H*W
    flow: torch.Tensor  # (2, M) their flow, pixels
    importance: torch.Tensor  # (M,) their splat importance


def grid_size(height: int, width: int) -> tuple[int, int]:
    """Size of the projection grid for flows of height x width."""
    if min(height, width) * GRID_SCALE < MIN_GRID_SIDE:
        return height, width
    return round(height * GRID_SCALE), round(width * GRID_SCALE)


def detail_sources(flow: torch.Tensor, grid_flow: torch.Tensor, importance: torch.Tensor) -> Detail:
    """The pixels of ``flow`` (N, 2, H, W) more than DETAIL px from ``grid_flow`` upsampled: pair-level, once."""
    n, _, h, w = flow.shape
    off = flow - resize_flow(grid_flow, (h, w))
    index = torch.nonzero(((off[:, 0] ** 2 + off[:, 1] ** 2) > DETAIL**2).flatten()).flatten()
    return Detail(
        index,
        flow.permute(1, 0, 2, 3).reshape(2, -1)[:, index],
        importance.flatten()[index],
    )


def near(flow: torch.Tensor, *details: Detail) -> torch.Tensor:
    """Flat indices (M,) of the pixels of ``flow``'s size within DETAIL_REACH px of any of ``details``' sources."""
    n, _, h, w = flow.shape
    marked = torch.zeros(n * h * w, device=flow.device, dtype=flow.dtype)
    for detail in details:
        marked[detail.index] = 1
    size = 2 * DETAIL_REACH + 1
    if flow.device.type == "cpu":  # OpenCV's dilation: the same, ~30x faster than a max-pool there
        kernel = np.ones((size, size), np.uint8)
        reach = np.stack([cv2.dilate(item.numpy().astype(np.uint8), kernel) for item in marked.view(n, h, w)])
        return torch.from_numpy(np.flatnonzero(reach))
    reach = F.max_pool2d(marked.view(n, 1, h, w), size, stride=1, padding=DETAIL_REACH)
    return torch.nonzero(reach.flatten()).flatten()


def sharpen(
    flow_t: torch.Tensor, flow: torch.Tensor, importance: torch.Tensor, detail: Detail, travel: float
) -> torch.Tensor:
    """An intermediate flow upsampled from the grid (N, 2, H, W), with the detail the grid lost.

    ``flow`` is the pair's flow from the same frame (flow_01 for flow_t0), ``travel`` the share of
    it covered by time t (t for flow_t0, 1 - t for flow_t1), ``importance`` its splat importance.
    The detail sources are splatted at full size; each target they reach mixes them with the
    upsampled value, weighted by importance as the grid's splat weighs its sources (the upsampled
    value counts as one source: the pixel it samples). Only those targets are touched.
    """
    n, _, h, w = flow.shape
    if detail.index.numel() == 0:
        return flow_t
    pixel = detail.index % (h * w)
    xs = (pixel % w).to(flow.dtype) + travel * detail.flow[0]
    ys = (pixel // w).to(flow.dtype) + travel * detail.flow[1]
    targets, shares = zip(*_corners(xs, ys, detail.index - pixel, h, w))
    target, slot = torch.unique(torch.cat(targets), return_inverse=True)
    payload = torch.cat((-travel * detail.flow * detail.importance, detail.importance[None]))  # (3, M)
    total = torch.zeros(3, target.numel(), device=flow.device, dtype=flow.dtype)
    total.index_add_(1, slot, torch.cat([payload * share for share in shares], 1))

    flow_t = flow_t.contiguous().clone()
    item, pixel = target // (h * w), target % (h * w)
    at = (item * 2 * (h * w) + pixel)[None] + torch.arange(2, device=flow.device)[:, None] * (h * w)  # (2, K)
    values = flow_t.view(-1)
    own = values[at]  # the upsampled vector at each target
    rows, cols = (pixel // w).to(flow.dtype), (pixel % w).to(flow.dtype)
    # it counts as the source pixel it samples: that pixel's importance, times how well that pixel
    # actually arrives here (near a small object the upsampled vector is partly the object's, and
    # then names a source that lands elsewhere)
    source_y, source_x = rows + own[1], cols + own[0]
    arrival = (own + travel * sample_at(flow, item, source_y, source_x).T).square().sum(0)
    own_weight = sample_at(importance, item, source_y, source_x)[:, 0] / (1 + arrival / ARRIVAL**2)
    values[at] = (total[:2] + own_weight * own) / (total[2] + own_weight)
    return flow_t


def _corners(xs: torch.Tensor, ys: torch.Tensor, base: torch.Tensor, h: int, w: int):
    """The four pixels around each point (xs, ys) of a frame h x w, for bilinear splatting: yields
    (flat index ``base + y * w + x``, share) per corner; a corner outside the frame has share 0 and
    its index clamped into it. ``base`` is each point's item offset into N*H*W."""
    x0, y0 = xs.floor(), ys.floor()
    fx, fy = xs - x0, ys - y0
    x0, y0 = x0.long(), y0.long()
    # per axis: each side's weight (0 outside the frame) and clamped offset; a corner combines one of each
    along_x = [(share * ((x >= 0) & (x < w)), x.clamp(0, w - 1)) for share, x in ((1 - fx, x0), (fx, x0 + 1))]
    along_y = [
        (share * ((y >= 0) & (y < h)), base + y.clamp(0, h - 1) * w) for share, y in ((1 - fy, y0), (fy, y0 + 1))
    ]
    for share_y, row in along_y:
        for share_x, column in along_x:
            yield row + column, share_x * share_y


def forward_splat(
    values: torch.Tensor, flow: torch.Tensor, importance: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Splat ``values`` (N, C, H, W) to ``x + flow(x)``.

    Returns the importance-weighted mean of what landed on each target pixel (N, C, H, W) and the
    plain bilinear coverage (N, 1, H, W): about 1 where the target is covered once, 0 in holes.
    """
    check_shape(values, "values")
    check_shape(flow, "flow", channels=2)
    n, c, h, w = values.shape
    pos = coords_grid(n, h, w, flow.device, flow.dtype) + flow
    base = torch.arange(n, device=flow.device).repeat_interleave(h * w) * (h * w)

    # (C + 2, N*H*W): importance-weighted values, the importance, and a plain 1 for coverage
    payload = torch.cat((values * importance, importance, torch.ones_like(importance)), dim=1)
    payload = payload.transpose(0, 1).reshape(c + 2, -1)
    out = torch.zeros(c + 2, n * h * w, device=values.device, dtype=values.dtype)
    for index, share in _corners(pos[:, 0].flatten(), pos[:, 1].flatten(), base, h, w):
        out = out.index_add(1, index, payload * share)
    out = out.view(c + 2, n, h, w).transpose(0, 1)
    mean = out[:, :c] / out[:, c : c + 1].clamp(min=1e-30)
    return mean, out[:, c + 1 :]


def fill_holes(values: torch.Tensor, coverage: torch.Tensor) -> torch.Tensor:
    """Push-pull fill: where coverage < 1, mix in the value interpolated from a coarser level."""
    alpha = coverage.clamp(0, 1)
    levels = [(values * alpha, alpha)]
    while min(levels[-1][0].shape[-2:]) > 1 and bool((levels[-1][1] < 1e-3).any()):
        num, den = levels[-1]
        levels.append((F.avg_pool2d(num, 2, ceil_mode=True), F.avg_pool2d(den, 2, ceil_mode=True)))
    num, den = levels[-1]
    filled = num / den.clamp(min=1e-6)
    for num, den in reversed(levels[:-1]):
        up = F.interpolate(filled, size=num.shape[-2:], mode="bilinear", align_corners=False)
        weight = (den * 4).clamp(0, 1)  # trust a level once it has a quarter pixel's worth of data
        filled = weight * (num / den.clamp(min=1e-6)) + (1 - weight) * up
    return filled


def project_flow(
    flow_01: torch.Tensor,
    flow_10: torch.Tensor,
    t: float,
    importance_0: torch.Tensor | None = None,
    importance_1: torch.Tensor | None = None,
) -> Projection:
    """Intermediate flows at time t in [0, 1].

    ``importance_*`` (N, 1, H, W) rank sources that collide (``occlusion.splat_importance``); they
    depend on the pair only, so a caller rendering several t computes them once.
    """
    check_shape(flow_01, "flow_01", channels=2)
    check_shape(flow_10, "flow_10", channels=2)
    flow_01 = flow_01.float()
    flow_10 = flow_10.float()
    if importance_0 is None:
        importance_0 = occlusion.splat_importance(occlusion.consistency_error(flow_01, flow_10), flow_01)
    if importance_1 is None:
        importance_1 = occlusion.splat_importance(occlusion.consistency_error(flow_10, flow_01), flow_10)
    flow_t0, cover_0 = forward_splat(-t * flow_01, t * flow_01, importance_0)
    flow_t1, cover_1 = forward_splat(-(1 - t) * flow_10, (1 - t) * flow_10, importance_1)
    return Projection(
        flow_t0=fill_holes(flow_t0, cover_0),
        flow_t1=fill_holes(flow_t1, cover_1),
        hole_t0=1 - cover_0.clamp(0, 1),
        hole_t1=1 - cover_1.clamp(0, 1),
    )
