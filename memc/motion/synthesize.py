"""Synthesis: warp both frames to time t and blend them by visibility and time.

    image_t = ((1 - t) V0 W0 + t V1 W1) / ((1 - t) V0 + t V1)

with ``W0 = backward_warp(image0, flow_t0)``, ``W1 = backward_warp(image1, flow_t1)`` and the
visibilities ``V0, V1`` from ``occlusion.visibility`` (projection holes, consistency and arrival).
Where both frames fail the consistency test (broken flow) ``visibility`` gives neither a floor:
the blend follows their consistencies and, where both are hopeless, falls to the plain
time-weighted blend of the two warps (``occlusion.FLOOR``): a soft fallback, never a hole. Runs in
float32.

Where the two intermediate flows give a pixel two motions (more than DISAGREE px apart), that
blend draws a moving object twice, translucent (the double image). There each motion is checked
against *both* frames, BMBC's bilateral cost ``|I0(x - t v) - I1(x + (1 - t) v)|`` over 3 x 3 px,
and one that matches both frames clearly better than the other and well enough is used alone: the
pixel is the time-weighted mean of the two frames along it (``bilateral_pick``). Where neither
does (an occlusion: one frame cannot see it) the visibility blend stays.

The projection may be smaller than the images (motion at the flow's resolution): the visibilities
and blend weight are computed there, where they cost a fraction, and only the intermediate flows
and the blend weight are upsampled for the final warp and blend at the images' size (RIFE does the
same with its flows and mask). Motion detail finer than the flow's resolution was never estimated.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ..tensors import resize_flow, upsample_rows
from . import occlusion
from .project import Projection
from .warp import backward_warp, sample_at, sample_planes, warp_rows

# Motions (px per frame interval) further apart than this count as two motions at one pixel.
DISAGREE = 1.0
# A motion is used alone where its bilateral cost is under PICK_MARGIN x the other's and under
# PICK_COST (mean absolute difference on [0, 1] values). Dev subset and hard-motion suite: 0.9 /
# 0.2 lost 0.36 dB of the suite's objects, 0.8 / 0.05 kept them but gained less on the dev clips.
PICK_MARGIN = 0.7
PICK_COST = 0.1
# Rows of a frame that ``compose_array`` makes at once: its memory stays a few MB at any frame size.
BAND_ROWS = 128


@dataclass(frozen=True)
class Synthesis:
    image: torch.Tensor  # (N, 3, H, W) the frame at t
    warped0: torch.Tensor  # (N, 3, H, W)
    warped1: torch.Tensor  # (N, 3, H, W)
    mask0: torch.Tensor  # (N, 1, H, W) blend weight of warped0; warped1 gets 1 - mask0
    # (N, 1, h, w) of frame 0 at t (``occlusion.visibility``), before time weights, at the projection's size
    visibility0: torch.Tensor
    visibility1: torch.Tensor


@dataclass(frozen=True)
class Fine:
    """What ``blend_weight`` needs to sharpen a grid's weight: the pair's flows at their own size
    and the pixels near detail sources (``project.detail_sources``), flat indices into N*H*W."""

    flow_01: torch.Tensor  # (N, 2, H, W)
    flow_10: torch.Tensor
    region: torch.Tensor  # (M,) long


def blend_weight(
    projection: Projection,
    t: float,
    error_0: torch.Tensor,
    error_1: torch.Tensor,
    flow_01: torch.Tensor,
    flow_10: torch.Tensor,
    fine: Fine | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Blend weight of frame 0 and both visibilities (N, 1, h, w), at the projection's size.

    The pair's flows tell whether a sampled pixel arrives at x at time t: one that does not (an
    object that has left) loses its visibility (``occlusion.arrival_error``). With ``fine`` (the
    projection ran on a coarser grid) the weight comes at the flows' size: upsampled, and recomputed
    near the detail sources with the arrival error of the full-size flows along the sharpened ones,
    where the grid's pooled flows blur a small object's old and new places (hard-motion suite,
    small_disc object region: 28.0 -> 29.6 dB).
    """
    # each frame's consistency error (1 channel) and flow (2) sampled at t in one warp
    sample0 = backward_warp(torch.cat((error_0.float(), flow_01.float()), 1), projection.flow_t0)
    sample1 = backward_warp(torch.cat((error_1.float(), flow_10.float()), 1), projection.flow_t1)
    arrival0 = occlusion.arrival_error(projection.flow_t0, sample0[:, 1:3], t)
    arrival1 = occlusion.arrival_error(projection.flow_t1, sample1[:, 1:3], 1 - t)
    error0, error1 = sample0[:, 0:1], sample1[:, 0:1]
    vis0 = occlusion.visibility(projection.hole_t0, error0, arrival0, error1)
    vis1 = occlusion.visibility(projection.hole_t1, error1, arrival1, error0)
    weight0 = (1 - t) * vis0
    weight1 = t * vis1
    mask0 = weight0 / (weight0 + weight1)
    if fine is None or projection.warp_t0 is None or projection.warp_t1 is None:
        return mask0, vis0, vis1
    n, _, h, w = fine.flow_01.shape
    mask0 = F.interpolate(mask0, size=(h, w), mode="bilinear", align_corners=False)
    if fine.region.numel() == 0:
        return mask0, vis0, vis1
    item, pixel = fine.region // (h * w), fine.region % (h * w)
    rows, cols = (pixel // w).to(mask0.dtype), (pixel % w).to(mask0.dtype)
    # the same points on the grid, as F.interpolate(align_corners=False) maps them: the visibilities
    # are read there, not upsampled whole for a few pixels
    grid_h, grid_w = vis0.shape[-2:]
    grid_rows, grid_cols = (rows + 0.5) * (grid_h / h) - 0.5, (cols + 0.5) * (grid_w / w) - 0.5
    weights = []
    for travel, vis, flow_t, flow in (
        (t, vis0, projection.warp_t0, fine.flow_01),
        (1 - t, vis1, projection.warp_t1, fine.flow_10),
    ):
        at = flow_t.permute(1, 0, 2, 3).reshape(2, -1)[:, fine.region]  # (2, M)
        arrived = sample_at(flow, item, rows + at[1], cols + at[0]).T  # (2, M)
        arrival = occlusion.magnitude((at + travel * arrived)[None, :, None])[0, 0, 0]
        up = sample_at(vis, item, grid_rows.clamp(min=0), grid_cols.clamp(min=0))[:, 0]
        weights.append((1 - travel) * (up * occlusion.confidence(arrival)).clamp(min=occlusion.FLOOR))
    mask0.view(-1)[fine.region] = weights[0] / (weights[0] + weights[1])  # F.interpolate's own tensor
    return mask0, vis0, vis1


def synthesize(
    image0: torch.Tensor,
    image1: torch.Tensor,
    projection: Projection,
    t: float,
    error_0: torch.Tensor,
    error_1: torch.Tensor,
    flow_01: torch.Tensor,
    flow_10: torch.Tensor,
    fine: Fine | None = None,
) -> Synthesis:
    """Frame at time t from the two frames, their projection to t, consistency errors and flows
    (the grid's, with ``fine`` for the full-size ones: ``blend_weight``)."""
    image0 = image0.float()
    image1 = image1.float()
    mask0, vis0, vis1 = blend_weight(projection, t, error_0, error_1, flow_01, flow_10, fine)
    size = image0.shape[-2:]
    if mask0.shape[-2:] != size:
        mask0 = F.interpolate(mask0, size=size, mode="bilinear", align_corners=False)
    flow_t0, flow_t1 = (resize_flow(flow, size) for flow in projection.warp_flows())
    image, warped0, warped1 = warp_and_blend(image0, image1, flow_t0, flow_t1, mask0, t)
    return Synthesis(image, warped0, warped1, mask0, vis0, vis1)


def warp_and_blend(
    image0: torch.Tensor,
    image1: torch.Tensor,
    flow_t0: torch.Tensor,
    flow_t1: torch.Tensor,
    mask0: torch.Tensor,
    t: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Both frames warped to t along the images' size flows, blended by ``mask0``, and the bilateral
    pick where the motions disagree: (image, warped0, warped1). ``compose_array`` is its twin on arrays."""
    warped0 = backward_warp(image0, flow_t0)
    warped1 = backward_warp(image1, flow_t1)
    image = warped1 + mask0 * (warped0 - warped1)
    disagree = disagreement(flow_t0, flow_t1, t)
    if bool(disagree.any()):
        cross1 = backward_warp(image1, -(1 - t) / t * flow_t0)  # frame 1 along motion 0
        cross0 = backward_warp(image0, -t / (1 - t) * flow_t1)  # frame 0 along motion 1
        along0, along1 = bilateral_pick(_box(_mean_abs(warped0, cross1)), _box(_mean_abs(cross0, warped1)), disagree)
        image = torch.where(along0, (1 - t) * warped0 + t * cross1, image)
        image = torch.where(along1, (1 - t) * cross0 + t * warped1, image)
    return image, warped0, warped1


def disagreement(flow_t0: torch.Tensor, flow_t1: torch.Tensor, t: float | torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W) True where the two intermediate flows give the pixel two motions: ``-flow_t0 / t``
    and ``flow_t1 / (1 - t)`` (px per frame interval) more than DISAGREE apart."""
    return occlusion.magnitude(flow_t0 / t + flow_t1 / (1 - t)) > DISAGREE


def bilateral_pick(cost0, cost1, disagree):
    """Where the motions disagree, which one explains both frames: (along0, along1), boolean masks.

    ``cost0`` is motion 0's bilateral cost, the 3 x 3 mean of |frame 0 - frame 1| both sampled
    along it (``warped0`` and frame 1 along motion 0), ``cost1`` motion 1's; [0, 1] values.
    Tensors or arrays alike.
    """
    along0 = disagree & (cost0 < PICK_MARGIN * cost1) & (cost0 < PICK_COST)
    along1 = disagree & (cost1 < PICK_MARGIN * cost0) & (cost1 < PICK_COST)
    return along0, along1


def _mean_abs(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a - b).abs().mean(1, keepdim=True)


def _box(x: torch.Tensor) -> torch.Tensor:
    """3 x 3 mean (edge pixels replicated, as OpenCV's ``blur`` in ``compose_array``)."""
    return F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), 3, stride=1)


def compose_array(
    image0: torch.Tensor,
    image1: torch.Tensor,
    flow_t0: torch.Tensor,
    flow_t1: torch.Tensor,
    mask0: torch.Tensor,
    t: float,
) -> np.ndarray:
    """``synthesize``'s final warp and blend with OpenCV on a CPU, as an H x W x 3 uint8 array: the
    same maths (samples placed to 1/32 px), several times faster than ``grid_sample``. Frames are
    (1, 3, H, W) float32 on the CPU; flows and weight (1, C, h, w) at the projection's size.

    The frame is made BAND_ROWS rows at a time, the flows and weight upsampled band by band: no
    full-size warp, flow, map or weight is held (at 1080p those were ~200 MB per frame in flight)."""
    h, w = image0.shape[-2:]
    planes0 = list(image0[0].float().contiguous().numpy())  # views of the frames, not copies
    planes1 = list(image1[0].float().contiguous().numpy())
    flow_t0, flow_t1, mask0 = flow_t0.float(), flow_t1.float(), mask0.float()
    out = np.empty((h, w, 3), np.uint8)
    for top in range(0, h, BAND_ROWS):
        bottom = min(h, top + BAND_ROWS)
        # with the rows just above and below: the pick's 3 x 3 costs at the band's edges read them
        lo, hi = max(0, top - 1), min(h, bottom + 1)
        f0, f1 = (resize_flow(flow, (h, w), (lo, hi))[0] for flow in (flow_t0, flow_t1))
        warped0 = warp_rows(planes0, f0, lo, np.empty((3, hi - lo, w), np.float32))
        warped1 = warp_rows(planes1, f1, lo, np.empty((3, hi - lo, w), np.float32))
        inner = slice(top - lo, bottom - lo)
        disagree = disagreement(f0[None], f1[None], t)[0, 0].numpy()
        disagree[: inner.start] = False  # the neighbours' pixels are picked in their own band
        disagree[inner.stop :] = False
        picked = _pick_array(planes0, planes1, warped0, warped1, f0, f1, disagree, t, lo) if disagree.any() else []
        # warped1 + weight0 * (warped0 - warped1), in place
        blended = np.subtract(warped0[:, inner], warped1[:, inner], out=warped0[:, inner])
        blended *= upsample_rows(mask0, (h, w), (top, bottom))[0].numpy()
        blended += warped1[:, inner]
        for (ys, xs), values in picked:
            blended[:, ys - inner.start, xs] = values.T
        blended *= 255.0
        blended += 0.5  # rounded once, here: rounding each 8-bit warp too cost 0.1-0.8 dB on clean clips
        out[top:bottom] = np.clip(blended, 0, 255, out=blended).transpose(1, 2, 0)
    return out


def _pick_array(
    planes0: list[np.ndarray],
    planes1: list[np.ndarray],
    warped0: np.ndarray,
    warped1: np.ndarray,
    flow_t0: torch.Tensor,
    flow_t1: torch.Tensor,
    disagree: np.ndarray,
    t: float,
    top: int,
) -> list[tuple[tuple[np.ndarray, np.ndarray], np.ndarray]]:
    """``synthesize``'s bilateral pick on a band of ``compose_array`` (first row ``top``): warps
    (3, R, W), flows (2, R, W); [(pixels (ys, xs) of the band, their values (K, 3))] for motion 0
    and motion 1. The motions disagree on a few % of a frame, so each frame is sampled along the
    other motion only there and at the 3 x 3 boxes around it, not warped whole."""
    h, w = disagree.shape
    reach = cv2.dilate(disagree.view(np.uint8), np.ones((3, 3), np.uint8))  # the pixels a 3 x 3 cost reads
    ys, xs = np.nonzero(reach)
    at_y, at_x = torch.from_numpy(ys), torch.from_numpy(xs)

    def along(planes: list[np.ndarray], flow: torch.Tensor, scale: float) -> np.ndarray:
        """(K, 3) samples of a frame at ``x + scale * flow(x)`` at the reach pixels, as ``warp_rows``
        samples them."""
        step = flow[:, at_y, at_x] * scale
        return sample_planes(planes, (step[0] + at_x.float()).numpy(), (step[1] + (at_y + top).float()).numpy())

    def cost(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """``_box(_mean_abs(a, b))`` at the disagreeing pixels, from (K, 3) values at the reach pixels."""
        full = np.zeros((h, w), np.float32)
        full[ys, xs] = np.abs(a - b).mean(1)
        return cv2.blur(full, (3, 3), borderType=cv2.BORDER_REPLICATE)[d_ys, d_xs]

    d_ys, d_xs = np.nonzero(disagree)
    here = np.searchsorted(ys * w + xs, d_ys * w + d_xs)  # each disagreeing pixel among the reach pixels
    cross1 = along(planes1, flow_t0, -(1 - t) / t)  # frame 1 along motion 0
    cross0 = along(planes0, flow_t1, -t / (1 - t))  # frame 0 along motion 1
    reach0, reach1 = warped0[:, ys, xs].T, warped1[:, ys, xs].T
    along0, along1 = bilateral_pick(cost(reach0, cross1), cost(cross0, reach1), True)
    picked = []
    for chosen, first, second in ((along0, reach0, cross1), (along1, cross0, reach1)):
        k = here[chosen]
        picked.append(((d_ys[chosen], d_xs[chosen]), (1 - t) * first[k] + t * second[k]))
    return picked
