"""Conversions between decoded pictures and tensors, and padding to a network stride.

Convention (everywhere in memc): images are ``(N, 3, H, W)`` float RGB in [0, 1], gamma-encoded
as decoded; flow is ``(N, 2, H, W)`` in pixels, channel 0 = x (right), channel 1 = y (down);
masks are ``(N, 1, H, W)`` in [0, 1]. uint8/uint16 <-> float happens only here (round, never truncate).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def _scale(dtype: np.dtype) -> float:
    if dtype == np.uint8:
        return 255.0
    if dtype == np.uint16:
        return 65535.0
    raise ValueError(f"image dtype must be uint8 or uint16, got {dtype}")


def to_tensor(
    image: np.ndarray, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """H x W x 3 uint8/uint16 RGB -> (1, 3, H, W) float in [0, 1].

    To CUDA the samples travel as they are (1 or 2 bytes, through pinned memory, without blocking)
    and become floats on the device; the CPU path is unchanged."""
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be H x W x 3, got shape {image.shape}")
    scale = _scale(image.dtype)
    device = torch.device(device)
    if device.type == "cuda":
        return (upload(image, device).permute(2, 0, 1).unsqueeze(0).to(dtype) / scale).contiguous()
    tensor = torch.from_numpy(np.ascontiguousarray(image).astype(np.float32 if scale > 255 else np.uint8, copy=False))
    tensor = tensor.to(device=device, non_blocking=True).permute(2, 0, 1).unsqueeze(0)
    return (tensor.to(dtype) / scale).contiguous()


def upload(image: np.ndarray, device: torch.device) -> torch.Tensor:
    """uint8/uint16 array -> the same samples on ``device`` (uint8, or int32 for uint16): one copy
    into pinned memory, then a non-blocking one to the device, ordered on its current stream."""
    array = np.ascontiguousarray(image)
    words = array.dtype == np.uint16
    host = torch.from_numpy(array.view(np.int16) if words else array)  # torch has no uint16 arithmetic
    cuda = device.type == "cuda"
    if cuda:
        host = host.pin_memory()  # the caching host allocator keeps it until the copy is done
    tensor = host.to(device, non_blocking=cuda)
    return tensor.to(torch.int32) & 0xFFFF if words else tensor


def to_image(tensor: torch.Tensor, dtype: type = np.uint8) -> np.ndarray:
    """(1, 3, H, W) float in [0, 1] -> H x W x 3 uint8/uint16, rounded."""
    check_shape(tensor, "tensor", channels=3)
    scale = _scale(np.dtype(dtype))
    out = (tensor[0].float().clamp(0, 1) * scale).round().permute(1, 2, 0)
    return out.to(torch.int32 if scale > 255 else torch.uint8).cpu().numpy().astype(dtype, copy=False)


def luma(image: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) RGB -> (N, 1, H, W) luma with BT.601 weights, in the image's scale: what the flow
    estimators match on (they need contrast, not a colour-exact Y)."""
    return 0.299 * image[:, 0:1] + 0.587 * image[:, 1:2] + 0.114 * image[:, 2:3]


def check_shape(tensor: torch.Tensor, name: str, channels: int | None = None) -> None:
    """Fail early with the argument's name and its actual shape."""
    if tensor.ndim != 4 or (channels is not None and tensor.shape[1] != channels):
        want = f"(N, {channels}, H, W)" if channels is not None else "(N, C, H, W)"
        raise ValueError(f"{name} must be {want}, got {tuple(tensor.shape)}")


def resize_flow(flow: torch.Tensor, size: tuple[int, int], rows: tuple[int, int] | None = None) -> torch.Tensor:
    """Resize a flow field to (H, W), scaling x by the width ratio and y by the height ratio; with
    ``rows`` = (top, bottom) only those rows of the result (``upsample_rows``)."""
    check_shape(flow, "flow", channels=2)
    h, w = flow.shape[-2:]
    out = upsample_rows(flow, size, rows)
    if (h, w) == tuple(size):
        return out
    scale = torch.tensor([size[1] / w, size[0] / h], device=flow.device, dtype=flow.dtype).view(1, 2, 1, 1)
    return out * scale


def upsample_rows(x: torch.Tensor, size: tuple[int, int], rows: tuple[int, int] | None = None) -> torch.Tensor:
    """``F.interpolate(x, size, mode="bilinear", align_corners=False)``, or only its rows
    [top, bottom) with ``rows``: a frame can be made band by band without any full-size field.
    The rows are weighed by hand, so a band equals interpolate's rows within float rounding
    (~1e-5 of the values when upsampling, not bit for bit: interpolate's own kernel rounds its
    coordinates and sums its products in an order that depends on the build)."""
    h, w = x.shape[-2:]
    if rows is None:
        return x if (h, w) == tuple(size) else F.interpolate(x, size=size, mode="bilinear", align_corners=False)
    top, bottom = rows
    if h == size[0]:
        band = x[..., top:bottom, :]
    else:  # the rows by hand, as interpolate computes them: source row (y + 0.5) h / H - 0.5, clamped at 0
        y = ((torch.arange(top, bottom, device=x.device, dtype=torch.float32) + 0.5) * (h / size[0]) - 0.5).clamp_min(0)
        y0 = y.long().clamp_max(h - 1)
        y1 = (y0 + 1).clamp_max(h - 1)
        weight = (y - y0).to(x.dtype).view(-1, 1)
        band = torch.lerp(x[..., y0, :], x[..., y1, :], weight)
    if w == size[1]:
        return band
    # columns by interpolate itself: rows in = rows out keeps each row exactly
    return F.interpolate(band, size=(bottom - top, size[1]), mode="bilinear", align_corners=False)


class Padder:
    """Replicate-pads images to a multiple of ``stride`` and crops results back."""

    def __init__(self, height: int, width: int, stride: int = 1) -> None:
        self.height, self.width = height, width
        self.pad_h = (-height) % stride
        self.pad_w = (-width) % stride

    def pad(self, tensor: torch.Tensor) -> torch.Tensor:
        if not (self.pad_h or self.pad_w):
            return tensor
        return F.pad(tensor, (0, self.pad_w, 0, self.pad_h), mode="replicate")

    def unpad(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor[..., : self.height, : self.width]
