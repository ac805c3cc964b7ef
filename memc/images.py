"""Still images for ``memc pair``: RGB uint8 (or uint16 for 16-bit PNG/TIFF) arrays via OpenCV."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from .errors import EncodeError, InputError


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


def write_image(path: str, image: np.ndarray) -> None:
    """Write an RGB array atomically (temporary name, then rename)."""
    target = Path(path)
    tmp = target.with_name(f".{target.stem}.memc-tmp{target.suffix}")
    try:
        ok = cv2.imwrite(str(tmp), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    except cv2.error as exc:
        raise EncodeError(f"cannot write {path}: {exc}") from exc
    if not ok:
        tmp.unlink(missing_ok=True)
        raise EncodeError(f"cannot write {path} (unknown image extension or unwritable folder)")
    tmp.replace(target)
