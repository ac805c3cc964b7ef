"""The training loop: the whole interpolation path (DIS -> flow refiner -> projection -> synthesis
-> U-Net) on real triplets, Charbonnier loss on the frame at t, seeded and resumable.

Config (JSON), every key optional except ``name``:

    name, data ("../shared/data"), cache_dir ("cache"), runs_dir ("runs"), seed (0),
    samples (4000), crop (160), size (128), batch (8), steps (6000), lr (3e-4), max_minutes (None),
    include_noncommercial (false), pre_refine_weight (0.25), eval_every (500), eval_clips (all dev),
    eval_pairs (2), eval_scale (0.5), threads (1), model ({} -> RefineNet arguments),
    init (None: a weights file to start from, e.g. the previous run's learned.pt; fine-tuning),
    cache_seed (seed: which crops the cache holds, so a fine-tune can reuse a cache with a new seed)
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from pathlib import Path

import numpy as np
import torch

from ..motion.estimate import MotionModel
from ..motion.interpolate import pair_flows, render
from ..motion.models import save_weights
from ..motion.models.learned import LearnedEstimator, LearnedRefiner, refine_flows
from ..motion.models.refine import RefineNet
from ..outputs import atomic_output
from .data import Batches, build_cache

logger = logging.getLogger(__name__)

DEFAULTS = {
    "data": "../shared/data",
    "cache_dir": "cache",
    "runs_dir": "runs",
    "seed": 0,
    "samples": 4000,
    "crop": 160,
    "size": 128,
    "batch": 8,
    "steps": 6000,
    "lr": 3e-4,
    "max_minutes": None,
    "include_noncommercial": False,
    "pre_refine_weight": 0.25,
    "psnr_weight": 0.0,
    "eval_every": 500,
    "eval_clips": None,
    "eval_pairs": 2,
    "eval_scale": 0.5,
    "threads": 1,
    "model": {},
    "init": None,
    "cache_seed": None,
}


def charbonnier(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    return torch.sqrt((a - b) ** 2 + eps**2).mean()


def psnr_loss(a: torch.Tensor, b: torch.Tensor, floor: float = 1e-5) -> torch.Tensor:
    """Minus the mean per-sample PSNR / 100: the dev score is a mean of per-frame PSNRs, so easy
    samples count as much as hard ones, which Charbonnier alone does not reflect. ``floor`` caps a
    sample's PSNR at 50 dB so near-perfect crops do not dominate the gradient."""
    mse = ((a - b) ** 2).flatten(1).mean(1)
    return (10 * torch.log10(mse + floor)).mean() / 100


def forward(net: RefineNet, image0, image1, t, flow_01, flow_10) -> tuple[torch.Tensor, torch.Tensor]:
    """The frame at t after the refiners, and the classical synthesis before the U-Net."""
    flows = pair_flows(*refine_flows(net, image0, image1, flow_01, flow_10))
    rendered = render(image0, image1, flows, t, LearnedRefiner(net))
    return rendered.image, rendered.synthesis.image


def quick_dev(net: RefineNet, config: dict) -> dict[str, float]:
    """Mean dev PSNR of learned (and dis, for reference) on a few pairs per clip at reduced size."""
    from ..evaluate import evaluate, interpolator_predictor
    from ..motion.interpolate import Interpolator

    dev = Path(config["data"]) / "dev"
    if not dev.is_dir():
        return {}
    net.eval()
    model = MotionModel(LearnedEstimator(net), LearnedRefiner(net))
    predictors = {"learned": interpolator_predictor(Interpolator("cpu", model))}
    with torch.inference_mode():
        report = evaluate(
            dev, predictors, clips=config["eval_clips"], max_pairs=config["eval_pairs"], scale=config["eval_scale"]
        )
    net.train()
    summary = report.summary()["methods"]["learned"]
    return {"dev_psnr": summary["mean"]["psnr"], **{f"psnr/{k}": v["psnr"] for k, v in summary["clips"].items()}}


def train(config: dict) -> Path:
    """Train (or resume) the run ``config['name']``; returns the path of its weights file."""
    config = {**DEFAULTS, **config}
    torch.set_num_threads(int(config["threads"]))
    run = Path(config["runs_dir"]) / config["name"]
    run.mkdir(parents=True, exist_ok=True)
    (run / "config.json").write_text(json.dumps(config, indent=1))
    cache_seed = config["seed"] if config["cache_seed"] is None else config["cache_seed"]
    licence = "_nc" if config["include_noncommercial"] else ""
    cache = Path(config["cache_dir"]) / f"windows_{config['samples']}_{config['crop']}_s{cache_seed}{licence}.npy"
    start = time.time()
    build_cache(
        Path(config["data"]),
        cache,
        samples=config["samples"],
        crop=config["crop"],
        seed=cache_seed,
        include_noncommercial=config["include_noncommercial"],
    )
    logger.info("cache ready: %s (%.0f s)", cache, time.time() - start)

    torch.manual_seed(config["seed"])
    random.seed(config["seed"])
    np.random.seed(config["seed"])
    net = RefineNet(**config["model"])
    if config["init"]:
        net.load_state_dict(torch.load(config["init"], map_location="cpu", weights_only=True)["state_dict"])
        logger.info("initialized from %s", config["init"])
    optimizer = torch.optim.AdamW(net.parameters(), lr=config["lr"], weight_decay=1e-4)
    steps = int(config["steps"])
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda s: min(1.0, (s + 1) / 200) * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps))),
    )
    step, elapsed = 0, 0.0
    checkpoint = run / "checkpoint.pt"
    if checkpoint.is_file():
        state = torch.load(checkpoint, map_location="cpu", weights_only=False)  # our own file: optimizer + RNG state
        net.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        step, elapsed = state["step"], state["elapsed"]
        logger.info("resumed %s at step %d", checkpoint, step)
    batches = Batches(cache, config["batch"], config["size"], seed=config["seed"] + step)
    log = open(run / "log.jsonl", "a")

    def save() -> None:
        with atomic_output(checkpoint) as tmp:
            torch.save(
                {
                    "model": net.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "schedule": schedule.state_dict(),
                    "step": step,
                    "elapsed": elapsed,
                },
                tmp,
            )
        save_weights(net, run / "learned.pt", {"step": step})

    net.train()
    window, tick = [], time.time()
    deadline = None if config["max_minutes"] is None else time.time() + 60 * float(config["max_minutes"])
    while step < steps:
        image0, image1, target, t, flow_01, flow_10 = next(batches)
        image, pre = forward(net, image0, image1, t, flow_01, flow_10)
        loss = charbonnier(image, target) + config["pre_refine_weight"] * charbonnier(pre, target)
        if config["psnr_weight"]:
            loss = loss + config["psnr_weight"] * psnr_loss(image, target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        step += 1
        window.append(
            (float(loss.detach()), float(charbonnier(pre.detach(), target)), float(charbonnier(image.detach(), target)))
        )
        if step % 50 == 0 or step == steps:
            now = time.time()
            elapsed += now - tick
            tick = now
            loss_mean, pre_mean, out_mean = (sum(x) / len(window) for x in zip(*window))
            record = {
                "step": step,
                "loss": loss_mean,
                "charb_pre": pre_mean,
                "charb_out": out_mean,
                "lr": schedule.get_last_lr()[0],
                "elapsed_s": round(elapsed),
            }
            window = []
            if step % int(config["eval_every"]) == 0 or step == steps:
                record.update(quick_dev(net, config))
                tick = time.time()
                save()
            log.write(json.dumps(record) + "\n")
            log.flush()
            logger.info("%s", record)
        if deadline is not None and time.time() > deadline:
            logger.info("max_minutes reached at step %d", step)
            break
    save()
    log.close()
    return run / "learned.pt"
