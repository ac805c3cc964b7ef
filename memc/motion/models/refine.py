"""The networks of the learned estimator: small residual corrections on top of the classical path.

* ``FlowRefiner``: a dilated CNN at 1/4 resolution that corrects an initial (DIS) flow_01 from
  both images, image1 warped by that flow and its photometric error. Its last layer starts at zero,
  so an untrained refiner returns the initial flow unchanged.
* ``SynthesisRefiner``: a small U-Net (stride 8) on the synthesized frame at t. It sees both inputs,
  both warped frames, the blend mask, both projection holes and t, and predicts a correction of the
  blend mask (as a logit) and a residual image:

      mask = sigmoid(logit(mask0) + d),   image_t = image + (mask - mask0) (W0 - W1) + r

  where ``image`` is the synthesizer's frame: ``mask0 W0 + (1 - mask0) W1`` except where its
  bilateral pick took one motion, so ``image_t = mask W0 + (1 - mask) W1 + r`` there.
  (``mask_correction=False`` keeps ``mask = mask0`` and uses only ``r``.) Its last layer starts at
  zero too, so training starts from exactly the classical result.

Both are plain ``nn.Module``s: no I/O, no device choice, no padding (the caller pads to ``STRIDE``).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..warp import backward_warp

STRIDE = 8  # SynthesisRefiner downsamples three times
FLOW_NORM = 8.0  # flow inputs are divided by this (pixels at 1/4 resolution) to stay near unit range


def _conv(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, padding=dilation, dilation=dilation), nn.LeakyReLU(0.1))


def _zero(conv: nn.Conv2d) -> nn.Conv2d:
    nn.init.zeros_(conv.weight)
    nn.init.zeros_(conv.bias)
    return conv


class FlowRefiner(nn.Module):
    """(image0, image1, flow_01) at 1/4 resolution -> corrected flow_01 (N, 2, h, w), pixels."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        self.body = nn.Sequential(
            _conv(3 + 3 + 3 + 1 + 2, width),
            _conv(width, width, dilation=2),
            _conv(width, width, dilation=4),
            _conv(width, width, dilation=8),
            _conv(width, width),
        )
        self.head = _zero(nn.Conv2d(width, 2, 3, padding=1))

    def forward(self, image0: torch.Tensor, image1: torch.Tensor, flow_01: torch.Tensor) -> torch.Tensor:
        warped1 = backward_warp(image1, flow_01)
        error = (warped1 - image0).abs().mean(dim=1, keepdim=True)
        x = torch.cat((image0, image1, warped1, error, flow_01 / FLOW_NORM), dim=1)
        return flow_01 + self.head(self.body(x)) * FLOW_NORM


class SynthesisRefiner(nn.Module):
    """U-Net on the synthesized frame; inputs (N, C, H, W) with H, W multiples of ``STRIDE``."""

    IN_CHANNELS = 3 * 5 + 1 + 2 + 1  # image0, image1, warped0, warped1, image; mask0; hole_t0, hole_t1; t

    def __init__(self, widths: tuple[int, int, int, int] = (12, 24, 32, 48), mask_correction: bool = True) -> None:
        super().__init__()
        # mask_correction=False keeps the classical blend mask and uses only the residual image:
        # on dev, the learned mask correction of run learned_v1 lost more than it gained (weights/README.md).
        self.mask_correction = mask_correction
        # Thin at full resolution, where every channel costs the most (this runs on CPUs too).
        w1, w2, w3, w4 = widths
        self.enc1 = _conv(self.IN_CHANNELS, w1)
        self.enc2 = nn.Sequential(_conv(w1, w2, stride=2), _conv(w2, w2))
        self.enc3 = nn.Sequential(_conv(w2, w3, stride=2), _conv(w3, w3))
        self.enc4 = nn.Sequential(_conv(w3, w4, stride=2), _conv(w4, w4), _conv(w4, w4, dilation=2))
        self.dec3 = _conv(w4 + w3, w3)
        self.dec2 = _conv(w3 + w2, w2)
        self.dec1 = _conv(w2 + w1, w1)
        self.head = _zero(nn.Conv2d(w1, 4, 3, padding=1))

    @staticmethod
    def _up(x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return torch.cat((F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False), skip), dim=1)

    def forward(self, image0, image1, warped0, warped1, image, mask0, hole_t0, hole_t1, t) -> torch.Tensor:
        """All (N, C, H, W); ``t`` a float or (N, 1, 1, 1). Returns the refined frame (N, 3, H, W)."""
        n, _, h, w = image0.shape
        t_map = torch.as_tensor(t, device=image0.device, dtype=image0.dtype).reshape(-1, 1, 1, 1).expand(n, 1, h, w)
        x = torch.cat((image0, image1, warped0, warped1, image, mask0, hole_t0, hole_t1, t_map), dim=1)
        e1 = self.enc1(x)
        e2 = self.enc2(e1)
        e3 = self.enc3(e2)
        e4 = self.enc4(e3)
        d3 = self.dec3(self._up(e4, e3))
        d2 = self.dec2(self._up(d3, e2))
        d1 = self.dec1(self._up(d2, e1))
        out = self.head(d1)
        correction = out[:, 1:]
        if self.mask_correction:
            mask = torch.sigmoid(torch.logit(mask0.clamp(1e-4, 1 - 1e-4)) + out[:, :1])
            correction = correction + (mask - mask0) * (warped0 - warped1)
        # on top of the synthesizer's frame (mask0's blend, with its bilateral picks)
        return image + correction


class RefineNet(nn.Module):
    """The learned estimator's trainable parts; ``config`` rebuilds it from a weights file."""

    def __init__(
        self,
        flow_width: int = 32,
        synthesis_widths: tuple[int, ...] = (12, 24, 32, 48),
        flow_factor: int = 4,
        mask_correction: bool = True,
    ) -> None:
        super().__init__()
        self.config = {
            "flow_width": flow_width,
            "synthesis_widths": list(synthesis_widths),
            "flow_factor": flow_factor,
            "mask_correction": mask_correction,
        }
        self.flow_factor = flow_factor
        self.flow = FlowRefiner(flow_width)
        self.synthesis = SynthesisRefiner(tuple(synthesis_widths), mask_correction)
