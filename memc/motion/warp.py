"""Backward warping: the one ``grid_sample`` wrapper of memc.

``backward_warp(image, flow)[x] = image(x + flow(x))``, bilinear, so
``backward_warp(image1, flow_01) ~= image0`` where frame 0 is visible in frame 1.
Pixel centres are at integer coordinates; a pixel coordinate ``x`` is normalized as
``2 x / (W - 1) - 1`` (``align_corners=True``) and samples outside the frame take the border
value (``padding_mode="border"``), so a frame edge smears rather than turning black.
``backward_warp_array`` is the same on H x W x C arrays with OpenCV's ``remap`` (whose pixel
centres are also at integer coordinates), the fast path for 8-bit frames on a CPU.
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
    pos = coords_grid(n, h, w, flow.device, flow.dtype) + flow
    gx = pos[:, 0] * (2.0 / max(w - 1, 1)) - 1.0
    gy = pos[:, 1] * (2.0 / max(h - 1, 1)) - 1.0
    grid = torch.stack((gx, gy), dim=-1)
    return F.grid_sample(image, grid.to(image.dtype), mode="bilinear", padding_mode="border", align_corners=True)


def backward_warp_array(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Sample ``image`` (H x W x C array) at ``x + flow(x)``; flow H x W x 2 float32 pixels, channel 0 = x."""
    height, width = flow.shape[:2]
    grid = np.indices((height, width), dtype=np.float32)[::-1].transpose(1, 2, 0)  # x, y per pixel
    return cv2.remap(image, grid + flow, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
