"""Flow estimators: ``estimate(image0, image1) -> (flow_01, flow_10)``.

Every estimator takes images (N, 3, H, W) in [0, 1] and returns both flows (N, 2, H, W) in pixels
at the input size.

* ``dis``: OpenCV's Dense Inverse Search, coarse to fine; classical, no weights.
* ``dis-bm``: DIS, then block search at full resolution where DIS fails, fused per pixel and
  confirmed both ways (``matching``): keeps small fast objects that coarse-to-fine loses. The
  default on the CPU.
* ``torch``: dense inverse search written in torch (``torch_flow``), batched, on any device; what
  ``auto`` is on CUDA, where DIS on the CPU would be the bottleneck.
* ``learned``: the project's learned refinement (``memc.motion.models``), which adds a refiner stage.

The registry of names, builders, devices and weights is ``config.ESTIMATORS``; ``build_estimator``
resolves a name there and calls its builder, which returns a ``MotionModel``.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import cv2
import numpy as np
import torch

from .. import config
from ..errors import InputError
from ..tensors import check_shape, luma
from .matching import add_large_motion

if TYPE_CHECKING:
    from .project import Projection
    from .synthesize import Synthesis

logger = logging.getLogger(__name__)

_DIS_PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}
assert set(_DIS_PRESETS) == set(config.DIS_PRESETS)


class FlowEstimator(Protocol):
    name: str

    def estimate(self, image0: torch.Tensor, image1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...


class Refiner(Protocol):
    """An optional last stage: corrects the synthesized frame at t (learned estimators have one)."""

    def __call__(
        self, image0: torch.Tensor, image1: torch.Tensor, projection: Projection, synthesis: Synthesis, t: float
    ) -> torch.Tensor: ...


@dataclass(frozen=True)
class MotionModel:
    """What a registry entry builds: the flow estimator, its refiner if any, and whether both may
    run under fp16 autocast on CUDA (``Interpolator`` decides precision once, from this)."""

    estimator: FlowEstimator
    refiner: Refiner | None = None
    fp16: bool = False

    @property
    def name(self) -> str:
        return self.estimator.name


def _gray_u8(image: torch.Tensor) -> np.ndarray:
    """(3, H, W) RGB in [0, 1] -> H x W uint8 luma (BT.601 weights; DIS only needs contrast)."""
    return (luma(image[None])[0, 0].float().clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()


class DISEstimator:
    """OpenCV DIS optical flow in both directions (on the CPU whatever the device).

    With ``large_motion`` the flows get block-search vectors where DIS fails (``matching``), on
    the images' device.
    """

    def __init__(self, preset: str = "medium", large_motion: bool = False) -> None:
        if preset not in _DIS_PRESETS:
            raise InputError(f"--dis-preset: {preset!r} is not one of {', '.join(config.DIS_PRESETS)}")
        self.preset = preset
        self.large_motion = large_motion
        self.name = "dis-bm" if large_motion else "dis"
        self._dis = cv2.DISOpticalFlow_create(_DIS_PRESETS[preset])

    def estimate(self, image0: torch.Tensor, image1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        check_shape(image0, "image0", channels=3)
        check_shape(image1, "image1", channels=3)
        forward, backward = [], []
        for a, b in zip(image0, image1):
            ga, gb = _gray_u8(a), _gray_u8(b)
            # (the two directions in two threads: 69 -> 60 ms per 720p pair alone, but a whole
            # conversion, whose encoder thread shares the cores, got slower: 29.5-30.5 -> 32.5 s)
            forward.append(torch.from_numpy(self._dis.calc(ga, gb, None)))
            backward.append(torch.from_numpy(self._dis.calc(gb, ga, None)))

        def stack(flows: list[torch.Tensor]) -> torch.Tensor:
            return torch.stack(flows).permute(0, 3, 1, 2).to(device=image0.device, dtype=torch.float32)

        flow_01, flow_10 = stack(forward), stack(backward)
        if self.large_motion:
            flow_01, flow_10 = add_large_motion(image0.float(), image1.float(), flow_01, flow_10)
        return flow_01, flow_10


def build_dis(device: torch.device, *, dis_preset: str = "medium", weights: str | None = None) -> MotionModel:
    return MotionModel(DISEstimator(dis_preset))


def build_dis_bm(device: torch.device, *, dis_preset: str = "medium", weights: str | None = None) -> MotionModel:
    return MotionModel(DISEstimator(dis_preset, large_motion=True))


def build_estimator(
    name: str, device: torch.device, *, dis_preset: str = "medium", weights: str | None = None
) -> MotionModel:
    """Build ``--flow NAME`` (one of ``config.FLOW_CHOICES``) from its registry entry."""
    spec = config.resolve_flow(name, weights, device.type)
    if name == "auto":
        logger.info("--flow auto: %s", spec.name)
    module, function = spec.builder.split(":")
    model = getattr(importlib.import_module(module), function)(device, dis_preset=dis_preset, weights=weights)
    if device.type not in spec.devices:
        logger.info("%s computes its flow on the %s; the rest runs on %s", spec.name, spec.devices[0], device)
    return model
