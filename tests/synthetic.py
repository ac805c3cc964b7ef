"""Synthetic scenes with known motion: a textured background translating under a textured
foreground square that moves differently, so occlusions and disocclusions exist and the true
frame at any t can be rendered exactly the same way as the inputs."""

from __future__ import annotations

import math

import cv2
import numpy as np

from memc.hard_motion import procedural_texture


def texture(height: int, width: int, seed: int = 0, blur: float = 1.5) -> np.ndarray:
    """Random RGB texture in [0, 1] (float32, H x W x 3) with detail at every scale, like a photo
    (amplitude ~ 1/frequency), and no detail finer than ``blur`` so sub-pixel sampling is exact."""
    return procedural_texture(height, width, np.random.default_rng(seed), blur)


class Scene:
    """Background moving at ``bg_velocity`` px/frame, a square of side ``size`` at ``fg_velocity``."""

    def __init__(self, height=120, width=160, bg_velocity=(3.5, 1.25), fg_velocity=(-6.0, 2.5), size=40, seed=0):
        self.h, self.w = height, width
        self.bg_v, self.fg_v, self.size = bg_velocity, fg_velocity, size
        self.bg = texture(height + 200, width + 200, seed)
        self.fg = texture(size + 40, size + 40, seed + 1, blur=1.5)

    def render(self, t: float) -> np.ndarray:
        """Frame at time t (frames are one unit apart), float32 H x W x 3 in [0, 1]."""
        shift = np.float32([[1, 0, 100 - self.bg_v[0] * t], [0, 1, 100 - self.bg_v[1] * t]])
        img = cv2.warpAffine(
            self.bg,
            shift,
            (self.w, self.h),
            flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REFLECT,
        )
        # foreground square: top-left corner at (x0, y0) + v * t, sampled sub-pixel with coverage AA
        x0 = self.w * 0.5 - self.size / 2 + self.fg_v[0] * t - self.fg_v[0]
        y0 = self.h * 0.5 - self.size / 2 + self.fg_v[1] * t - self.fg_v[1]
        fg_shift = np.float32([[1, 0, 20 - x0], [0, 1, 20 - y0]])
        fg = cv2.warpAffine(
            self.fg,
            fg_shift,
            (self.w, self.h),
            flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REFLECT,
        )
        xs = np.arange(self.w, dtype=np.float32) + 0.5
        ys = np.arange(self.h, dtype=np.float32) + 0.5
        cover_x = np.clip(np.minimum(xs + 0.5 - x0, x0 + self.size - (xs - 0.5)), 0, 1)
        cover_y = np.clip(np.minimum(ys + 0.5 - y0, y0 + self.size - (ys - 0.5)), 0, 1)
        alpha = (cover_y[:, None] * cover_x[None, :])[..., None]
        return np.clip(alpha * fg + (1 - alpha) * img, 0, 1)

    def frame_u8(self, t: float) -> np.ndarray:
        return (self.render(t) * 255).round().astype(np.uint8)


def psnr(a: np.ndarray, b: np.ndarray, border: int = 0) -> float:
    """PSNR in dB of two uint8 images, ignoring ``border`` pixels at each edge (edges enter from outside)."""
    if border:
        a = a[border:-border, border:-border]
        b = b[border:-border, border:-border]
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)
