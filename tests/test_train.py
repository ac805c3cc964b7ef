"""The training pipeline on a tiny synthetic cache: batches, the PSNR loss, a few steps and resuming."""

from __future__ import annotations

import json
import math

import numpy as np
import torch
from synthetic import Scene

from memc.motion.models import load_model
from memc.motion.warp import backward_warp
from memc.train.data import Batches
from memc.train.loop import psnr_loss, train

CROP, SIZE = 96, 48


def _cache(folder, samples: int = 3, seed: int = 0):
    """Windows of 5 frames of synthetic scenes (moving background, moving square) as the cache holds them."""
    windows = []
    for k in range(samples):
        scene = Scene(height=CROP, width=CROP, bg_velocity=(1.5, 0.75), fg_velocity=(-2.0, 1.0), size=30, seed=k)
        windows.append(np.stack([scene.frame_u8(i) for i in range(5)]))
    path = folder / f"windows_{samples}_{CROP}_s{seed}.npy"
    np.save(path, np.stack(windows))
    return path


def test_batches_cut_flow_and_images_together(tmp_path):
    batches = Batches(_cache(tmp_path), batch=6, size=SIZE, seed=0)
    image0, image1, target, t, flow_01, flow_10 = next(batches)
    for x in (image0, image1, target):
        assert x.shape == (6, 3, SIZE, SIZE) and 0 <= float(x.min()) and float(x.max()) <= 1
    assert flow_01.shape == flow_10.shape == (6, 2, SIZE, SIZE)
    assert set(t.flatten().tolist()) <= {0.25, 0.5, 0.75}
    # The flow was estimated on the whole crop and cut with the images: warping image1 by it
    # explains image0 far better than no motion does (the scenes move 1.7-7 px between inputs).
    inner = (slice(None), slice(None), slice(6, -6), slice(6, -6))
    moved = (backward_warp(image1, flow_01) - image0)[inner].abs().mean()
    still = (image1 - image0)[inner].abs().mean()
    assert moved < 0.35 * still, (float(moved), float(still))


def test_psnr_loss_is_minus_mean_psnr_over_100():
    a = torch.zeros(2, 3, 8, 8)
    b = torch.stack((torch.full((3, 8, 8), 0.1), torch.full((3, 8, 8), 0.01)))
    expected = -(10 * math.log10(1 / (0.01 + 1e-5)) + 10 * math.log10(1 / (1e-4 + 1e-5))) / 2 / 100
    assert abs(float(psnr_loss(a, b)) - expected) < 1e-5


def test_train_steps_save_and_resume(tmp_path):
    threads = torch.get_num_threads()  # train() sets the thread count and torch's seed from its config
    rng = torch.get_rng_state()
    try:
        _train_twice(tmp_path)
    finally:
        torch.set_num_threads(threads)
        torch.set_rng_state(rng)


def _train_twice(tmp_path):
    _cache(tmp_path)
    config = {
        "name": "tiny",
        "data": str(tmp_path / "no_data"),
        "cache_dir": str(tmp_path),
        "runs_dir": str(tmp_path / "runs"),
        "samples": 3,
        "crop": CROP,
        "size": SIZE,
        "batch": 2,
        "steps": 2,
        "lr": 1e-3,
        "psnr_weight": 0.5,
        "eval_every": 1000,
        "model": {"flow_width": 8, "synthesis_widths": [4, 8, 8, 8]},
    }
    weights = train(config)
    run = tmp_path / "runs" / "tiny"
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == 2 and math.isfinite(log[-1]["loss"])
    first = load_model("learned", weights).state_dict()
    assert torch.load(weights, weights_only=True)["step"] == 2
    # Resuming continues from the checkpoint's step instead of starting over.
    weights = train({**config, "steps": 4})
    assert torch.load(weights, weights_only=True)["step"] == 4
    assert any(not torch.equal(first[k], v) for k, v in load_model("learned", weights).state_dict().items())
