"""RGB -> YUV 4:2:0 planes in torch, on the frame's own device: on CUDA the encoder is handed
planes (half the bytes of RGB, and no swscale pass on the CPU) instead of an RGB array.

It does what ``encode.VideoSink.write`` has swscale do on the CPU, to within one code value: the
frame is first rounded to the source's depth, as ``tensors.to_image`` would; the source's matrix
and range apply; chroma is the mean of 2 columns (centred) filtered [1, 3, 3, 1] / 8 over 4 rows,
edges replicated (swscale's bilinear 2:1); 16-bit RGB is read as swscale reads it, as v / 65280.
Device-agnostic: the CPU tests check it against PyAV, CUDA runs the same code.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

# swscale SWS_CS_* matrix id (``colour.sws_matrix``) -> (Kr, Kb). Others are BT.601, as in swscale.
_LUMA = {1: (0.2126, 0.0722), 4: (0.30, 0.11), 5: (0.299, 0.114), 7: (0.212, 0.087), 9: (0.2627, 0.0593)}


@dataclass(frozen=True)
class _Layout:
    bits: int  # bits per sample
    interleaved: bool  # chroma as one UV plane (NV12, P010) instead of two
    shift: int  # samples stored in the high bits (P010)


_LAYOUTS = {
    "yuv420p": _Layout(8, False, 0),
    "yuvj420p": _Layout(8, False, 0),
    "yuv420p10le": _Layout(10, False, 0),
    "nv12": _Layout(8, True, 0),
    "p010le": _Layout(10, True, 6),
}


def supports(pix_fmt: str) -> bool:
    """True for the encoder formats converted here (4:2:0, 8 and 10 bits); others go through swscale."""
    return pix_fmt in _LAYOUTS


def rgb_to_planes(
    image: torch.Tensor, pix_fmt: str, matrix: int, full_range: bool, source_bits: int = 8
) -> list[torch.Tensor]:
    """(1, 3, H, W) RGB in [0, 1] (H, W even) -> the planes of ``pix_fmt``, on the image's device:
    (H, W) luma and (H/2, W/2) U and V (or one (H/2, W) UV plane), uint8 for 8 bits and int16
    holding the 16-bit words for more. ``source_bits`` (8 or 16): the RGB depth the CPU path
    would round the frame to first."""
    layout = _LAYOUTS[pix_fmt]
    h, w = image.shape[-2:]
    if image.ndim != 4 or image.shape[:2] != (1, 3) or h % 2 or w % 2:
        raise ValueError(f"image must be (1, 3, H, W) with H and W even, got {tuple(image.shape)}")
    kr, kb = _LUMA.get(int(matrix), _LUMA[5])
    scale = 255.0 if source_bits <= 8 else 65535.0
    rgb = (image.float().clamp(0, 1) * scale).round() / (255.0 if source_bits <= 8 else 65280.0)
    r, g, b = rgb[:, 0:1], rgb[:, 1:2], rgb[:, 2:3]
    y = kr * r + (1 - kr - kb) * g + kb * b
    u = (b - y) / (2 * (1 - kb))
    v = (r - y) / (2 * (1 - kr))
    uv = _subsample(torch.cat([u, v], dim=1))
    step = float(1 << (layout.bits - 8))
    top = float((1 << layout.bits) - 1)
    if full_range:  # full scale is 2^bits - 1 (1023, not 4 x 255, at 10 bits), chroma's too
        y, uv = y * top, (uv + 0.5) * top
    else:
        y, uv = (16.0 + 219.0 * y) * step, (128.0 + 224.0 * uv) * step
    y, uv = y.round().clamp(0, top), uv.round().clamp(0, top)
    if layout.interleaved:
        chroma = [uv[0].permute(1, 2, 0).reshape(h // 2, w)]
    else:
        chroma = [uv[0, 0], uv[0, 1]]
    planes = [y[0, 0], *chroma]
    if layout.bits == 8:
        return [p.to(torch.uint8) for p in planes]
    # int16 carries the 16-bit words (P010's 10 bits << 6 wrap to negative values, same bits)
    return [(p.to(torch.int32) << layout.shift).to(torch.int16) for p in planes]


def _subsample(chroma: torch.Tensor) -> torch.Tensor:
    """(1, C, H, W) -> (1, C, H/2, W/2): mean of each column pair, then [1, 3, 3, 1] / 8 over rows."""
    pairs = 0.5 * (chroma[..., 0::2] + chroma[..., 1::2])
    padded = F.pad(pairs, (0, 0, 1, 1), mode="replicate")
    return (padded[..., 0:-2:2, :] + 3 * padded[..., 1:-1:2, :] + 3 * padded[..., 2::2, :] + padded[..., 3::2, :]) / 8


class HostPlanes:
    """Planes on their way to the host: one copy into pinned memory, waited for only when read
    (in the encoder's thread), so the conversion loop never blocks on the download."""

    def __init__(self, planes: list[torch.Tensor], pix_fmt: str) -> None:
        self.pix_fmt = pix_fmt
        self.shapes = [tuple(p.shape) for p in planes]
        flat = torch.cat([p.reshape(-1) for p in planes])
        cuda = flat.device.type == "cuda"
        self._host = torch.empty(flat.shape, dtype=flat.dtype, pin_memory=cuda)
        self._host.copy_(flat, non_blocking=cuda)
        self._event = None
        if cuda:
            self._event = torch.cuda.Event()
            self._event.record(torch.cuda.current_stream(flat.device))

    def arrays(self) -> list[np.ndarray]:
        """The planes as numpy arrays (uint8, or uint16 for more than 8 bits), once the copy is done."""
        if self._event is not None:
            self._event.synchronize()
        data = self._host.numpy()
        if data.dtype == np.int16:
            data = data.view(np.uint16)
        out, start = [], 0
        for shape in self.shapes:
            size = shape[0] * shape[1]
            out.append(data[start : start + size].reshape(shape))
            start += size
        return out
