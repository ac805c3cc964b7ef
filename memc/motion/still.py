"""Pixels that do not move: a channel logo, hard subtitles, a game HUD over a moving picture.

Flow estimators smooth their field, so a small static overlay on a panning background gets part
of the background's motion and is dragged along. Where both frames agree *at zero motion* over a
whole neighbourhood, nothing moved there: the flows are set to zero at those pixels of both frames,
and projection and synthesis then keep them in place (``occlusion``'s splat order lets a still
pixel over a panning background win where the two land on one spot).

Agreement is tested on the pair: the largest channel difference of the two frames below
``TOLERANCE`` at the pixel, and no larger than under the estimated flow (a slow pan over smooth
content agrees at zero motion too, but its flow explains it better; zeroing it there cost the
hard-motion suite 0.6 dB in object regions); then a morphological opening over ``SIZE`` x ``SIZE``
drops specks where a moving texture happens to match itself, so only still areas at least that
big count. At time t (``settle``) the projected flows are zeroed on still pixels where they are
below ``ARRIVAL``: splatting bleeds a fraction of a moving neighbour's motion into a still edge.
A small object that crosses a still background between the frames is untouched: its own pixels
disagree at zero motion, so it keeps its flow, and where it arrives at t the projected flow is
its whole motion, far above ``ARRIVAL``.
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from . import occlusion
from .project import Projection
from .warp import backward_warp

TOLERANCE = 3 / 255  # per channel and pixel
SIZE = 7  # px; still areas smaller than this are not trusted
# At time t a still pixel keeps zero motion unless something clearly arrives there (a ball crossing
# a still background moves whole pixels); less is the bleed of splatting from moving neighbours.
ARRIVAL = 1.0  # px
MARGIN = 0.5 / 255  # zero motion wins ties with the flow (flat areas)


def still_mask(
    image0: torch.Tensor, image1: torch.Tensor, flow_01: torch.Tensor | None = None, flow_10: torch.Tensor | None = None
) -> torch.Tensor:
    """(N, 1, H, W) in {0, 1}: 1 where both images (N, 3, H, W) agree at zero motion over a SIZE x SIZE area
    and, given the flows, zero motion explains each frame's pixels at least as well as the flow does
    (a slow pan over smooth content also agrees at zero motion, but its flow explains it better)."""
    zero = (image0 - image1).abs().amax(dim=1, keepdim=True)
    agree = zero < TOLERANCE
    if flow_01 is not None and flow_10 is not None:
        by_flow0 = (image0 - backward_warp(image1, flow_01)).abs().amax(dim=1, keepdim=True)
        by_flow1 = (image1 - backward_warp(image0, flow_10)).abs().amax(dim=1, keepdim=True)
        agree = agree & (zero <= by_flow0 + MARGIN) & (zero <= by_flow1 + MARGIN)
    return _opening(agree)


def _opening(mask: torch.Tensor) -> torch.Tensor:
    """Morphological opening (erode, then dilate) of a boolean (N, 1, H, W) over SIZE x SIZE squares,
    as float. OpenCV's on a CPU (50x faster than two max-pools), the same result."""
    if mask.device.type == "cpu":
        kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (SIZE, SIZE))
        opened = [
            cv2.morphologyEx(item[0].to(torch.uint8).numpy(), cv2.MORPH_OPEN, kernel, borderType=cv2.BORDER_REPLICATE)
            for item in mask
        ]
        return torch.from_numpy(np.stack(opened)[:, None]).float()
    eroded = -_box_max(-mask.float())
    return _box_max(eroded)


def _box_max(x: torch.Tensor) -> torch.Tensor:
    """Maximum over SIZE x SIZE windows, as a row pass then a column pass (the same result as one
    square max_pool2d, which costs SIZE x more on a CPU)."""
    pad = SIZE // 2
    rows = F.max_pool2d(x, (1, SIZE), stride=1, padding=(0, pad))
    return F.max_pool2d(rows, (SIZE, 1), stride=1, padding=(pad, 0))


def hold_still(flow_01: torch.Tensor, flow_10: torch.Tensor, still: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Both flows with zero motion on the pair's still pixels (``still_mask``)."""
    moving = 1 - still
    return flow_01 * moving, flow_10 * moving


def _calm(flow_t0: torch.Tensor, flow_t1: torch.Tensor, still: torch.Tensor) -> torch.Tensor:
    """1 on still pixels that nothing clearly arrives at: their motion at t is splatting's bleed."""
    return still * (occlusion.magnitude(flow_t0) < ARRIVAL) * (occlusion.magnitude(flow_t1) < ARRIVAL)


def settle(projection: Projection, still: torch.Tensor) -> Projection:
    """The projection with zero motion on still pixels (N, 1, H, W) that nothing clearly arrives at."""
    keep = 1 - _calm(projection.flow_t0, projection.flow_t1, still)
    return dataclasses.replace(
        projection,
        flow_t0=projection.flow_t0 * keep,
        flow_t1=projection.flow_t1 * keep,
        hole_t0=projection.hole_t0 * keep,
        hole_t1=projection.hole_t1 * keep,
    )


def settle_warp(projection: Projection, still: torch.Tensor) -> Projection:
    """``settle`` for the sharpened flows at the flows' size (``Projection.warp_t0``): upsampling
    from the grid bleeds a fraction of a pixel into a still edge, which a sharp logo shows."""
    if projection.warp_t0 is None or projection.warp_t1 is None:
        return projection
    keep = 1 - _calm(projection.warp_t0, projection.warp_t1, still)
    return dataclasses.replace(projection, warp_t0=projection.warp_t0 * keep, warp_t1=projection.warp_t1 * keep)
