"""Large-displacement candidates: block matching where the flow fails, fused into the flow per pixel.

Coarse-to-fine estimators (DIS among them) lose an object that is smaller than its own motion: at
the coarse levels where a long vector could be found the object has been averaged away, and at the
fine levels the search no longer reaches it. A ball 10 px across moving 25 px takes the
background's vector and vanishes from the interpolated frame.

This stage looks for such places and searches them at the flow's own resolution, where small
objects still exist:

1. the photometric residual ``|image_a(x) - image_b(x + flow_ab(x))|`` pooled over BLOCK x BLOCK
   blocks; the worst textured blocks (at most MAX_BLOCKS) are searched;
2. exhaustive integer SSD search in a window of +-RADIUS px around the block's current vector (one
   grouped convolution for all blocks at once), then a parabola fit for the sub-pixel part;
3. far candidates: an object the flow lost is a failing block in *both* frames (at its place in
   each), so each block of image_a is also matched against the failing blocks of the other
   direction, in image_b (one matrix product), and searched +-STEP px around the best of them:
   a vector of any length, at the cost of a few dozen SSDs per block. The lower SSD of the two
   searches wins;
4. a block's match counts only where it explains the block far better than the current flow;
   its vector is offered to the pixels of and around the block;
5. fusion per pixel: a pixel takes the best offered vector where its local (3x3) photometric error
   is clearly smaller than under the current flow. Background pixels keep their flow, the object's
   pixels get the object's vector;
6. a fused vector stays only where the other direction confirms it (forward-backward check).

Cost is bounded by MAX_BLOCKS, whatever the frame size. Images (N, C, H, W) in [0, 1], RGB: a ball
often has the brightness of the grass it crosses, not its colour. Flow in pixels, channel 0 = x.
Plain torch, no loops over pixels or blocks, any device.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from . import occlusion
from .warp import backward_warp, sample_at

BLOCK = 8  # px; a small object must fill most of a block to be matched
STEP = 4  # px between block origins: blocks overlap by half, so an object is never split four ways
RADIUS = 24  # px searched around a block's current vector, each way
MAX_BLOCKS = 128  # worst blocks searched per image: bounds the cost
MIN_RESIDUAL = 0.04  # mean |residual| of a block below which the flow is believed
MIN_CONTRAST = 0.005  # standard deviation below which a block is too flat to match (a flat ball still matches)
GAIN = 0.35  # a match must bring the block's mean squared error under GAIN x the flow's
FUSE_MARGIN = 0.6  # a pixel takes the offered vector where its error is under FUSE_MARGIN x the flow's
CONFIRM = 1.5  # px: forward-backward error under which the other direction confirms a fused vector


def _gather(image: torch.Tensor, batch: torch.Tensor, top: torch.Tensor, left: torch.Tensor, size: int) -> torch.Tensor:
    """(K, C, size, size) patches of ``image`` (N, C, H, W) with top-left corners (top, left), border-replicated."""
    n, c, h, w = image.shape
    offsets = torch.arange(size, device=image.device)
    ys = (top[:, None] + offsets).clamp(0, h - 1)
    xs = (left[:, None] + offsets).clamp(0, w - 1)
    index = (batch[:, None, None] * h + ys[:, :, None]) * w + xs[:, None, :]  # (K, size, size) flat pixel index
    # one index_select per channel plane: the planes are a view for N = 1, no copy of the image
    planes = image.transpose(0, 1).reshape(c, n * h * w)
    return planes.index_select(1, index.flatten()).view(c, *index.shape).transpose(0, 1)


def _subpixel(cost: torch.Tensor, index: torch.Tensor, axis: int) -> torch.Tensor:
    """Parabola vertex offset in [-0.5, 0.5] along ``axis`` (0 = y, 1 = x) of (K, S, S) costs at (K, 2) argmins."""
    k, s = cost.shape[0], cost.shape[1]
    centre = index[:, axis]
    lo, hi = (centre - 1).clamp(0, s - 1), (centre + 1).clamp(0, s - 1)
    rows = torch.arange(k, device=cost.device)

    def at(pos: torch.Tensor) -> torch.Tensor:
        return cost[rows, pos, index[:, 1]] if axis == 0 else cost[rows, index[:, 0], pos]

    c_lo, c_0, c_hi = at(lo), at(centre), at(hi)
    curvature = c_lo - 2 * c_0 + c_hi
    offset = 0.5 * (c_lo - c_hi) / curvature.clamp(min=1e-9)
    inside = (centre > 0) & (centre < s - 1) & (curvature > 1e-9)
    return torch.where(inside, offset.clamp(-0.5, 0.5), torch.zeros_like(offset))


def _correlate(window: torch.Tensor, template: torch.Tensor) -> torch.Tensor:
    """Cross-correlation (K, S - B + 1, S - B + 1) of each window (K, C, S, S) with its template (K, C, B, B):
    one grouped convolution. oneDNN's grouped convolution is about 3x slower than PyTorch's own for
    these shapes on a CPU, so it is bypassed for this call."""
    k, c, s, _ = window.shape
    previous = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = False
    try:
        return F.conv2d(window.reshape(1, k * c, s, s).contiguous(), template.contiguous(), groups=k)[0]
    finally:
        torch.backends.mkldnn.enabled = previous


def _cell_means(x: torch.Tensor) -> torch.Tensor:
    """Means over STEP x STEP cells of (N, C, H, W) ``x`` (avg_pool2d(STEP, stride=STEP), a partial
    cell at the edge dropped): a row sum then a column sum of reshaped views, 1.7x faster on a CPU."""
    n, c, h, w = x.shape
    h, w = h // STEP * STEP, w // STEP * STEP
    rows = x[..., :h, :w].reshape(n, c, h, w // STEP, STEP).sum(-1)
    return rows.view(n, c, h // STEP, STEP, w // STEP).sum(3) / STEP**2


def _box_sums(x: torch.Tensor, size: int) -> torch.Tensor:
    """Sums over every ``size`` x ``size`` window of (K, S, S) ``x``: (K, S - size + 1, S - size + 1),
    from a summed-area table (in float64, so the differences of large sums stay exact to float32)."""
    table = F.pad(x.double().cumsum(1).cumsum(2), (1, 0, 1, 0))
    sums = table[:, size:, size:] - table[:, :-size, size:] - table[:, size:, :-size] + table[:, :-size, :-size]
    return sums.to(x.dtype)


@dataclass(frozen=True)
class Blocks:
    """The blocks of one direction where its flow fails worst (``worst_blocks``), K of them."""

    batch: torch.Tensor  # (K,) batch item
    top: torch.Tensor  # (K,) px
    left: torch.Tensor  # (K,) px
    guess: torch.Tensor  # (K, 2) the flow's mean vector over the block, rounded to whole px
    flow_mse: torch.Tensor  # (K,) mean squared residual under the flow
    template: torch.Tensor  # (K, C, BLOCK, BLOCK) the block's pixels

    @staticmethod
    def none(image: torch.Tensor) -> Blocks:
        empty = torch.zeros(0, dtype=torch.long, device=image.device)
        nothing = torch.zeros(0, device=image.device, dtype=image.dtype)
        template = torch.zeros(0, image.shape[1], BLOCK, BLOCK, device=image.device, dtype=image.dtype)
        return Blocks(empty, empty, empty, empty.view(0, 2), nothing, template)


def worst_blocks(image_a: torch.Tensor, flow_ab: torch.Tensor, residual: torch.Tensor) -> Blocks:
    """The worst textured blocks (at most MAX_BLOCKS) of ``flow_ab`` (``residual`` = image_a - image_b
    warped by it), where the block search looks."""
    n, c, h, w = image_a.shape
    hb, wb = max(0, (h - BLOCK) // STEP + 1), max(0, (w - BLOCK) // STEP + 1)
    if hb == 0 or wb == 0:
        return Blocks.none(image_a)
    # every block statistic in one pooling; a BLOCK x BLOCK block at a multiple of STEP is the mean
    # of 2 x 2 cells of STEP x STEP, so pooling cells first reads each pixel once instead of four times
    pieces = (residual.abs().mean(1, keepdim=True), (residual**2).mean(1, keepdim=True), image_a, image_a**2, flow_ab)
    stats = torch.cat([_cell_means(x) for x in pieces], 1)  # cells first: 1/16 of the size
    stats = F.avg_pool2d(stats, BLOCK // STEP, stride=1)
    mean_abs, flow_mse = stats[:, 0:1], stats[:, 1:2]
    contrast = (stats[:, 2 + c : 2 + 2 * c] - stats[:, 2 : 2 + c] ** 2).clamp(min=0).mean(1, keepdim=True).sqrt()
    score = torch.where((mean_abs > MIN_RESIDUAL) & (contrast > MIN_CONTRAST), mean_abs, torch.zeros_like(mean_abs))
    scores, cells = score.view(n, hb * wb).topk(min(MAX_BLOCKS, hb * wb), dim=1)  # each image's worst
    chosen = scores > 0
    if not bool(chosen.any()):
        return Blocks.none(image_a)
    batch = torch.arange(n, device=image_a.device)[:, None].expand_as(cells)[chosen]
    cell = cells[chosen]
    by, bx = cell // wb, cell % wb
    top, left = by * STEP, bx * STEP
    guess = stats[:, 2 + 2 * c :].permute(0, 2, 3, 1)[batch, by, bx].round().long()
    return Blocks(batch, top, left, guess, flow_mse[batch, 0, by, bx], _gather(image_a, batch, top, left, BLOCK))


def _search(
    blocks: Blocks, image_b: torch.Tensor, centre: torch.Tensor, radius: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exhaustive SSD search of each block's template in ``image_b`` within +-radius px of its
    displacement ``centre`` (K, 2) (whole px): the best vector (K, 2), sub-pixel, and its SSD (K,)
    per channel and pixel."""
    template, c = blocks.template, blocks.template.shape[1]
    size = BLOCK + 2 * radius
    window = _gather(
        image_b, blocks.batch, blocks.top + centre[:, 1] - radius, blocks.left + centre[:, 0] - radius, size
    )
    # SSD(d) = sum T^2 - 2 corr(W, T) + sum W^2, every displacement of every block in one grouped conv
    corr = _correlate(window, template)  # (K, 2R+1, 2R+1)
    energy = _box_sums((window**2).sum(1), BLOCK)  # sum W^2 under the template at every displacement
    ssd = ((template**2).sum(dim=(1, 2, 3))[:, None, None] - 2 * corr + energy).clamp(min=0) / (c * BLOCK**2)
    best = ssd.flatten(1).argmin(dim=1)
    span = 2 * radius + 1
    index = torch.stack((best // span, best % span), dim=1)  # (K, 2) as (y, x)
    cost = ssd.flatten(1).gather(1, best[:, None])[:, 0]
    dy = index[:, 0] - radius + _subpixel(ssd, index, 0)
    dx = index[:, 1] - radius + _subpixel(ssd, index, 1)
    return torch.stack((centre[:, 0] + dx, centre[:, 1] + dy), dim=1).to(template.dtype), cost


def _far_centres(blocks: Blocks, others: Blocks) -> tuple[torch.Tensor, torch.Tensor]:
    """Per block, the displacement (K, 2) to the failing block of the other direction (``others``,
    blocks of image_b) whose pixels match its own best: a candidate of any length; and (K,) whether
    its batch item has any such block."""
    a, b = blocks.template.flatten(1), others.template.flatten(1)
    ssd = (a**2).sum(1)[:, None] + (b**2).sum(1)[None] - 2 * a @ b.T  # (K, K_other)
    same_item = blocks.batch[:, None] == others.batch[None]
    j = torch.where(same_item, ssd, torch.full_like(ssd, float("inf"))).argmin(dim=1)
    return torch.stack((others.left[j] - blocks.left, others.top[j] - blocks.top), dim=1), same_item.any(dim=1)


def block_candidates(
    image_b: torch.Tensor, blocks: Blocks, others: Blocks | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Vectors found by block search for ``blocks`` (``worst_blocks`` of image_a's flow) in image_b.

    Each block is searched within +-RADIUS px of its flow's vector and, given ``others`` (the worst
    blocks of the other direction, in image_b), within +-STEP px of the one of them it matches best:
    an object that the flow lost shows as a failing block in both frames, however far it went.
    Returns, per accepted block, its batch item, top and left (K,) and its vector (K, 2) in pixels.
    """
    if blocks.batch.numel() == 0:
        return blocks.batch, blocks.top, blocks.left, blocks.template.new_zeros(0, 2)
    found, cost = _search(blocks, image_b, blocks.guess, RADIUS)
    if others is not None and others.batch.numel() > 0:
        centres, valid = _far_centres(blocks, others)
        far, far_cost = _search(blocks, image_b, centres, STEP)
        better = valid & (far_cost < cost)
        found, cost = torch.where(better[:, None], far, found), torch.where(better, far_cost, cost)
    accept = cost < GAIN * blocks.flow_mse
    return blocks.batch[accept], blocks.top[accept], blocks.left[accept], found[accept]


def _fuse(
    image_a: torch.Tensor,
    image_b: torch.Tensor,
    flow_ab: torch.Tensor,
    residual: torch.Tensor,
    candidates: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor],
) -> torch.Tensor:
    """Per pixel, the best block vector found nearby where it explains the pixel clearly better than the flow.

    Each found vector is tried on a patch of 2 BLOCK x 2 BLOCK px around its block; a pixel covered
    by several patches keeps the vector with the smallest 3 x 3 error (a scatter-min), so a small
    object's pixels take its vector and the background around it keeps its own.
    """
    batch, top, left, vectors = candidates  # block_candidates
    if batch.numel() == 0:
        return flow_ab
    n, _, h, w = image_a.shape
    side = 2 * BLOCK + 2  # the patch plus a 1 px margin for the 3 x 3 window
    offsets = torch.arange(side, device=image_a.device) - BLOCK // 2 - 1
    ys = (top[:, None] + offsets)[:, :, None].expand(-1, side, side)  # (K, side, side)
    xs = (left[:, None] + offsets)[:, None, :].expand(-1, side, side)
    b, rows, cols = batch[:, None, None], ys.clamp(0, h - 1), xs.clamp(0, w - 1)  # border-replicated pixels
    here = image_a[b, :, rows, cols].permute(0, 3, 1, 2)
    there = sample_at(image_b, batch, ys + vectors[:, 1, None, None], xs + vectors[:, 0, None, None])
    there = there.permute(0, 3, 1, 2)
    error = F.avg_pool2d((here - there).abs().mean(1, keepdim=True), 3, stride=1)[:, 0]  # (K, side - 2, side - 2)
    # the flow's own 3 x 3 error at the same pixels (as a replicate-padded box mean over the whole
    # frame would give, at the patches' pixels only)
    flow_error = residual[b, :, rows, cols].abs().mean(-1)
    flow_error = F.avg_pool2d(flow_error[:, None], 3, stride=1)[:, 0]
    ys, xs = ys[:, 1:-1, 1:-1], xs[:, 1:-1, 1:-1]
    inside = (ys >= 0) & (ys < h) & (xs >= 0) & (xs < w)
    index = (batch[:, None, None] * (h * w) + ys.clamp(0, h - 1) * w + xs.clamp(0, w - 1)).flatten()
    error = torch.where(inside, error, torch.full_like(error, float("inf"))).flatten()
    best = torch.full((n * h * w,), float("inf"), device=error.device, dtype=error.dtype)
    best = best.scatter_reduce(0, index, error, reduce="amin")
    # a pixel takes the vector of the patch that explains it best, if that beats the flow clearly
    take = (error <= best[index]) & (error < FUSE_MARGIN * flow_error.flatten())
    per_pixel = vectors[:, None, :].expand(-1, error.numel() // vectors.shape[0], 2).reshape(-1, 2)
    fused = flow_ab.permute(0, 2, 3, 1).reshape(n * h * w, 2).clone()
    fused[index[take]] = per_pixel[take]
    return fused.view(n, h, w, 2).permute(0, 3, 1, 2).contiguous()


def add_large_motion(
    image0: torch.Tensor, image1: torch.Tensor, flow_01: torch.Tensor, flow_10: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Both flows (N, 2, H, W) with block-search vectors fused in where they explain the pair better.

    A fused vector must be confirmed by the other direction (forward-backward error under
    CONFIRM px); a match that only one side supports is noise or an occlusion, and is dropped.
    """
    residual_0 = image0 - backward_warp(image1, flow_01)
    residual_1 = image1 - backward_warp(image0, flow_10)
    blocks_0, blocks_1 = worst_blocks(image0, flow_01, residual_0), worst_blocks(image1, flow_10, residual_1)
    fused_01 = _fuse(image0, image1, flow_01, residual_0, block_candidates(image1, blocks_0, blocks_1))
    fused_10 = _fuse(image1, image0, flow_10, residual_1, block_candidates(image0, blocks_1, blocks_0))
    if fused_01 is flow_01 and fused_10 is flow_10:
        return flow_01, flow_10
    keep_01 = occlusion.consistency_error(fused_01, fused_10) < CONFIRM
    keep_10 = occlusion.consistency_error(fused_10, fused_01) < CONFIRM
    return torch.where(keep_01, fused_01, flow_01), torch.where(keep_10, fused_10, flow_10)
