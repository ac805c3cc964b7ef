"""Scene-cut test: a pair that straddles a cut gets the nearest source frame, never a blend.

Two signals. The cheap one is the L1 distance of colour histograms of small thumbnails, in [0, 1]
(0: same colours, 1: disjoint). Above ``threshold`` the pair is a cut without estimating flow.
Between ``threshold / 2`` and ``threshold`` the flow's own failure decides: when most pixels fail
the forward-backward test, no motion explains the change, so it is a cut (a fast pan has a similar
histogram distance but consistent flow).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

THUMBNAIL = (36, 64)
BINS = 16
FLOW_FAILURE_CUT = 0.5  # share of pixels failing the consistency test


def histogram_distance(image0: torch.Tensor, image1: torch.Tensor) -> float:
    """Per-channel colour-histogram L1 distance / 2 of (1, 3, H, W) images, in [0, 1]."""

    def hist(image: torch.Tensor) -> torch.Tensor:
        thumb = F.interpolate(image.float(), size=THUMBNAIL, mode="area")[0]
        bins = (thumb.clamp(0, 1) * (BINS - 1)).round().long()  # (3, h, w)
        offsets = (torch.arange(3, device=bins.device) * BINS).view(3, 1, 1)
        counts = torch.bincount((bins + offsets).flatten(), minlength=3 * BINS).float()
        return counts.view(3, BINS) / (THUMBNAIL[0] * THUMBNAIL[1])

    return float((hist(image0) - hist(image1)).abs().sum(dim=1).mean() / 2)


def needs_flow_check(distance: float, threshold: float) -> bool:
    """Whether the histogram alone cannot decide: flow failure breaks the tie."""
    return threshold / 2 < distance <= threshold


def is_cut(distance: float, threshold: float, flow_failure: float | None = None) -> bool:
    """Decide from the histogram distance and, in the grey zone, the flow's failure share."""
    if distance > threshold:
        return True
    if needs_flow_check(distance, threshold) and flow_failure is not None:
        return flow_failure > FLOW_FAILURE_CUT
    return False
