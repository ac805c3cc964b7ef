"""Backward warping: the one ``grid_sample`` wrapper of memc.

``backward_warp(image, flow)[x] = image(x + flow(x))``, bilinear, so
``backward_warp(image1, flow_01) ~= image0`` where frame 0 is visible in frame 1.
Pixel centres are at integer coordinates; a pixel coordinate ``x`` is normalized as
``2 x / (W - 1) - 1`` (``align_corners=True``) and samples outside the frame take the border
value (``padding_mode="border"``), so a frame edge smears rather than turning black.
``warp_rows`` is the same with OpenCV's ``remap`` (whose pixel centres are also at integer
coordinates) on float32 planes, a band of rows at a time: the fast path for 8-bit frames on a CPU.

On a CPU, float32 tensors that need no gradient are warped by ``remap`` too, one plane at a time
with separate x and y maps: the same samples (within float rounding) at 1.5-3x the speed of
``grid_sample``, and warps were a large share of a CPU conversion.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ..tensors import check_shape


def coords_grid(n: int, h: int, w: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Pixel coordinates (N, 2, H, W): channel 0 = x, channel 1 = y."""
    ys, xs = torch.meshgrid(
        torch.arange(h, device=device, dtype=dtype), torch.arange(w, device=device, dtype=dtype), indexing="ij"
    )
    return torch.stack((xs, ys)).unsqueeze(0).expand(n, 2, h, w)


def backward_warp(image: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Sample ``image`` (N, C, H, W) at ``x + flow(x)``; flow (N, 2, H, W) in pixels."""
    check_shape(image, "image")
    check_shape(flow, "flow", channels=2)
    n, _, h, w = flow.shape
    if _remap_applies(image, flow):
        return _remap_planes(image, flow)
    pos = coords_grid(n, h, w, flow.device, flow.dtype) + flow
    gx = pos[:, 0] * (2.0 / max(w - 1, 1)) - 1.0
    gy = pos[:, 1] * (2.0 / max(h - 1, 1)) - 1.0
    grid = torch.stack((gx, gy), dim=-1)
    return F.grid_sample(image, grid.to(image.dtype), mode="bilinear", padding_mode="border", align_corners=True)


def _remap_applies(image: torch.Tensor, flow: torch.Tensor) -> bool:
    return (
        image.device.type == "cpu"
        and flow.device.type == "cpu"
        and image.dtype == torch.float32
        and flow.dtype == torch.float32
        and image.shape[0] == flow.shape[0]
        and image.shape[-2:] == flow.shape[-2:]
        and not (torch.is_grad_enabled() and (image.requires_grad or flow.requires_grad))
    )


def _remap_planes(image: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """``backward_warp`` by OpenCV on a CPU: (N, C, H, W) float32, no gradient."""
    out = torch.empty_like(image, memory_format=torch.contiguous_format)
    image = image.contiguous()
    for i in range(image.shape[0]):  # each item whole: its rows from 0
        warp_rows(list(image[i].numpy()), flow[i], 0, out[i].numpy())
    return out


def sample_at(image: torch.Tensor, batch: torch.Tensor, ys: torch.Tensor, xs: torch.Tensor) -> torch.Tensor:
    """Bilinear samples (*S, C) of ``image`` (N, C, H, W) at a few float points: ``ys``, ``xs`` of
    shape S = (K, ...) on items ``batch`` (K,), border-replicated like ``backward_warp``. For sparse
    points, where warping the whole frame would be waste."""
    h, w = image.shape[-2:]
    x0, y0 = xs.floor(), ys.floor()
    fx, fy = (xs - x0)[..., None], (ys - y0)[..., None]
    x0, y0 = x0.long(), y0.long()
    b = batch.view(-1, *([1] * (ys.dim() - 1)))

    def at(yy: torch.Tensor, xx: torch.Tensor) -> torch.Tensor:
        return image[b, :, yy.clamp(0, h - 1), xx.clamp(0, w - 1)]  # (*S, C)

    top = at(y0, x0) * (1 - fx) + at(y0, x0 + 1) * fx
    bottom = at(y0 + 1, x0) * (1 - fx) + at(y0 + 1, x0 + 1) * fx
    return top * (1 - fy) + bottom * fy


def warp_rows(planes: list[np.ndarray], flow: torch.Tensor, top: int, out: np.ndarray) -> np.ndarray:
    """Rows ``top`` .. ``top + R`` of ``backward_warp`` on a CPU: each H x W float32 plane sampled
    at ``x + flow(x)``, flow (2, R, W) pixels of those rows, into ``out`` (C, R, W). A frame warped
    band by band never holds a full-size warp or map."""
    map_x, map_y = _sample_maps(flow.float(), top)
    for plane, dst in zip(planes, out):
        cv2.remap(plane, map_x, map_y, cv2.INTER_LINEAR, dst=dst, borderMode=cv2.BORDER_REPLICATE)
    return out


POINT_ROW = 4096  # points per row of ``sample_planes``' maps


def sample_planes(planes: list[np.ndarray], map_x: np.ndarray, map_y: np.ndarray) -> np.ndarray:
    """Bilinear samples (K, C) of C H x W float32 planes at K points (float32 ``map_x``, ``map_y``),
    exactly as ``warp_rows`` samples them. ``remap`` takes maps narrower than 32767 columns, so the
    points go in rows of POINT_ROW."""
    k = map_x.shape[0]
    if k == 0:
        return np.zeros((0, len(planes)), np.float32)
    rows = -(-k // POINT_ROW)
    pad = rows * POINT_ROW - k
    maps = [np.pad(m, (0, pad)).reshape(rows, POINT_ROW) for m in (map_x, map_y)]
    samples = [cv2.remap(plane, *maps, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE) for plane in planes]
    return np.stack([sample.reshape(-1)[:k] for sample in samples], axis=1)


def _sample_maps(flow: torch.Tensor, top: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``remap``'s separate x and y maps (H x W float32) of a (2, H, W) float32 flow on the CPU,
    whose first row is row ``top`` of the frame: with separate maps (not one H x W x 2 map) remap
    samples exactly, and no pixel grid is built."""
    h, w = flow.shape[-2:]
    xs = torch.arange(w, dtype=flow.dtype)
    ys = torch.arange(top, top + h, dtype=flow.dtype)[:, None]
    return (flow[0] + xs).numpy(), (flow[1] + ys).numpy()
