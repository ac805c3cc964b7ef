"""Where a pixel can be trusted: all of memc's occlusion logic.

Two signals, both cheap and computed from the flows alone:

* Forward-backward consistency. For a pixel x of frame 0 that is visible in frame 1,
  ``flow_01(x) + flow_10(x + flow_01(x)) ~= 0``. The error ``|.|`` (pixels) is large where x is
  occluded in frame 1 or where the flow is wrong (UFlow / SelFlow use the same test).
* Projection holes. Forward-projecting frame 0's flow to time t leaves pixels of frame t that no
  pixel of frame 0 lands on: they are not visible in frame 0 (disocclusions). ``project.py``
  returns that as ``hole_t0`` in [0, 1].

Visibility of frame 0 at time t is ``(1 - hole_t0) * c(err_0 sampled at x + flow_t0)`` with
``c(e) = 1 / (1 + (e / TOLERANCE)^2)``, and likewise for frame 1. ``synthesize`` blends with these.
"""

from __future__ import annotations

import torch

from .warp import backward_warp

# Forward-backward error (pixels) at which a sample counts half: sub-pixel flow noise must not
# count as occlusion, a pixel that lands a few pixels off must.
TOLERANCE = 1.5
# Importance of a source pixel when several land on the same target pixel (softmax splatting).
SPLAT_SHARPNESS = 1.0
# Smallest visibility; keeps the blend defined where both frames look occluded.
FLOOR = 1e-3


def consistency_error(flow_ab: torch.Tensor, flow_ba: torch.Tensor) -> torch.Tensor:
    """Forward-backward error in pixels at each pixel of frame a: (N, 1, H, W)."""
    back = backward_warp(flow_ba, flow_ab)
    return (flow_ab + back).norm(dim=1, keepdim=True)


def splat_importance(error: torch.Tensor) -> torch.Tensor:
    """Collision weight for forward projection: consistent (foreground, well-tracked) pixels win."""
    return torch.exp(-(SPLAT_SHARPNESS * error).clamp(max=30.0))


def visibility(hole: torch.Tensor, error_at_t: torch.Tensor) -> torch.Tensor:
    """Soft visibility (N, 1, H, W) of a source frame at time t, from its projection hole and its consistency error."""
    trust = 1.0 / (1.0 + (error_at_t / TOLERANCE) ** 2)
    return ((1.0 - hole) * trust).clamp(min=FLOOR)


def failure_fraction(error: torch.Tensor, threshold: float = 3 * TOLERANCE) -> torch.Tensor:
    """Share of pixels (per batch item) whose flow fails the consistency test: a scene-cut signal."""
    return (error > threshold).float().mean(dim=(1, 2, 3))
