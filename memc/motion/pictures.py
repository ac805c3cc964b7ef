"""Pictures of what the motion stage saw, for ``--debug-dir``: when a result looks wrong, the flows,
masks and a contact sheet say whether the motion, the occlusion handling or the blend is to blame.

Per interpolated frame ``NAME``:

* ``NAME_flow01.png``, ``NAME_flow10.png``: the pair's flows; ``NAME_flowt0.png``, ``NAME_flowt1.png``:
  the flows projected to t. Colour-coded on the Middlebury wheel (hue = direction, saturation =
  speed, white = still), all four on one scale, with the wheel and the scale drawn in a corner;
* ``NAME_visibility0.png``, ``NAME_visibility1.png``: how much each frame is trusted at t (white =
  visible, black = occluded or left behind); ``NAME_confidence0.png``, ``NAME_confidence1.png``:
  forward-backward consistency at each frame's own pixels; ``NAME_still.png``: the still pixels;
* ``NAME_sheet.png``: the inputs, the output and all of the above side by side, labelled.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import cv2
import numpy as np
import torch

from ..io.images import write_image
from . import occlusion
from .interpolate import Interpolator, PairFlows, Rendered

# Middlebury colour wheel (Baker et al., "A Database and Evaluation Methodology for Optical Flow"):
# hue steps between red, yellow, green, cyan, blue and magenta, in these many steps each.
_WHEEL_STEPS = (("RY", 15), ("YG", 6), ("GC", 4), ("CB", 11), ("BM", 13), ("MR", 6))


def _wheel() -> np.ndarray:
    """The wheel's colours (K, 3) in [0, 1], RGB, going round from red."""
    ramps = []
    for name, steps in _WHEEL_STEPS:
        rise = np.arange(steps) / steps
        start = {"R": (1, 0, 0), "Y": (1, 1, 0), "G": (0, 1, 0), "C": (0, 1, 1), "B": (0, 0, 1), "M": (1, 0, 1)}
        a, b = np.array(start[name[0]], float), np.array(start[name[1]], float)
        ramps.append(a + (b - a) * rise[:, None])
    return np.concatenate(ramps)


def flow_colour(flow: np.ndarray, scale: float) -> np.ndarray:
    """(2, H, W) flow in pixels -> H x W x 3 uint8 RGB; ``scale`` px is full saturation."""
    wheel = _wheel()
    u, v = flow[0], flow[1]
    radius = np.hypot(u, v) / max(scale, 1e-6)
    angle = np.arctan2(-v, -u) / math.pi  # (-1, 1]
    position = (angle + 1) / 2 * (len(wheel) - 1)
    k0 = np.floor(position).astype(int)
    k1 = (k0 + 1) % len(wheel)
    f = (position - k0)[..., None]
    colour = (1 - f) * wheel[k0] + f * wheel[k1]
    inside = radius[..., None] <= 1
    colour = np.where(inside, 1 - radius[..., None] * (1 - colour), colour * 0.75)  # beyond the scale: darker
    return (colour * 255).round().astype(np.uint8)


def _legend(image: np.ndarray, scale: float) -> np.ndarray:
    """The wheel and its scale in the top-left corner of a flow picture."""
    size = max(24, min(image.shape[:2]) // 5)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    centre = (size - 1) / 2
    disc = flow_colour(np.stack(((xx - centre) / centre * scale, (yy - centre) / centre * scale)), scale)
    inside = np.hypot(xx - centre, yy - centre) <= centre
    out = image.copy()
    corner = out[:size, :size]
    corner[inside] = disc[inside]
    text = f"{scale:.3g} px"
    font = _font_scale(image)
    at = (2, size + round(14 * font / 0.42))
    # dark on a light halo: flow pictures are mostly white (still)
    cv2.putText(out, text, at, cv2.FONT_HERSHEY_SIMPLEX, font, (255, 255, 255), 3 * max(1, round(font)), cv2.LINE_AA)
    cv2.putText(out, text, at, cv2.FONT_HERSHEY_SIMPLEX, font, (0, 0, 0), max(1, round(font)), cv2.LINE_AA)
    return out


def _grey(mask: torch.Tensor) -> np.ndarray:
    plane = (mask[0, 0].float().clamp(0, 1) * 255).round().byte().cpu().numpy()
    return np.repeat(plane[..., None], 3, axis=2)


def _rgb(image: torch.Tensor) -> np.ndarray:
    return (image[0].float().clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()


def _font_scale(image: np.ndarray) -> float:
    """Text that stays readable when a sheet of large frames is viewed shrunk to a screen's width."""
    return max(0.42, image.shape[1] / 640)


def _labelled(label: str, image: np.ndarray) -> np.ndarray:
    scale = _font_scale(image)
    bar = np.full((round(18 * scale / 0.42), image.shape[1], 3), 32, np.uint8)
    thickness = max(1, round(scale))
    cv2.putText(
        bar,
        label,
        (4, round(13 * scale / 0.42)),
        cv2.FONT_HERSHEY_SIMPLEX,
        scale,
        (255, 255, 255),
        thickness,
        cv2.LINE_AA,
    )
    return np.concatenate((bar, image))


def contact_sheet(tiles: list[tuple[str, np.ndarray]], columns: int = 4) -> np.ndarray:
    """Labelled tiles in a grid, 4 px apart, each at the first tile's size (motion pictures are at
    the flow's size, frames at the video's)."""
    height, width = tiles[0][1].shape[:2]
    tiles = [
        (label, cv2.resize(image, (width, height)) if image.shape[:2] != (height, width) else image)
        for label, image in tiles
    ]
    tiles = [_labelled(label, image) for label, image in tiles]
    h, w = tiles[0].shape[:2]
    rows = -(-len(tiles) // columns)
    sheet = np.full((rows * (h + 4) + 4, columns * (w + 4) + 4, 3), 16, np.uint8)
    for k, tile in enumerate(tiles):
        y, x = 4 + (k // columns) * (h + 4), 4 + (k % columns) * (w + 4)
        sheet[y : y + h, x : x + w] = tile
    return sheet


def pictures(
    image0: torch.Tensor, image1: torch.Tensor, flows: PairFlows, rendered: Rendered, t: float
) -> dict[str, np.ndarray]:
    """Every picture of one interpolated frame (first item of the batch), by file suffix."""
    projection, synthesis = rendered.projection, rendered.synthesis
    flow_t0, flow_t1 = projection.warp_flows()  # what the frames were warped with
    vectors = {"flow01": flows.flow_01, "flow10": flows.flow_10, "flowt0": flow_t0, "flowt1": flow_t1}
    scale = max(1.0, max(float(occlusion.magnitude(v[:1]).amax()) for v in vectors.values()))
    out = {name: _legend(flow_colour(v[0].float().cpu().numpy(), scale), scale) for name, v in vectors.items()}
    out["visibility0"] = _grey(synthesis.visibility0)
    out["visibility1"] = _grey(synthesis.visibility1)
    out["confidence0"] = _grey(occlusion.confidence(flows.error_0))
    out["confidence1"] = _grey(occlusion.confidence(flows.error_1))
    out["still"] = _grey(flows.still if flows.still is not None else torch.zeros_like(flows.error_0))
    tiles = [
        ("frame 0", _rgb(image0)),
        (f"output t={t:.3g}", _rgb(rendered.image)),
        ("frame 1", _rgb(image1)),
        ("blend weight of frame 0", _grey(synthesis.mask0)),
        ("flow 0->1", out["flow01"]),
        ("flow t->0", out["flowt0"]),
        ("flow t->1", out["flowt1"]),
        ("flow 1->0", out["flow10"]),
        ("visibility of 0 at t", out["visibility0"]),
        ("visibility of 1 at t", out["visibility1"]),
        ("consistency at 0", out["confidence0"]),
        ("still pixels", out["still"]),
    ]
    out["sheet"] = contact_sheet(tiles)
    return out


def write_pictures(
    folder: str | os.PathLike,
    name: str,
    image0: torch.Tensor,
    image1: torch.Tensor,
    flows: PairFlows,
    rendered: Rendered,
    t: float,
) -> list[Path]:
    """Write ``pictures`` as ``folder/NAME_SUFFIX.png``; returns the paths."""
    folder = Path(folder)
    written = []
    for suffix, picture in pictures(image0, image1, flows, rendered, t).items():
        path = folder / f"{name}_{suffix}.png"
        write_image(path, picture)
        written.append(path)
    return written


def frame_with_pictures(
    interpolator: Interpolator,
    folder: str | os.PathLike,
    name: str,
    image0: torch.Tensor,
    image1: torch.Tensor,
    flows: PairFlows,
    t: float,
) -> torch.Tensor:
    """``interpolator.frame`` at t in (0, 1), writing its pictures as ``folder/NAME_*.png`` on the way."""
    rendered = interpolator.render(image0, image1, flows, t)
    write_pictures(folder, name, image0, image1, flows, rendered, t)
    return interpolator.output(rendered.image, image0)
