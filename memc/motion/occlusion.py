"""Where a pixel can be trusted: all of memc's occlusion logic.

Two signals, both cheap and computed from the flows alone:

* Forward-backward consistency. For a pixel x of frame 0 that is visible in frame 1,
  ``flow_01(x) + flow_10(x + flow_01(x)) ~= 0``. The error ``|.|`` (pixels) is large where x is
  occluded in frame 1 or where the flow is wrong (UFlow / SelFlow use the same test).
* Projection holes. Forward-projecting frame 0's flow to time t leaves pixels of frame t that no
  pixel of frame 0 lands on: they are not visible in frame 0 (disocclusions). ``project.py``
  returns that as ``hole_t0`` in [0, 1].

* Arrival. The pixel y = x + flow_t0(x) of frame 0 that time t samples must itself arrive at x:
  ``y + t flow_01(y) ~= x``, i.e. ``m_0 = |flow_t0(x) + t flow_01(y)|`` is small. Where an object
  has left (its old place at time t shows background that frame 0 hides), y is the object, which
  is elsewhere at t: m_0 is large and frame 0 must not be used there, however well tracked y is.

Visibility of frame 0 at time t is ``(1 - hole_t0) * (f + (1 - f) c(err_0(y))) * c(m_0)`` with
``c(e) = 1 / (1 + (e / TOLERANCE)^2)``, and likewise for frame 1. The floor ``f`` is
``CONSISTENCY_FLOOR`` where at least one frame passes the consistency test at x
(``min(err_0, err_1) <= FAILURE``), else 0. ``synthesize`` blends with these.
"""

from __future__ import annotations

import torch

from .warp import backward_warp

# Forward-backward error (pixels) at which a sample counts half: sub-pixel flow noise must not
# count as occlusion, a pixel that lands a few pixels off must.
TOLERANCE = 1.5
# Forward-backward error (pixels) above which a pixel fails the consistency test.
FAILURE = 3 * TOLERANCE
# Importance of a source pixel when several land on the same target pixel (softmax splatting).
SPLAT_SHARPNESS = 1.0
# Two well-tracked sources landing on one pixel (a ball over a lawn it hides at t but not at 0 or 1)
# cannot be ranked by consistency. The one moving against the dominant (camera) motion is taken to
# be in front: importance grows by FOREGROUND_GAIN per pixel of deviation, up to FOREGROUND_CAP px.
FOREGROUND_GAIN = 0.5
FOREGROUND_CAP = 8.0
# Share of visibility a pixel keeps when it fails the consistency test but arrives where it should,
# given only where at least one of the two frames passes the test (see ``visibility``).
CONSISTENCY_FLOOR = 0.1
# Smallest visibility; keeps the blend defined where both frames look occluded.
FLOOR = 1e-3


def magnitude(vector: torch.Tensor) -> torch.Tensor:
    """Length (N, 1, H, W) of a 2-channel field; ``hypot`` is ~50x faster than ``norm(dim=1)`` on a CPU."""
    x, y = vector[:, 0:1], vector[:, 1:2]
    if vector.requires_grad:
        # hypot's gradient at a zero vector is NaN (norm's is 0): training would turn the weights to NaN
        return (x * x + y * y).clamp_min(1e-12).sqrt()
    return torch.hypot(x, y)


def consistency_error(flow_ab: torch.Tensor, flow_ba: torch.Tensor) -> torch.Tensor:
    """Forward-backward error in pixels at each pixel of frame a: (N, 1, H, W)."""
    back = backward_warp(flow_ba, flow_ab)
    return magnitude(flow_ab + back)


def dominant_motion(flow: torch.Tensor) -> torch.Tensor:
    """The camera's motion as the per-item median vector (N, 2, 1, 1), from every 8th pixel each way."""
    return flow[..., ::8, ::8].flatten(2).median(dim=2).values[..., None, None]


def splat_importance(error: torch.Tensor, flow: torch.Tensor | None = None) -> torch.Tensor:
    """Collision weight for forward projection: consistent pixels win, then those moving against the camera."""
    score = -(SPLAT_SHARPNESS * error).clamp(max=30.0)
    if flow is not None:
        deviation = magnitude(flow - dominant_motion(flow))
        score = score + FOREGROUND_GAIN * deviation.clamp(max=FOREGROUND_CAP)
    return torch.exp(score)


def arrival_error(flow_t: torch.Tensor, flow_sampled: torch.Tensor, travel: float) -> torch.Tensor:
    """``m = |flow_t + travel * flow_sampled|`` (N, 1, H, W): how far the sampled source pixel lands from x at t."""
    return magnitude(flow_t + travel * flow_sampled)


def confidence(error: torch.Tensor) -> torch.Tensor:
    """``c(e)`` in (0, 1]: how far a forward-backward (or arrival) error in pixels can be trusted."""
    return 1.0 / (1.0 + (error / TOLERANCE) ** 2)


def visibility(
    hole: torch.Tensor, error_at_t: torch.Tensor, arrival: torch.Tensor, other_error_at_t: torch.Tensor
) -> torch.Tensor:
    """Soft visibility (N, 1, H, W) of a source frame at time t: projection hole, consistency and arrival errors.

    ``other_error_at_t`` is the other frame's consistency error, sampled at the same pixels of t.
    """
    consistent = confidence(error_at_t)
    # A pixel occluded in the other frame fails the consistency test yet is seen at t if it arrives:
    # it keeps a floor. Where both frames fail, the flow is broken rather than occluded: a floor
    # there would let the unreliable hole and arrival signals steer the blend, so there is none and
    # the blend follows the (tiny) consistencies, down to plain time weights at FLOOR.
    passes = torch.minimum(error_at_t, other_error_at_t) <= FAILURE
    floor = CONSISTENCY_FLOOR * passes.to(consistent.dtype)
    trust = (floor + (1 - floor) * consistent) * confidence(arrival)
    return ((1.0 - hole) * trust).clamp(min=FLOOR)


def failure_fraction(error: torch.Tensor, threshold: float = FAILURE) -> torch.Tensor:
    """Share of pixels (per batch item) whose flow fails the consistency test: a scene-cut signal."""
    return (error > threshold).float().mean(dim=(1, 2, 3))
