"""Still images for ``memc pair``: RGB uint8 (or uint16 for 16-bit PNG/TIFF) arrays via OpenCV."""

from __future__ import annotations

import os

import cv2
import numpy as np

from ..errors import EncodeError, InputError
from ..outputs import atomic_output


def read_image(path: str) -> np.ndarray:
    """H x W x 3 RGB, uint8 or uint16; grey and alpha are converted."""
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise InputError(f"not an image OpenCV can read: {path}")
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    elif image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    else:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    if image.dtype not in (np.uint8, np.uint16):
        raise InputError(f"unsupported image depth {image.dtype} in {path} (8- or 16-bit only)")
    return image


def write_image(path: str | os.PathLike, image: np.ndarray) -> None:
    """Write an RGB array; it appears under ``path`` only when complete (``outputs.atomic_output``)."""
    with atomic_output(path) as tmp:
        try:
            ok = cv2.imwrite(str(tmp), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        except cv2.error as exc:
            raise EncodeError(f"cannot write {path}: {exc}") from exc
        if not ok:
            raise EncodeError(f"cannot write {path} (unknown image extension or unwritable folder)")
