"""Backward warping: the one ``grid_sample`` wrapper of memc.

``backward_warp(image, flow)[x] = image(x + flow(x))``, bilinear, so
``backward_warp(image1, flow_01) ~= image0`` where frame 0 is visible in frame 1.
Pixel centres are at integer coordinates; a pixel coordinate ``x`` is normalized as
``2 x / (W - 1) - 1`` (``align_corners=True``) and samples outside the frame take the border
value (``padding_mode="border"``), so a frame edge smears rather than turning black.
"""

from __future__ import annotations

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
