"""Synthesis: warp both frames to time t and blend them by visibility and time.

    image_t = ((1 - t) V0 W0 + t V1 W1) / ((1 - t) V0 + t V1)

with ``W0 = backward_warp(image0, flow_t0)``, ``W1 = backward_warp(image1, flow_t1)`` and the
visibilities ``V0, V1`` from ``occlusion.visibility`` (projection holes, consistency and arrival).
Where both frames fail the consistency test (broken flow) ``visibility`` gives neither a floor:
the blend follows their consistencies and, where both are hopeless, falls to the plain
time-weighted blend of the two warps (``occlusion.FLOOR``): a soft fallback, never a hole. Runs in
float32.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from . import occlusion
from .project import Projection
from .warp import backward_warp


@dataclass(frozen=True)
class Synthesis:
    image: torch.Tensor  # (N, 3, H, W) the frame at t
    warped0: torch.Tensor  # (N, 3, H, W)
    warped1: torch.Tensor  # (N, 3, H, W)
    mask0: torch.Tensor  # (N, 1, H, W) blend weight of warped0; warped1 gets 1 - mask0
    visibility0: torch.Tensor  # (N, 1, H, W) of frame 0 at t (``occlusion.visibility``), before time weights
    visibility1: torch.Tensor


def synthesize(
    image0: torch.Tensor,
    image1: torch.Tensor,
    projection: Projection,
    t: float,
    error_0: torch.Tensor,
    error_1: torch.Tensor,
    flow_01: torch.Tensor,
    flow_10: torch.Tensor,
) -> Synthesis:
    """Frame at time t from the two frames, their projection to t, consistency errors and flows.

    The pair's flows tell whether a sampled pixel arrives at x at time t: one that does not (an
    object that has left) loses its visibility (``occlusion.arrival_error``).
    """
    image0 = image0.float()
    image1 = image1.float()
    # One warp per frame: the image (3 channels), its consistency error (1) and its flow (2) travel together.
    sample0 = backward_warp(torch.cat((image0, error_0.float(), flow_01.float()), 1), projection.flow_t0)
    sample1 = backward_warp(torch.cat((image1, error_1.float(), flow_10.float()), 1), projection.flow_t1)
    warped0, warped1 = sample0[:, :3], sample1[:, :3]
    arrival0 = occlusion.arrival_error(projection.flow_t0, sample0[:, 4:6], t)
    arrival1 = occlusion.arrival_error(projection.flow_t1, sample1[:, 4:6], 1 - t)
    error0, error1 = sample0[:, 3:4], sample1[:, 3:4]
    vis0 = occlusion.visibility(projection.hole_t0, error0, arrival0, error1)
    vis1 = occlusion.visibility(projection.hole_t1, error1, arrival1, error0)
    weight0 = (1 - t) * vis0
    weight1 = t * vis1
    mask0 = weight0 / (weight0 + weight1)
    image = mask0 * warped0 + (1 - mask0) * warped1
    return Synthesis(image, warped0, warped1, mask0, vis0, vis1)
