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

Everything is plain torch (``index_add``), differentiable and device-agnostic. Runs in float32.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..tensors import check_shape
from . import occlusion
from .warp import coords_grid


@dataclass(frozen=True)
class Projection:
    flow_t0: torch.Tensor  # (N, 2, H, W)
    flow_t1: torch.Tensor  # (N, 2, H, W)
    hole_t0: torch.Tensor  # (N, 1, H, W), 1 where no pixel of frame 0 lands
    hole_t1: torch.Tensor  # (N, 1, H, W), 1 where no pixel of frame 1 lands


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
    x0 = pos[:, 0].floor()
    y0 = pos[:, 1].floor()
    fx = (pos[:, 0] - x0).reshape(1, -1)
    fy = (pos[:, 1] - y0).reshape(1, -1)
    x0 = x0.long().reshape(1, -1)
    y0 = y0.long().reshape(1, -1)
    base = (torch.arange(n, device=flow.device) * (h * w)).view(n, 1).expand(n, h * w).reshape(1, -1)

    # (C + 2, N*H*W): importance-weighted values, the importance, and a plain 1 for coverage
    payload = torch.cat((values * importance, importance, torch.ones_like(importance)), dim=1)
    payload = payload.transpose(0, 1).reshape(c + 2, -1)
    out = torch.zeros(c + 2, n * h * w, device=values.device, dtype=values.dtype)
    for dx, dy in ((0, 0), (1, 0), (0, 1), (1, 1)):
        xi, yi = x0 + dx, y0 + dy
        weight = (fx if dx else 1 - fx) * (fy if dy else 1 - fy)
        weight = weight * ((xi >= 0) & (xi < w) & (yi >= 0) & (yi < h))  # outside: weight 0, index clamped
        index = base + yi.clamp(0, h - 1) * w + xi.clamp(0, w - 1)
        out = out.index_add(1, index[0], payload * weight)
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
