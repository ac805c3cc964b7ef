"""A seeded synthetic suite of the motions that break coarse-to-fine flow: ``memc eval --hard-motion``.

Each scene is a textured background panning slowly under sprites whose motion is known exactly, so
the true frame at any t is rendered the same way as the inputs:

* ``small_disc``: a disc of radius 5 px moving 24 px per frame (about 2.4 times its size);
* ``small_sprites``: three sprites 8-14 px across moving 2-6 times their size in random directions;
* ``crossing``: two textured squares passing each other in opposite directions;
* ``rotating``: a textured square turning 12 degrees per frame while it moves;
* ``thin``: a bar 3 px wide moving 14 px across its length.

Scores: full-frame PSNR, and PSNR over the **object region** (the sprites' pixels at 0, t and 1,
dilated by 2 px), where a vanished or doubled object shows and a background-dominated full-frame
number hides it. Backgrounds are photos from ``../shared/data/textures`` when that folder exists,
else procedural textures, so tests and CI run without the data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from .evaluate import Predictor, psnr
from .tensors import to_tensor

SCENES = ("small_disc", "small_sprites", "crossing", "rotating", "thin")
SIZE = (240, 320)  # (H, W)
SUPERSAMPLE = 4  # sprite edges are anti-aliased by rendering their masks at 4x


@dataclass(frozen=True)
class Sprite:
    shape: str  # disc | square | bar
    size: float  # diameter, side or length (px)
    start: tuple[float, float]  # centre (x, y) at time 0
    velocity: tuple[float, float]  # px per frame
    texture: np.ndarray  # H x W x 3 float32 in [0, 1], at least size x size
    width: float = 0  # bar width (px); unused otherwise
    angle: float = 0  # degrees at time 0
    spin: float = 0  # degrees per frame


def procedural_texture(height: int, width: int, rng: np.random.Generator, blur: float = 1.5) -> np.ndarray:
    """A photo-like random texture (detail at every scale, amplitude ~ 1/frequency), H x W x 3 in [0, 1]."""
    tex = np.zeros((height, width, 3), np.float32)
    for sigma in (blur, 2 * blur, 4 * blur, 8 * blur, 16 * blur):
        noise = cv2.GaussianBlur(rng.standard_normal((height, width, 3)).astype(np.float32), (0, 0), sigma)
        tex += noise / noise.std() * math.sqrt(sigma)
    tex -= tex.min(axis=(0, 1))
    tex /= tex.max(axis=(0, 1))
    return tex


def _photo(textures: list[Path], rng: np.random.Generator, height: int, width: int) -> np.ndarray | None:
    """A random photo from ``textures`` resized to cover (height, width), or None if there are none."""
    if not textures:
        return None
    image = cv2.imread(str(textures[int(rng.integers(len(textures)))]), cv2.IMREAD_COLOR)
    if image is None:
        return None
    scale = max(height / image.shape[0], width / image.shape[1])
    image = cv2.resize(
        image,
        (math.ceil(image.shape[1] * scale), math.ceil(image.shape[0] * scale)),
        interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC,
    )
    return cv2.cvtColor(image[:height, :width], cv2.COLOR_BGR2RGB).astype(np.float32) / 255


class HardMotionScene:
    """Background panning at ``bg_velocity`` under ``sprites``; ``render(t)`` and ``object_mask(t)``."""

    def __init__(self, name: str, background: np.ndarray, bg_velocity: tuple[float, float], sprites: list[Sprite]):
        self.name, self.background, self.bg_velocity, self.sprites = name, background, bg_velocity, sprites
        self.h, self.w = SIZE

    @staticmethod
    def _pose(sprite: Sprite, t: float) -> tuple[float, float, float, float]:
        """Centre (x, y), cos and sin of the sprite's angle at time t."""
        angle = math.radians(sprite.angle + sprite.spin * t)
        return (
            sprite.start[0] + sprite.velocity[0] * t,
            sprite.start[1] + sprite.velocity[1] * t,
            math.cos(angle),
            math.sin(angle),
        )

    def _coverage(self, sprite: Sprite, t: float) -> np.ndarray:
        """The sprite's anti-aliased coverage (alpha) at time t, H x W: SUPERSAMPLE x raster, area-averaged."""
        cx, cy, cos, sin = self._pose(sprite, t)
        s = SUPERSAMPLE
        ys, xs = np.mgrid[0 : self.h * s, 0 : self.w * s].astype(np.float32)
        x = (xs + 0.5) / s - 0.5 - cx
        y = (ys + 0.5) / s - 0.5 - cy
        u, v = cos * x + sin * y, -sin * x + cos * y  # frame -> sprite axes
        if sprite.shape == "disc":
            inside = u * u + v * v <= (sprite.size / 2) ** 2
        elif sprite.shape == "square":
            inside = (np.abs(u) <= sprite.size / 2) & (np.abs(v) <= sprite.size / 2)
        else:  # bar: long along u
            inside = (np.abs(u) <= sprite.size / 2) & (np.abs(v) <= sprite.width / 2)
        return cv2.resize(inside.astype(np.float32), (self.w, self.h), interpolation=cv2.INTER_AREA)

    def _colour(self, sprite: Sprite, t: float) -> np.ndarray:
        """The sprite's texture moved and turned to its pose at time t, H x W x 3."""
        cx, cy, cos, sin = self._pose(sprite, t)
        th, tw = sprite.texture.shape[:2]
        # affine map from sprite coordinates (texture centred at 0) to the frame
        to_frame = np.float32(
            [
                [cos, -sin, cx - cos * (tw - 1) / 2 + sin * (th - 1) / 2],
                [sin, cos, cy - sin * (tw - 1) / 2 - cos * (th - 1) / 2],
            ]
        )
        colour = cv2.warpAffine(
            sprite.texture, to_frame, (self.w, self.h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT
        )
        return np.clip(colour, 0, 1)

    def render(self, t: float) -> np.ndarray:
        """The frame at time t (frames one unit apart): float32 H x W x 3 in [0, 1]."""
        dx, dy = self.bg_velocity[0] * t, self.bg_velocity[1] * t
        shift = np.float32([[1, 0, 40 + dx], [0, 1, 40 + dy]])  # frame pixel x shows background x + 40 + dx
        frame = cv2.warpAffine(
            self.background,
            shift,
            (self.w, self.h),
            flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REFLECT,
        )
        for sprite in self.sprites:
            alpha = self._coverage(sprite, t)[..., None]
            frame = alpha * self._colour(sprite, t) + (1 - alpha) * frame
        return np.clip(frame, 0, 1)

    def frame_u8(self, t: float) -> np.ndarray:
        return (self.render(t) * 255).round().astype(np.uint8)

    def object_mask(self, times: tuple[float, ...], dilate: int = 2) -> np.ndarray:
        """Pixels any sprite touches at any of ``times``, dilated: H x W bool."""
        mask = np.zeros((self.h, self.w), bool)
        for sprite in self.sprites:
            for t in times:
                mask |= self._coverage(sprite, t) > 0.05
        kernel = np.ones((2 * dilate + 1, 2 * dilate + 1), np.uint8)
        return cv2.dilate(mask.astype(np.uint8), kernel).astype(bool)


def _sprite_texture(rng: np.random.Generator, size: int, flat: bool) -> np.ndarray:
    """A sprite's texture: a bright flat colour with mild shading (a ball), or a random texture."""
    if flat:
        colour = rng.uniform(0.6, 1.0, 3).astype(np.float32) * rng.permutation([1.0, 0.6, 0.2]).astype(np.float32)
        shade = np.linspace(0.85, 1.0, size, dtype=np.float32)[:, None, None]
        return np.ones((size, size, 3), np.float32) * colour * shade
    return procedural_texture(size, size, rng)


def _direction(rng: np.random.Generator) -> tuple[float, float]:
    angle = rng.uniform(0, 2 * math.pi)
    return math.cos(angle), math.sin(angle)


def make_scene(name: str, seed: int, textures: list[Path] | None = None) -> HardMotionScene:
    """Scene ``name`` (one of SCENES), fully determined by ``seed`` and the texture list."""
    if name not in SCENES:
        raise ValueError(f"hard-motion scene {name!r} is not one of {', '.join(SCENES)}")
    rng = np.random.default_rng([SCENES.index(name), seed])
    h, w = SIZE
    background = _photo(sorted(textures or []), rng, h + 80, w + 80)
    if background is None:
        background = procedural_texture(h + 80, w + 80, rng)
    bg_velocity = (float(rng.uniform(-2, 2)), float(rng.uniform(-1, 1)))
    centre = (w / 2 + rng.uniform(-20, 20), h / 2 + rng.uniform(-15, 15))
    sprites: list[Sprite] = []
    if name == "small_disc":
        dx, dy = _direction(rng)
        start = (centre[0] - 12 * dx, centre[1] - 12 * dy)
        sprites.append(Sprite("disc", 10, start, (24 * dx, 24 * dy), _sprite_texture(rng, 16, flat=True)))
    elif name == "small_sprites":
        for k in range(3):
            size = float(rng.uniform(8, 14))
            speed = size * float(rng.uniform(2, 6))
            dx, dy = _direction(rng)
            pos = (rng.uniform(60, w - 60) - speed * dx / 2, rng.uniform(50, h - 50) - speed * dy / 2)
            shape = ("disc", "square", "disc")[k]
            angle = float(rng.uniform(0, 90))  # drawn before the texture: the seeded scenes stay the same
            texture = _sprite_texture(rng, int(size * 2) + 4, flat=k != 1)
            sprites.append(Sprite(shape, size, pos, (speed * dx, speed * dy), texture, angle=angle))
    elif name == "crossing":
        dx, dy = _direction(rng)
        for sign in (-1, 1):
            start = (centre[0] - sign * 18 * dx + sign * 12 * dy, centre[1] - sign * 18 * dy - sign * 12 * dx)
            velocity = (sign * 36 * dx, sign * 36 * dy)
            sprites.append(Sprite("square", 40, start, velocity, _sprite_texture(rng, 64, flat=False)))
    elif name == "rotating":
        dx, dy = _direction(rng)
        start = (centre[0] - 5 * dx, centre[1] - 5 * dy)
        angle, spin = float(rng.uniform(0, 90)), float(rng.choice([-12, 12]))
        texture = _sprite_texture(rng, 96, flat=False)
        sprites.append(Sprite("square", 60, start, (10 * dx, 10 * dy), texture, angle=angle, spin=spin))
    else:  # thin
        dx, dy = _direction(rng)
        angle = math.degrees(math.atan2(dy, dx)) + 90  # the bar's length is across its motion
        start = (centre[0] - 7 * dx, centre[1] - 7 * dy)
        texture = _sprite_texture(rng, 96, flat=True)
        sprites.append(Sprite("bar", 70, start, (14 * dx, 14 * dy), texture, width=3, angle=angle))
    return HardMotionScene(name, background, bg_velocity, sprites)


def default_textures() -> list[Path]:
    """Photos of ``../shared/data/textures`` (relative to the working folder) when present, else none."""
    folder = Path("../shared/data/textures")
    return sorted(folder.glob("*.jpg")) if folder.is_dir() else []


def evaluate_hard_motion(
    predictors: dict[str, Predictor],
    *,
    seeds: int = 4,
    times: tuple[float, ...] = (0.5,),
    textures: list[Path] | None = None,
    device: torch.device | str = "cpu",
) -> dict:
    """{method: {scene: {"psnr": full-frame, "object_psnr": object region}}}, each the mean over seeds and t."""
    device = torch.device(device)
    out: dict[str, dict[str, dict[str, float]]] = {name: {} for name in predictors}
    for scene_name in SCENES:
        sums = {name: {"psnr": [], "object_psnr": []} for name in predictors}
        for seed in range(seeds):
            scene = make_scene(scene_name, seed, textures)
            image0, image1 = to_tensor(scene.frame_u8(0), device), to_tensor(scene.frame_u8(1), device)
            truths = {t: to_tensor(scene.frame_u8(t), device) for t in times}
            masks = {t: torch.from_numpy(scene.object_mask((0.0, t, 1.0))) for t in times}
            for name, predict in predictors.items():
                for t, prediction in zip(times, predict(image0, image1, list(times))):
                    sums[name]["psnr"].append(psnr(prediction, truths[t]))
                    sums[name]["object_psnr"].append(psnr(prediction, truths[t], masks[t]))
        for name in predictors:
            out[name][scene_name] = {k: float(np.mean(v)) for k, v in sums[name].items()}
    return out


def table(results: dict) -> str:
    """Markdown table: one row per scene, full-frame / object-region PSNR per method."""
    methods = list(results)
    lines = [
        "## Hard-motion suite: PSNR full frame / object region (dB)",
        "",
        "| scene | " + " | ".join(methods) + " |",
        "|---|" + "---:|" * len(methods),
    ]
    for scene in SCENES:
        cells = [f"{results[m][scene]['psnr']:.2f} / {results[m][scene]['object_psnr']:.2f}" for m in methods]
        lines.append(f"| {scene} | " + " | ".join(cells) + " |")
    means = [
        f"{np.mean([results[m][s]['psnr'] for s in SCENES]):.2f} / "
        f"{np.mean([results[m][s]['object_psnr'] for s in SCENES]):.2f}"
        for m in methods
    ]
    lines.append("| **mean** | " + " | ".join(means) + " |")
    return "\n".join(lines)
