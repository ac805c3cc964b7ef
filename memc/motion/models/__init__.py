"""Registry of memc's learned models and the loader of their weights.

A weights file is ``{"state_dict", "config", "version"}`` (plain tensors and builtins), read with
``torch.load(..., weights_only=True)``; ``config`` holds the builder's arguments, so a file
describes itself. Lookup order: ``--weights`` > ``$MEMC_WEIGHTS`` > the shipped ``memc/weights/``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from ...config import ESTIMATORS
from ...errors import WeightsError
from ...outputs import atomic_output
from ..estimate import MotionModel

logger = logging.getLogger(__name__)

WEIGHTS_ENV = "MEMC_WEIGHTS"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class ModelSpec:
    """A network: how to build it from a weights file's ``config``. Its weights file name and
    whether ``auto`` picks it live in the estimator registry (``config.ESTIMATORS``)."""

    name: str
    builder: Callable[..., torch.nn.Module]
    stride: int


def _build_refine(**config) -> torch.nn.Module:
    from .refine import RefineNet

    return RefineNet(**config)


MODELS = {"learned": ModelSpec("learned", _build_refine, 8)}


def list_models() -> list[str]:
    return sorted(MODELS)


def shipped_weights(name: str = "learned") -> Path:
    """Where the package keeps the weights of model ``name`` (the repo's ``weights/`` folder)."""
    import memc.weights

    return Path(memc.weights.__file__).parent / ESTIMATORS[name].weights


def find_weights(weights: str | os.PathLike | None = None, name: str = "learned") -> Path:
    """The first of --weights, $MEMC_WEIGHTS, the shipped file; WeightsError naming all tried if none exists."""
    candidates = []
    if weights is not None:
        candidates.append(("--weights", Path(weights)))
    if os.environ.get(WEIGHTS_ENV):
        candidates.append((f"${WEIGHTS_ENV}", Path(os.environ[WEIGHTS_ENV])))
    candidates.append(("shipped", shipped_weights(name)))
    if weights is not None or os.environ.get(WEIGHTS_ENV):
        # an explicit choice that does not exist is an error, not a silent fallback to the shipped file
        source, path = candidates[0]
        if not path.is_file():
            raise WeightsError(
                f"{source}: weights file not found: {path} (train with `memc train CONFIG` or use --flow dis)"
            )
        return path
    path = candidates[-1][1]
    if not path.is_file():
        raise WeightsError(
            f"no weights for model {name!r}: searched --weights (not given), ${WEIGHTS_ENV} (not set), {path}; "
            "train them with `memc train CONFIG`, or use --flow dis"
        )
    return path


def load_model(name: str = "learned", weights: str | os.PathLike | None = None) -> torch.nn.Module:
    """Build model ``name`` from its weights file (on the CPU, in eval mode)."""
    if name not in MODELS:
        raise WeightsError(f"model {name!r} is not one of {', '.join(list_models())}")
    path = find_weights(weights, name)
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        model = MODELS[name].builder(**checkpoint["config"])
        model.load_state_dict(checkpoint["state_dict"])
    except Exception as exc:  # noqa: BLE001 - any file can be handed over as weights; each failure is one line
        reason = " ".join(str(exc).split())[:200]
        raise WeightsError(
            f"{path} is not a memc weights file for model {name!r} (or it is damaged): {type(exc).__name__}: {reason}"
        ) from exc
    logger.info("loaded %s weights from %s", name, path)
    return model.eval()


def build_learned(
    device: torch.device | str, *, dis_preset: str = "medium", weights: str | os.PathLike | None = None
) -> MotionModel:
    """The ``learned`` registry entry: estimator and refiner sharing one network on ``device``;
    raises WeightsError when its weights do not load."""
    from .learned import LearnedEstimator, LearnedRefiner

    net = load_model("learned", weights).to(device)
    return MotionModel(LearnedEstimator(net, dis_preset=dis_preset), LearnedRefiner(net), fp16=True)


def save_weights(model: torch.nn.Module, path: str | os.PathLike, extra: dict | None = None) -> None:
    """Write a self-describing weights file: plain state_dict, builder config, format version."""
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_output(path) as tmp:
        torch.save({"state_dict": state, "config": dict(model.config), "version": FORMAT_VERSION, **(extra or {})}, tmp)
