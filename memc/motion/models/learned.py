"""The learned estimator: DIS flow refined by a CNN, plus a learned synthesis refinement.

    estimate:  DIS (both ways) -> FlowRefiner at 1/4 resolution -> residual upsampled and added
    refine:    (the Interpolator's projection + synthesis at t) -> SynthesisRefiner -> frame at t

``refine_flows`` and ``refine_frame`` are the functions training uses too, so the trained path and
the shipped path are the same code. ``Interpolator`` runs them under autocast on CUDA (the registry
entry says fp16 is safe); flows, projection and warping stay float32.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ...tensors import Padder, check_shape, resize_flow
from ..estimate import DISEstimator
from ..project import Projection
from ..synthesize import Synthesis
from .refine import STRIDE, RefineNet


def refine_flows(
    net: RefineNet, image0: torch.Tensor, image1: torch.Tensor, flow_01: torch.Tensor, flow_10: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Correct initial flows (N, 2, H, W) of the pair; the correction is estimated at 1/flow_factor size."""
    h, w = image0.shape[-2:]
    small = (max(8, -(-h // net.flow_factor)), max(8, -(-w // net.flow_factor)))
    a = F.adaptive_avg_pool2d(image0, small)
    b = F.adaptive_avg_pool2d(image1, small)
    flows = torch.cat((resize_flow(flow_01, small), resize_flow(flow_10, small)), dim=0)
    refined = net.flow(torch.cat((a, b), dim=0), torch.cat((b, a), dim=0), flows.to(a.dtype))
    delta = resize_flow((refined - flows).float(), (h, w))
    n = image0.shape[0]
    return flow_01 + delta[:n], flow_10 + delta[n:]


def refine_frame(
    net: RefineNet,
    image0: torch.Tensor,
    image1: torch.Tensor,
    projection: Projection,
    synthesis: Synthesis,
    t: float | torch.Tensor,
) -> torch.Tensor:
    """The synthesized frame at t, corrected by the U-Net; any size (replicate-padded to its stride)."""
    h, w = image0.shape[-2:]
    padder = Padder(h, w, STRIDE)
    holes = [projection.hole_t0, projection.hole_t1]
    if holes[0].shape[-2:] != (h, w):  # projected on a coarser grid (``project.grid_size``)
        holes = [F.interpolate(hole, size=(h, w), mode="bilinear", align_corners=False) for hole in holes]
    inputs = [
        image0,
        image1,
        synthesis.warped0,
        synthesis.warped1,
        synthesis.image,
        synthesis.mask0,
        *holes,
    ]
    dtype = image0.dtype
    out = net.synthesis(*(padder.pad(x.to(dtype)) for x in inputs), t)
    return padder.unpad(out).float()


class LearnedEstimator:
    """DIS flows corrected by the network's flow refiner."""

    name = "learned"

    def __init__(self, net: RefineNet, dis_preset: str = "medium") -> None:
        self.net = net.eval()
        self.dis = DISEstimator(dis_preset)

    @torch.no_grad()
    def estimate(self, image0: torch.Tensor, image1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        check_shape(image0, "image0", channels=3)
        check_shape(image1, "image1", channels=3)
        flow_01, flow_10 = self.dis.estimate(image0, image1)
        return refine_flows(self.net, image0, image1, flow_01, flow_10)


class LearnedRefiner:
    """The Interpolator's refiner stage: the network's U-Net on the synthesized frame."""

    def __init__(self, net: RefineNet) -> None:
        self.net = net.eval()

    @torch.no_grad()
    def __call__(
        self, image0: torch.Tensor, image1: torch.Tensor, projection: Projection, synthesis: Synthesis, t: float
    ) -> torch.Tensor:
        return refine_frame(self.net, image0.float(), image1.float(), projection, synthesis, t)
