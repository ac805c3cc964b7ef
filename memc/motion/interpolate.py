"""Interpolator: flows once per source pair, then a frame for every t that pair needs.

estimate (flow_01, flow_10, consistency errors)  ->  for each t: project -> synthesize [-> refine]

``render`` is the one path from a pair's flows to the frame at t; the Interpolator, training and
``tools/`` all go through it. Precision is decided here once: fp16 autocast on CUDA for the parts
the estimator's registry entry marks safe (networks), float32 for everything else.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InputError
from ..tensors import check_shape, resize_flow, to_image, to_tensor
from . import occlusion, still
from .estimate import FlowEstimator, MotionModel, Refiner, build_estimator
from .project import Detail, Projection, detail_sources, grid_size, near, project_flow, sharpen
from .synthesize import Fine, Synthesis, blend_weight, compose_array, synthesize

# Longest side at which flow is estimated when --flow-scale is automatic: large motion at
# 1080p/4K is found at a reduced scale and the flow upsampled.
AUTO_FLOW_SIDE = 1280


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` -> the first CUDA device if there is one, else the CPU; checks that the device exists."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise InputError(f"--device: {device!r} is not a device (use auto, cpu, cuda or cuda:N)") from exc
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"--device: {device!r} asked for, but no CUDA device is available")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise InputError(f"--device: {device!r} does not exist ({torch.cuda.device_count()} CUDA devices)")
    elif dev.type != "cpu":
        raise InputError(f"--device: {device!r} is not supported (use auto, cpu, cuda or cuda:N)")
    return dev


@dataclass(frozen=True)
class PairFlows:
    """What one source pair needs for any number of t: its flows and their consistency errors."""

    flow_01: torch.Tensor  # (N, 2, H, W) pixels
    flow_10: torch.Tensor
    error_0: torch.Tensor  # (N, 1, H, W) forward-backward error at frame 0's pixels
    error_1: torch.Tensor
    importance_0: torch.Tensor  # (N, 1, H, W) splat weight of frame 0's pixels (``occlusion.splat_importance``)
    importance_1: torch.Tensor
    still: torch.Tensor | None = None  # (N, 1, H, W) 1 where the pair is still (static overlays); see ``still``
    # the same pair on the coarser projection grid (``project.grid_size``), and the pixels of each
    # flow that the grid does not represent; None when projection runs at the flows' size
    grid: PairFlows | None = None
    detail_0: Detail | None = None
    detail_1: Detail | None = None
    # flat indices of the pixels within DETAIL_REACH px of a detail source of either flow: where the
    # blend weight is recomputed at full size (``synthesize.blend_weight``)
    detail_region: torch.Tensor | None = None

    @property
    def on_grid(self) -> PairFlows:
        """What projection and the blend weights work on: the grid when there is one."""
        return self.grid if self.grid is not None else self

    @property
    def fine(self) -> Fine | None:
        """What sharpens the grid's blend weight at the flows' size; None without a grid."""
        if self.grid is None or self.detail_region is None:
            return None
        return Fine(self.flow_01, self.flow_10, self.detail_region)

    @property
    def failure(self) -> float:
        """Share of pixels whose flow fails the consistency test, worst direction: a cut signal."""
        return float(
            torch.maximum(occlusion.failure_fraction(self.error_0), occlusion.failure_fraction(self.error_1)).max()
        )


@dataclass(frozen=True)
class Motion:
    """A pair's estimated motion (``Interpolator.motion``), before the pair-level work on it."""

    flow_01: torch.Tensor  # (N, 2, H, W) pixels, at the flow's scale
    flow_10: torch.Tensor
    still: torch.Tensor | None  # (N, 1, H, W) ``still.still_mask``

    @torch.no_grad()
    def pair_flows(self) -> PairFlows:
        """What every t of the pair uses: consistency errors, splat importances, projection grid."""
        return pair_flows(self.flow_01, self.flow_10, self.still, grid=True)


@dataclass(frozen=True)
class Rendered:
    """The frame at t and what it was made from (training's losses and tools look inside)."""

    image: torch.Tensor  # refined when there is a refiner, else ``synthesis.image``
    synthesis: Synthesis
    projection: Projection


def render(
    image0: torch.Tensor,
    image1: torch.Tensor,
    flows: PairFlows,
    t: float | torch.Tensor,
    refiner: Refiner | None = None,
    precision: contextlib.AbstractContextManager | None = None,
) -> Rendered:
    """Flows -> projection to t -> synthesis [-> refiner]: the frame at t, unclamped. Projection
    and synthesis run in float32; ``precision`` (e.g. an autocast) applies to the refiner only."""
    projection = project(flows, t)
    grid = flows.on_grid
    synthesis = synthesize(
        image0, image1, projection, t, grid.error_0, grid.error_1, grid.flow_01, grid.flow_10, flows.fine
    )
    image = synthesis.image
    if refiner is not None:
        with precision or contextlib.nullcontext():
            image = refiner(image0, image1, projection, synthesis, t).float()
    return Rendered(image, synthesis, projection)


def project(flows: PairFlows, t: float | torch.Tensor) -> Projection:
    """The pair's motion projected to t on its grid, still pixels kept in place, and sharpened at
    the flows' size when the grid is coarser (``project.sharpen``)."""
    grid = flows.on_grid
    projection = project_flow(grid.flow_01, grid.flow_10, t, grid.importance_0, grid.importance_1)
    if grid.still is not None:
        projection = still.settle(projection, grid.still)
    if flows.grid is None or flows.detail_0 is None or flows.detail_1 is None:
        return projection
    size = flows.flow_01.shape[-2:]
    projection = dataclasses.replace(
        projection,
        warp_t0=sharpen(resize_flow(projection.flow_t0, size), flows.flow_01, flows.importance_0, flows.detail_0, t),
        warp_t1=sharpen(
            resize_flow(projection.flow_t1, size), flows.flow_10, flows.importance_1, flows.detail_1, 1 - t
        ),
    )
    return projection if flows.still is None else still.settle_warp(projection, flows.still)


def pair_flows(
    flow_01: torch.Tensor, flow_10: torch.Tensor, still_pixels: torch.Tensor | None = None, grid: bool = False
) -> PairFlows:
    """Both flows with their forward-backward consistency errors; with ``still_pixels`` (a
    ``still.still_mask``) the flows are zero there and the projection keeps them in place. With
    ``grid`` projection runs on a coarser grid (``project.grid_size``) where the frame is big enough."""
    if still_pixels is not None:
        flow_01, flow_10 = still.hold_still(flow_01, flow_10, still_pixels)
    error_0 = occlusion.consistency_error(flow_01, flow_10)
    error_1 = occlusion.consistency_error(flow_10, flow_01)
    flows = PairFlows(
        flow_01,
        flow_10,
        error_0,
        error_1,
        occlusion.splat_importance(error_0, flow_01),
        occlusion.splat_importance(error_1, flow_10),
        still_pixels,
    )
    size = grid_size(*flow_01.shape[-2:])
    if not grid or size == tuple(flow_01.shape[-2:]):
        return flows
    coarse = pair_flows(
        resize_flow(flow_01, size),
        resize_flow(flow_10, size),
        None if still_pixels is None else (F.interpolate(still_pixels, size=size, mode="area") > 0.5).float(),
    )
    detail_0 = detail_sources(flow_01, coarse.flow_01, flows.importance_0)
    detail_1 = detail_sources(flow_10, coarse.flow_10, flows.importance_1)
    return dataclasses.replace(
        flows, grid=coarse, detail_0=detail_0, detail_1=detail_1, detail_region=near(flow_01, detail_0, detail_1)
    )


class Interpolator:
    """Frame interpolation between two images with a chosen flow estimator.

    ``Interpolator(device="cpu", flow="dis").interpolate(img0, img1, 0.5)`` takes H x W x 3
    uint8/uint16 arrays (or (N, 3, H, W) tensors) and returns the same kind. ``flow`` is a name of
    ``config.FLOW_CHOICES``, a built ``MotionModel``, or any estimator object (then ``refiner``
    adds the optional last stage).
    """

    def __init__(
        self,
        device: str | torch.device = "auto",
        flow: str | MotionModel | FlowEstimator = "auto",
        *,
        flow_scale: float | None = None,
        dis_preset: str = "medium",
        weights: str | None = None,
        fp16: bool | None = None,
        refiner: Refiner | None = None,
    ) -> None:
        self.device = resolve_device(device)
        if isinstance(flow, str):
            model = build_estimator(flow, self.device, dis_preset=dis_preset, weights=weights)
        elif isinstance(flow, MotionModel):
            model = flow
        else:
            model = MotionModel(flow, refiner, fp16=bool(fp16))
        self.estimator, self.refiner = model.estimator, model.refiner
        if flow_scale is not None and not 0 < flow_scale <= 1:
            raise InputError(f"--flow-scale: {flow_scale} must be in (0, 1]")
        self.flow_scale = flow_scale
        # fp16 only where the model says it is safe, and only on CUDA; the rest stays float32.
        self.fp16 = self.device.type == "cuda" and (model.fp16 if fp16 is None else fp16)

    def _precision(self):
        if not self.fp16:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.float16)

    @property
    def flow_name(self) -> str:
        return self.estimator.name

    def scale_for(self, height: int, width: int) -> float:
        if self.flow_scale is not None:
            return self.flow_scale
        return min(1.0, AUTO_FLOW_SIDE / max(height, width))

    @torch.no_grad()
    def flows(self, image0: torch.Tensor, image1: torch.Tensor) -> PairFlows:
        """Everything any t of the pair needs (``motion``, then ``Motion.pair_flows``)."""
        return self.motion(image0, image1).pair_flows()

    @torch.no_grad()
    def motion(self, image0: torch.Tensor, image1: torch.Tensor) -> Motion:
        """Estimate both flows once, at the flow scale, and the pair's still pixels.

        The result stays at that scale (in its pixels): projection and the occlusion masks are
        computed there for every t, and only the final warp runs at the images' size.
        """
        check_shape(image0, "image0", channels=3)
        check_shape(image1, "image1", channels=3)
        h, w = image0.shape[-2:]
        scale = self.scale_for(h, w)
        a, b = image0, image1
        if scale < 1:
            size = (max(8, round(h * scale)), max(8, round(w * scale)))
            a = F.interpolate(a, size=size, mode="bilinear", align_corners=False, antialias=True)
            b = F.interpolate(b, size=size, mode="bilinear", align_corners=False, antialias=True)
        with self._precision():
            flow_01, flow_10 = self.estimator.estimate(a, b)
        flow_01, flow_10 = flow_01.float(), flow_10.float()
        if self.refiner is not None:  # a refiner was trained on motion at the images' size
            flow_01, flow_10 = resize_flow(flow_01, (h, w)), resize_flow(flow_10, (h, w))
            a, b = image0, image1
        # Otherwise the motion stays at the flow's size; synthesis warps the images at theirs.
        still_pixels = still.still_mask(a.float(), b.float(), flow_01, flow_10)
        return Motion(flow_01, flow_10, still_pixels)

    @torch.no_grad()
    def render(self, image0: torch.Tensor, image1: torch.Tensor, flows: PairFlows, t: float) -> Rendered:
        """The frame at t in (0, 1) with what it was made from (``--debug-dir`` draws those)."""
        return render(image0, image1, flows, t, self.refiner, self._precision())

    @torch.no_grad()
    def frame(self, image0: torch.Tensor, image1: torch.Tensor, flows: PairFlows, t: float) -> torch.Tensor:
        """The frame at t in [0, 1]; t = 0 and t = 1 return the inputs unchanged."""
        if t <= 0:
            return image0
        if t >= 1:
            return image1
        return self.output(self.render(image0, image1, flows, t).image, image0)

    @torch.no_grad()
    def frame_array(
        self, image0: torch.Tensor, image1: torch.Tensor, flows: PairFlows, t: float, dtype: np.dtype
    ) -> np.ndarray:
        """The frame at t in (0, 1) as an H x W x 3 array of ``dtype``, the decoded frames' (uint8
        or uint16). For 8-bit frames on the CPU without a refiner, the final warp and blend run in
        OpenCV, band by band (``synthesize.compose_array``): most of a CPU conversion's time and
        memory were there."""
        if self.device.type != "cpu" or self.refiner is not None or dtype != np.uint8:
            return to_image(self.frame(image0, image1, flows, t), dtype)
        projection = project(flows, t)
        grid = flows.on_grid
        mask0, _, _ = blend_weight(projection, t, grid.error_0, grid.error_1, grid.flow_01, grid.flow_10, flows.fine)
        return compose_array(image0, image1, *projection.warp_flows(), mask0, t)

    @staticmethod
    def output(image: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """A rendered image as a frame: clamped to [0, 1], in the inputs' dtype."""
        return image.clamp(0, 1).to(like.dtype)

    def interpolate(self, image0, image1, t: float | Sequence[float]):
        """Frame(s) between two images at t (a float or a list of floats)."""
        ts = [float(x) for x in t] if isinstance(t, (list, tuple)) else [float(t)]
        for x in ts:
            if not 0 <= x <= 1:
                raise InputError(f"t: {x} is outside [0, 1]")
        as_array = isinstance(image0, np.ndarray)
        if as_array:
            if image0.shape != image1.shape:
                raise InputError(f"images differ in size: {image0.shape} and {image1.shape}")
            a, b = to_tensor(image0, self.device), to_tensor(image1, self.device)
        else:
            a, b = image0.to(self.device).float(), image1.to(self.device).float()
        flows = self.flows(a, b) if any(0 < x < 1 for x in ts) else None
        out = []
        for x in ts:
            if not 0 < x < 1:
                out.append((image0 if x <= 0 else image1).copy() if as_array else (a if x <= 0 else b))
            elif as_array:
                out.append(self.frame_array(a, b, flows, x, image0.dtype))
            else:
                out.append(self.frame(a, b, flows, x))
        return out if isinstance(t, (list, tuple)) else out[0]
