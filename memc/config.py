"""Names, choices and defaults of memc, and what a conversion is asked to do, validated before
any decoding starts.

This module is the one owner of every choice list (estimators, presets) and default; the CLI, the
library and the docs read them from here. It imports neither torch nor PyAV, so ``memc --help``
and option parsing stay instant.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

from .errors import InputError
from .timing import MAX_FPS

__all__ = [
    "AUTO_ESTIMATOR",
    "AUTO_ESTIMATOR_CUDA",
    "DIS_PRESETS",
    "ENCODER_PRESETS",
    "ESTIMATORS",
    "FLOW_CHOICES",
    "HW_ENCODE_CHOICES",
    "ConvertConfig",
    "EncodeOptions",
    "EstimatorSpec",
    "InputOptions",
    "resolve_flow",
]


@dataclass(frozen=True)
class EstimatorSpec:
    """One entry of the estimator registry: adding an estimator is adding one of these."""

    name: str
    builder: str  # "module:function(device, *, dis_preset, weights) -> estimate.MotionModel", imported when built
    summary: str  # for --help
    devices: tuple[str, ...]  # where its own work runs; on other devices its flows are moved there
    weights: str | None = None  # file in memc/weights (the repo's weights/), for estimators with learned parts
    fp16: bool = False  # safe to run under autocast on CUDA (networks); classical matching stays float32


ESTIMATORS: dict[str, EstimatorSpec] = {
    spec.name: spec
    for spec in (
        EstimatorSpec(
            "dis-bm",
            "memc.motion.estimate:build_dis_bm",
            "DIS plus block search for small fast objects",
            devices=("cpu", "cuda"),  # DIS on the CPU, block search on the images' device
        ),
        EstimatorSpec("dis", "memc.motion.estimate:build_dis", "OpenCV DIS alone, the fastest", devices=("cpu",)),
        EstimatorSpec(
            "torch",
            "memc.motion.torch_flow:build_torch",
            "dense inverse search in torch, batched, for GPUs",
            devices=("cpu", "cuda"),
        ),
        EstimatorSpec(
            "learned",
            "memc.motion.models:build_learned",
            "the shipped model: DIS refined by a CNN, plus a U-Net on the frame",
            devices=("cpu", "cuda"),
            weights="learned.pt",
            fp16=True,
        ),
    )
}
# Keeps small fast objects (+11 dB object-region PSNR on the hard-motion suite's small disc) and is
# not behind dis on the full dev protocol (31.794 vs 31.787 dB, no clip more than 0.006 dB below).
# learned v1 ties dis on dev at 2-4x the cost.
AUTO_ESTIMATOR = "dis-bm"
# On CUDA, DIS (CPU only, one image at a time) would be the bottleneck: auto is the torch estimator there
# (dev, full protocol: 31.795 vs 31.787 dB for dis; on a CPU it costs 3-4x dis, so auto stays dis-bm).
AUTO_ESTIMATOR_CUDA = "torch"
FLOW_CHOICES = ("auto", *ESTIMATORS)
DIS_PRESETS = ("ultrafast", "fast", "medium")
ENCODER_PRESETS = (
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
    "placebo",
)
# --hw-encode: auto = NVENC when one opens on this machine, else software; on = NVENC or an error;
# off = software. Like ffmpeg's -c:v, the choice is the encoder's alone: --device does not change it.
HW_ENCODE_CHOICES = ("auto", "on", "off")
DEFAULT_SCENE_THRESHOLD = 0.4
# --dedup auto: a frame that differs from the last kept one by at most this many grey levels (8-bit
# scale, luma at 1/4 size) repeats it. Opt-in: ordinary footage has near-still pairs below it.
DEDUP_AUTO_THRESHOLD = 10.0
# --ray: files longer than this are cut at keyframes into pieces of about this length, one task each.
# A few minutes: a long video spreads over the workers, a task stays short enough to retry cheaply.
DEFAULT_SEGMENT_SECONDS = 180.0


def resolve_flow(name: str, weights: str | None = None, device_type: str = "cpu") -> EstimatorSpec:
    """The registry entry of ``--flow NAME``: ``auto`` is AUTO_ESTIMATOR (AUTO_ESTIMATOR_CUDA when
    ``device_type`` is "cuda"), or with ``--weights`` the estimator those weights belong to."""
    if name == "auto":
        if weights is not None:
            return next(spec for spec in ESTIMATORS.values() if spec.weights is not None)
        return ESTIMATORS[AUTO_ESTIMATOR_CUDA if device_type == "cuda" else AUTO_ESTIMATOR]
    if name not in ESTIMATORS:
        raise InputError(f"--flow: {name!r} is not one of {', '.join(FLOW_CHOICES)}")
    return ESTIMATORS[name]


@dataclass(frozen=True)
class EncodeOptions:
    """How to encode the video stream. ``crf`` is mapped to each codec's quality knob."""

    codec: str = "auto"  # auto -> libx264 (8-bit), libx265 (> 8-bit), libvpx-vp9 (webm); NVENC per hw_encode
    crf: int = 18  # visually transparent for x264/x265; ignored by lossless codecs
    preset: str = "medium"
    pix_fmt: str | None = None  # None -> yuv420p, or yuv420p10le for > 8-bit sources
    hw_encode: str = "auto"  # with codec "auto": NVENC if it opens (auto), NVENC or fail (on), software (off)

    def __post_init__(self) -> None:
        if self.hw_encode not in HW_ENCODE_CHOICES:
            raise InputError(f"--hw-encode must be one of {', '.join(HW_ENCODE_CHOICES)}; got {self.hw_encode!r}")
        nvenc = self.codec.endswith("_nvenc")
        if self.hw_encode == "on" and self.codec != "auto" and not nvenc:
            raise InputError(f"--hw-encode on asks for NVENC, but -c:v names {self.codec}: drop one of them")
        if self.hw_encode == "off" and nvenc:
            raise InputError(f"--hw-encode off asks for a software encoder, but -c:v names {self.codec}")
        if not 0 <= self.crf <= 63:
            raise InputError(f"crf must be in 0..63, got {self.crf}")
        if self.preset not in ENCODER_PRESETS:
            raise InputError(f"preset must be one of {', '.join(ENCODER_PRESETS)}; got {self.preset!r}")


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
    scene_threshold: float = DEFAULT_SCENE_THRESHOLD
    dedup: float | None = None  # grey levels below which a frame repeats the last kept one; None: off
    debug_dir: str | None = None  # pictures of the motion (motion/pictures.py) for the frames below
    debug_frames: tuple[int, int] = (0, 25)  # output frame numbers [start, end) that get them
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
        if not 0 <= self.debug_frames[0] < self.debug_frames[1]:
            raise InputError(f"--debug-frames: {self.debug_frames[0]}:{self.debug_frames[1]} is not a range START:END")
        if self.dedup is not None and not 0 <= self.dedup < 255:
            raise InputError(f"--dedup: {self.dedup} must be in [0, 255) grey levels")

    def output_fps(self, source_fps: Fraction) -> Fraction:
        """The output rate; InputError if ``--factor`` takes it past the limit ``--fps`` has."""
        if self.fps is not None:
            return self.fps
        fps = source_fps * self.factor
        if fps > MAX_FPS:
            raise InputError(
                f"--factor {self.factor}: {float(source_fps):g} fps x {self.factor} = {float(fps):g} fps "
                f"is above the {MAX_FPS} fps limit"
            )
        return fps
