"""memc: frame-rate conversion by motion estimation and motion compensation.

    from memc import Interpolator, convert
    convert("in.mp4", "out.mp4", fps=60)
    middle = Interpolator(device="cpu", flow="dis").interpolate(img0, img1, 0.5)

Importing memc does no torch work; the heavy modules load on first use.
"""

from __future__ import annotations

import os
from fractions import Fraction
from typing import TYPE_CHECKING, Any

# Idle OpenMP threads must sleep, not spin: memc shares the cores with its own decoder and encoder
# threads (and with ffmpeg in a pipe), and spinning made a busy 2-core machine ~18x slower (89 s vs
# 4.9 s for a 2 s 320x240 clip). OpenMP reads it once, when torch loads: so it is set at package
# import, before any memc module imports torch, whichever entry point (CLI, library, tests) came first.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
__all__ = ["Interpolator", "convert", "__version__"]

if TYPE_CHECKING:
    from .motion.interpolate import Interpolator
    from .pipeline import Stats


def __getattr__(name: str) -> Any:
    if name == "Interpolator":
        from .motion.interpolate import Interpolator

        return Interpolator
    raise AttributeError(f"module 'memc' has no attribute {name!r}")


def convert(
    src: str,
    dst: str,
    fps: int | str | Fraction | None = None,
    *,
    factor: int | str | Fraction | None = None,
    flow: str = "auto",
    device: str = "auto",
    overwrite: bool = False,
    scene_detect: bool = True,
    interpolator: Interpolator | None = None,
    **encode: Any,
) -> Stats:
    """Convert the video file ``src`` to ``fps`` (or ``factor`` times its rate) into ``dst``.

    ``encode`` takes EncodeOptions fields (codec, crf, preset, pix_fmt). Returns the run's Stats.
    """
    from .config import ConvertConfig, EncodeOptions
    from .motion.interpolate import Interpolator
    from .pipeline import convert as run_convert
    from .timing import parse_fps

    config = ConvertConfig(
        fps=parse_fps(fps) if fps is not None else None,
        factor=parse_fps(factor, name="factor") if factor is not None else None,
        scene_detect=scene_detect,
        encode=EncodeOptions(**encode),
    )
    interpolator = interpolator or Interpolator(device=device, flow=flow)
    return run_convert(src, dst, config, interpolator, overwrite=overwrite)
