"""``torch``: a training-free coarse-to-fine flow estimator written in torch, for any device.

OpenCV's DIS runs on the CPU one image at a time; on a GPU server it becomes the bottleneck. This
is the same kind of method (dense inverse search, Kroeger et al. 2016), reformulated so that every
step is a batched tensor operation and both directions of every pair run as one batch:

1. a luma pyramid (binomial blur, stride 2) down to about ``4 * PATCH`` px on the long side;
2. per level, a grid of PATCH x PATCH patches every STRIDE px; each patch's translation is found
   by inverse-compositional Gauss-Newton steps on its mean-normalized SSD, all patches at once
   (``unfold`` for the templates, one ``grid_sample`` per step for the other image), starting from
   the coarser level's flow. The template's gradients and Hessian are fixed, so a step is one
   sample and a few sums; a patch keeps its best step, and a patch that runs away is reset;
3. densification: every pixel averages the vectors of the patches that cover it, each weighted by
   ``1 / max(1, |residual|)`` (grey levels) at that pixel under that patch's vector (``fold``), so
   at a motion boundary the patch that explains the pixel wins;
4. variational refinement: brightness and gradient constancy (normalized, robust) plus a robust
   smoothness term, linearized around the current flow and solved by red-black SOR as tensor ops.
   It removes the patch grid's blockiness and sharpens sub-pixel accuracy.

Why this method and not pyramidal block matching: patch inverse search is sub-pixel by
construction, needs a handful of samples per patch instead of a search window, and matches what
``dis`` does, so ``torch`` can replace it on quality. Flow is computed in float32 (float64 for
float64 inputs) whatever autocast says; devices follow the inputs.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..tensors import check_shape, resize_flow
from .estimate import MotionModel
from .matching import add_large_motion
from .warp import backward_warp

PATCH = 8  # px; patch side at every level
STRIDE = 4  # px between patch origins: every pixel is covered by (PATCH / STRIDE)^2 patches
FINEST = 1  # finest level computed (0 = full size, 1 = half); the flow is upsampled from there
COARSEST = 48  # px; long side of the coarsest level, about: fewer patches there are guesses
GN_STEPS = 4  # Gauss-Newton steps per patch, level and propagation round
PROPAGATION = 3  # rounds of spatial propagation (each followed by GN_STEPS more steps)
HESSIAN_EPS = 1e-3  # (grey levels / px)^2 added to the Hessian diagonal: flat patches barely move
# variational refinement, grey levels 0..255 (the weights are those of OpenCV's refinement)
VARIATIONAL_ITERS = 5  # fixed-point iterations per level (robust weights recomputed)
SOR_ITERS = 5  # red-black SOR sweeps per fixed-point iteration
OMEGA = 1.6  # SOR over-relaxation
ALPHA = 20.0  # smoothness
DELTA = 5.0  # brightness constancy
GAMMA = 10.0  # gradient constancy
ZETA = 0.1  # normalization floor of the data terms (grey levels / px)
EPSILON = 1e-3  # robust penalty sqrt(s^2 + eps^2)


def _luma(image: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) RGB in [0, 1] -> (N, 1, H, W) grey levels 0..255 (BT.601 weights, like ``dis``)."""
    weights = torch.tensor([0.299, 0.587, 0.114], device=image.device, dtype=image.dtype).view(1, 3, 1, 1)
    return (image * weights).sum(1, keepdim=True) * 255.0


def _blur_down(image: torch.Tensor) -> torch.Tensor:
    """Half size: separable binomial [1 4 6 4 1] / 16 blur, then every other pixel (like ``pyrDown``)."""
    taps = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0], device=image.device, dtype=image.dtype) / 16
    padded = F.pad(image, (2, 2, 2, 2), mode="replicate")
    blurred = F.conv2d(F.conv2d(padded, taps.view(1, 1, 1, 5)), taps.view(1, 1, 5, 1))
    return blurred[..., ::2, ::2]


def _levels(height: int, width: int) -> int:
    """How many times to halve: until the long side is about COARSEST px (and the short one >= 1 patch)."""
    by_long = round(math.log2(max(height, width) / COARSEST)) if max(height, width) > COARSEST else 0
    by_short = int(math.log2(min(height, width) / PATCH)) if min(height, width) > PATCH else 0
    return max(0, min(by_long, by_short))


def _gradient(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Central differences (x, y) of (N, 1, H, W), replicated at the borders."""
    padded = F.pad(image, (1, 1, 1, 1), mode="replicate")
    gx = 0.5 * (padded[..., 1:-1, 2:] - padded[..., 1:-1, :-2])
    gy = 0.5 * (padded[..., 2:, 1:-1] - padded[..., :-2, 1:-1])
    return gx, gy


def _sample_patches(image: torch.Tensor, points: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """``image`` (N, 1, H, W) at every patch pixel ``points`` (P*P, L, 2, pixels x, y) moved by its
    patch's ``flow`` (N, 2, L): (N, P*P, L), bilinear, border replicated."""
    h, w = image.shape[-2:]
    pos = points.unsqueeze(0) + flow.permute(0, 2, 1).unsqueeze(1)  # (N, P*P, L, 2)
    scale = torch.tensor([2.0 / max(w - 1, 1), 2.0 / max(h - 1, 1)], device=pos.device, dtype=pos.dtype)
    grid = pos * scale - 1.0
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=True)[:, 0]


def patch_search(image0: torch.Tensor, image1: torch.Tensor, init: torch.Tensor) -> torch.Tensor:
    """Dense flow (N, 2, H, W) from image0 to image1 (N, 1, H, W grey levels) by patch inverse search
    started from ``init`` (N, 2, H, W), then densified by residual-weighted averaging."""
    n, _, h, w = image0.shape
    # pad so that the patch grid ends exactly at the bottom and right edges
    rows, cols = max(1, math.ceil((h - PATCH) / STRIDE) + 1), max(1, math.ceil((w - PATCH) / STRIDE) + 1)
    hp, wp = (rows - 1) * STRIDE + PATCH, (cols - 1) * STRIDE + PATCH
    pad = (0, wp - w, 0, hp - h)
    i0, i1 = F.pad(image0, pad, mode="replicate"), F.pad(image1, pad, mode="replicate")
    start = F.pad(init, pad, mode="replicate")

    gx, gy = _gradient(i0)
    template = F.unfold(i0, PATCH, stride=STRIDE)  # (N, P*P, L)
    tx, ty = F.unfold(gx, PATCH, stride=STRIDE), F.unfold(gy, PATCH, stride=STRIDE)
    tx, ty = tx - tx.mean(1, keepdim=True), ty - ty.mean(1, keepdim=True)  # residuals are mean-normalized
    hxx = (tx * tx).sum(1) + HESSIAN_EPS * PATCH**2
    hxy = (tx * ty).sum(1)
    hyy = (ty * ty).sum(1) + HESSIAN_EPS * PATCH**2
    det = hxx * hyy - hxy * hxy

    # every patch pixel's coordinates (P*P, L, 2), in unfold's order
    coords = torch.stack(
        torch.meshgrid(
            torch.arange(hp, device=i0.device, dtype=i0.dtype),
            torch.arange(wp, device=i0.device, dtype=i0.dtype),
            indexing="ij",
        )[::-1]
    ).unsqueeze(0)  # (1, 2, hp, wp) as (x, y)
    points = F.unfold(coords, PATCH, stride=STRIDE).view(2, PATCH * PATCH, -1).permute(1, 2, 0)

    def cost_of(flow: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean-normalized residual (N, P*P, L) of every patch under ``flow`` (N, 2, L), and its mean square."""
        residual = _sample_patches(i1, points, flow) - template
        residual = residual - residual.mean(1, keepdim=True)
        return residual, (residual * residual).mean(1)

    best = F.avg_pool2d(start, PATCH, stride=STRIDE).flatten(2)  # (N, 2, L): mean of the init over each patch
    best_cost = torch.full_like(hxx, float("inf"))
    for round in range(PROPAGATION + 1):
        if round:
            # spatial propagation: a patch takes a neighbour's vector where it explains the patch better
            grid = F.pad(best.view(n, 2, rows, cols), (1, 1, 1, 1), mode="replicate")
            for dy, dx in ((0, 1), (2, 1), (1, 0), (1, 2)):
                candidate = grid[..., dy : dy + rows, dx : dx + cols].flatten(2)
                cost = cost_of(candidate)[1]
                better = cost < best_cost
                best = torch.where(better.unsqueeze(1), candidate, best)
                best_cost = torch.where(better, cost, best_cost)
        origin, flow = best, best
        for _ in range(GN_STEPS):
            residual, cost = cost_of(flow)
            # a step that went further than the patch's own size found something else: never kept
            better = (cost < best_cost) & ((flow - origin).norm(dim=1) <= PATCH)
            best = torch.where(better.unsqueeze(1), flow, best)
            best_cost = torch.where(better, cost, best_cost)
            bx, by = (tx * residual).sum(1), (ty * residual).sum(1)
            flow = flow - torch.stack(((hyy * bx - hxy * by) / det, (hxx * by - hxy * bx) / det), 1)

    # densify: each pixel averages the vectors of its patches, weighted by 1 / max(1, |residual|)
    error = (_sample_patches(i1, points, best) - template).abs()
    weight = 1.0 / error.clamp(min=1.0)  # (N, P*P, L)
    size = (hp, wp)
    total = F.fold(weight, size, PATCH, stride=STRIDE)
    vectors = torch.cat((weight * best[:, 0:1], weight * best[:, 1:2]), 1)  # (N, 2*P*P, L)
    dense = F.fold(vectors, size, PATCH, stride=STRIDE) / total.clamp(min=1e-12)
    return dense[..., :h, :w]


def _neighbour_sum(value: torch.Tensor, right: torch.Tensor, left: torch.Tensor, down: torch.Tensor, up: torch.Tensor):
    """sum over the 4 neighbours q of w_pq value_q, with the weights to each neighbour (zero where
    there is none) and ``value`` (N, C, H, W)."""
    padded = F.pad(value, (1, 1, 1, 1))
    total = right * padded[..., 1:-1, 2:]
    total = total.addcmul_(left, padded[..., 1:-1, :-2])
    total = total.addcmul_(down, padded[..., 2:, 1:-1])
    return total.addcmul_(up, padded[..., :-2, 1:-1])


def variational_refine(image0: torch.Tensor, image1: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """``flow`` (N, 2, H, W) from image0 to image1 (N, 1, H, W grey levels) refined by minimizing
    robust brightness and gradient constancy plus robust smoothness, linearized around ``flow``.

    Fixed-point iterations recompute the robust weights; within each, red-black SOR sweeps solve
    the linear system for the increment. All pixels, both components and batch items at once.
    """
    n, _, h, w = image0.shape
    if h < 2 or w < 2:
        return flow
    warped = backward_warp(image1, flow)
    x0, y0 = _gradient(image0)
    x1, y1 = _gradient(warped)
    xx0, xy0 = _gradient(x0)
    _, yy0 = _gradient(y0)
    xx1, xy1 = _gradient(x1)
    _, yy1 = _gradient(y1)
    ix, iy, iz = 0.5 * (x0 + x1), 0.5 * (y0 + y1), warped - image0
    ixx, ixy, iyy = 0.5 * (xx0 + xx1), 0.5 * (xy0 + xy1), 0.5 * (yy0 + yy1)
    ixz, iyz = x1 - x0, y1 - y0
    zeta2, eps2 = ZETA**2, EPSILON**2
    norm_d = ix * ix + iy * iy + zeta2
    norm_x = ixx * ixx + ixy * ixy + zeta2
    norm_y = ixy * ixy + iyy * iyy + zeta2
    gd = torch.cat((ix, iy), 1)  # the data terms' gradients with respect to (du, dv)
    gx = torch.cat((ixx, ixy), 1)
    gy = torch.cat((ixy, iyy), 1)

    ys = torch.arange(h, device=flow.device).view(h, 1)
    xs = torch.arange(w, device=flow.device).view(1, w)
    red = ((ys + xs) % 2 == 0).view(1, 1, h, w)
    delta = torch.zeros_like(flow)
    for _ in range(VARIATIONAL_ITERS):
        # robust weights at the current estimate
        du, dv = delta[:, 0:1], delta[:, 1:2]
        sd = iz + ix * du + iy * dv
        wd = DELTA / torch.sqrt(sd * sd / norm_d + eps2) / norm_d
        sx, sy = ixz + ixx * du + ixy * dv, iyz + ixy * du + iyy * dv
        q = GAMMA / torch.sqrt(sx * sx / norm_x + sy * sy / norm_y + eps2)
        wx, wy = q / norm_x, q / norm_y
        diagonal = wd * gd * gd + wx * gx * gx + wy * gy * gy  # (a11, a22)
        a12 = wd * ix * iy + wx * ixx * ixy + wy * ixy * iyy
        rhs = -(wd * gd * iz + wx * gx * ixz + wy * gy * iyz)  # (b1, b2)
        fx, fy = _gradient(flow + delta)
        ws = ALPHA / torch.sqrt((fx * fx + fy * fy).sum(1, keepdim=True) + eps2)
        right = F.pad(0.5 * (ws[..., :, 1:] + ws[..., :, :-1]), (0, 1))
        down = F.pad(0.5 * (ws[..., 1:, :] + ws[..., :-1, :]), (0, 0, 0, 1))
        left, up = F.pad(right[..., :, :-1], (1, 0)), F.pad(down[..., :-1, :], (0, 0, 1, 0))
        weight_sum = right + left + down + up
        base = rhs - weight_sum * flow
        denominator = diagonal + weight_sum + 1e-9
        for _ in range(SOR_ITERS):
            for colour in (red, ~red):
                coupled = _neighbour_sum(flow + delta, right, left, down, up) - a12 * delta.flip(1)
                target = (base + coupled) / denominator
                delta = torch.where(colour, delta + OMEGA * (target - delta), delta)
    return flow + delta


def estimate_flow(image0: torch.Tensor, image1: torch.Tensor) -> torch.Tensor:
    """Flow (N, 2, H, W) from image0 to image1 (N, 3, H, W RGB in [0, 1]), coarse to fine."""
    n, _, h, w = image0.shape
    pyramid = [(_luma(image0), _luma(image1))]
    for _ in range(_levels(h, w)):
        a, b = pyramid[-1]
        pyramid.append((_blur_down(a), _blur_down(b)))
    flow = None
    for level in range(len(pyramid) - 1, min(FINEST, len(pyramid) - 1) - 1, -1):
        a, b = pyramid[level]
        size = tuple(a.shape[-2:])
        flow = torch.zeros(n, 2, *size, device=a.device, dtype=a.dtype) if flow is None else resize_flow(flow, size)
        flow = patch_search(a, b, flow)
        flow = variational_refine(a, b, flow)
    return resize_flow(flow, (h, w))


class TorchFlowEstimator:
    """Both flows of a batch of pairs by batched dense inverse search (``estimate_flow``): the
    two directions are stacked along N and computed as one batch. With ``large_motion`` the flows
    also get block-search vectors where they fail (``matching``)."""

    def __init__(self, large_motion: bool = False) -> None:
        self.large_motion = large_motion
        self.name = "torch"

    @torch.no_grad()
    def estimate(self, image0: torch.Tensor, image1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        check_shape(image0, "image0", channels=3)
        check_shape(image1, "image1", channels=3)
        dtype = torch.promote_types(image0.dtype, torch.float32)
        with torch.autocast(image0.device.type, enabled=False):
            a, b = image0.to(dtype), image1.to(dtype)
            flows = estimate_flow(torch.cat((a, b)), torch.cat((b, a)))
            flow_01, flow_10 = flows.chunk(2)
            if self.large_motion:
                flow_01, flow_10 = add_large_motion(a, b, flow_01, flow_10)
        return flow_01, flow_10


def build_torch(device: torch.device, *, dis_preset: str = "medium", weights: str | None = None) -> MotionModel:
    return MotionModel(TorchFlowEstimator())
