"""Colour conventions shared by ``decode`` and ``encode``: which YUV matrix and range a stream uses.

YUV <-> RGB uses the source's own matrix (BT.601/709/2020) and range (limited/full), passed to
swscale explicitly rather than trusting PyAV defaults. Untagged YUV is BT.601, FFmpeg's default;
both directions use the same rule, so an untagged source round-trips without a shift.
"""

from __future__ import annotations

import av

# FFmpeg AVColorSpace (stream/frame tag) -> swscale SWS_CS_* matrix. Values not listed
# (0 RGB, 2 unspecified, 8 YCgCo, ...) fall back to BT.601, as FFmpeg itself does.
_SWS_MATRIX = {1: 1, 4: 4, 5: 5, 6: 5, 7: 7, 9: 9, 10: 9}
_SWS_BT601 = 5
RANGE_LIMITED = 1  # AVCOL_RANGE_MPEG
RANGE_FULL = 2  # AVCOL_RANGE_JPEG


def sws_matrix(colorspace: int) -> int:
    """The swscale matrix id for an FFmpeg colorspace tag (BT.601 when untagged)."""
    return _SWS_MATRIX.get(int(colorspace), _SWS_BT601)


def yuv_range(color_range: int, pix_fmt: str) -> int:
    """Limited or full range for a YUV format: the tag if present, else full only for yuvj*."""
    if color_range in (RANGE_LIMITED, RANGE_FULL):
        return int(color_range)
    return RANGE_FULL if pix_fmt.startswith("yuvj") else RANGE_LIMITED


def is_yuv(pix_fmt: str) -> bool:
    """True for YUV-family formats (the ones a colour matrix applies to)."""
    return pix_fmt.startswith(("yuv", "nv", "p0", "p2", "p4", "y2", "uyv", "yv", "yuyv"))


def bit_depth(pix_fmt: str) -> int:
    """Bits per sample of a pixel format, from its largest component."""
    try:
        components = av.VideoFormat(pix_fmt).components
        return max(c.bits for c in components) if components else 8
    except (ValueError, TypeError):
        return 8
