"""Content that is not motion: a static logo and subtitles over a panning picture, and fades."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from synthetic import Scene, psnr, texture

from memc.motion import still
from memc.motion.interpolate import Interpolator

LOGO = (slice(16, 40), slice(20, 100))
SUBTITLES = (slice(150, 162), slice(60, 260))


def with_overlays(frame: np.ndarray) -> np.ndarray:
    """A white channel logo with dark strokes and a yellow subtitle line, fixed on screen."""
    out = frame.copy()
    out[LOGO] = (235, 235, 235)
    out[22:34, 26:94:8] = (20, 20, 20)
    out[SUBTITLES] = (250, 250, 40)
    return out


@pytest.fixture(scope="module")
def panning():
    scene = Scene(height=180, width=320, bg_velocity=(9.0, 2.0), fg_velocity=(-6.0, 2.5), size=40)
    return [with_overlays(scene.frame_u8(t)) for t in (0, 0.5, 1)]


@pytest.mark.parametrize("flow", ["dis", "dis-bm"])
def test_overlays_stay_in_place(panning, flow):
    a, truth, b = panning
    middle = Interpolator("cpu", flow).interpolate(a, b, 0.5)
    for region in (LOGO, SUBTITLES):
        assert np.abs(middle[region].astype(int) - truth[region].astype(int)).max() <= 1  # measured 0
    assert psnr(middle, truth, 8) > 37  # measured 39.6 (dis), 39.9 (dis-bm)


def test_without_the_still_stage_the_logo_is_dragged(panning, monkeypatch):
    """The test above measures something: the flow alone drags the logo (measured 215 levels, 27 % of it)."""
    monkeypatch.setattr(still, "still_mask", lambda a, b, *flows: torch.zeros_like(a[:, :1]))
    a, truth, b = panning
    middle = Interpolator("cpu", "dis").interpolate(a, b, 0.5)
    assert np.abs(middle[LOGO].astype(int) - truth[LOGO].astype(int)).max() > 30


def test_still_mask_ignores_specks_and_keeps_areas():
    a = torch.rand(1, 3, 40, 40, generator=torch.Generator().manual_seed(0))
    b = torch.rand(1, 3, 40, 40, generator=torch.Generator().manual_seed(1))
    b[..., 10:30, 5:25] = a[..., 10:30, 5:25]  # a still 20 x 20 area
    b[..., 2, 35] = a[..., 2, 35]  # a pixel that matches by chance
    mask = still.still_mask(a, b)[0, 0]
    assert mask[10:30, 5:25].min() == 1 and mask.sum() == 400


def test_cross_fade_is_a_cross_fade():
    """A dissolve between two stills: each in-between frame matches the linear cross-fade."""
    first, second = texture(180, 320, 5) * 255, texture(180, 320, 6) * 255

    def fade(k: float, n: int = 8) -> np.ndarray:
        return ((1 - k / n) * first + (k / n) * second).round().astype(np.uint8)

    interpolator = Interpolator("cpu", "dis-bm")
    scores = [psnr(interpolator.interpolate(fade(k), fade(k + 1), 0.5), fade(k + 0.5), 0) for k in range(8)]
    assert min(scores) > 45, scores  # measured 52.7-54.8 dB: rounding, not smearing
