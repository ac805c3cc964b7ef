"""What a conversion is asked to do, validated before any decoding starts."""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

from .encode import EncodeOptions
from .errors import InputError
from .scene import DEFAULT_THRESHOLD

__all__ = ["ConvertConfig", "EncodeOptions", "InputOptions"]


@dataclass(frozen=True)
class InputOptions:
    """How to open the input: probed by default; pipes may name the format (and raw video its geometry)."""

    format: str | None = None  # e.g. yuv4mpegpipe, rawvideo, matroska
    raw_size: tuple[int, int] | None = None  # (W, H) for rawvideo
    raw_pix_fmt: str | None = None
    raw_fps: Fraction | None = None

    def __post_init__(self) -> None:
        if self.format == "rawvideo" and (self.raw_size is None or self.raw_pix_fmt is None or self.raw_fps is None):
            raise InputError("--in-format rawvideo needs --size WxH, --pix-fmt and --in-fps")


@dataclass(frozen=True)
class ConvertConfig:
    """Output rate (``fps``, or ``factor`` times the source's nominal rate) and how to get there."""

    fps: Fraction | None = None
    factor: Fraction | None = None
    scene_detect: bool = True
    scene_threshold: float = DEFAULT_THRESHOLD
    encode: EncodeOptions = field(default_factory=EncodeOptions)
    output_format: str | None = None  # container for the output; None: from the extension (y4m for stdout)
    input: InputOptions = field(default_factory=InputOptions)

    def __post_init__(self) -> None:
        if (self.fps is None) == (self.factor is None):
            raise InputError("give exactly one of --fps and --factor")
        if self.factor is not None and self.factor <= 0:
            raise InputError(f"--factor: {self.factor} must be positive")
        if not 0 < self.scene_threshold <= 1:
            raise InputError(f"--scene-threshold: {self.scene_threshold} must be in (0, 1]")

    def output_fps(self, source_fps: Fraction) -> Fraction:
        return self.fps if self.fps is not None else source_fps * self.factor
