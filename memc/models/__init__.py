"""Registry of memc's learned models and the loader of their weights.

A weights file is ``{"state_dict", "config", "version"}`` (plain tensors and builtins), read with
``torch.load(..., weights_only=True)``; ``config`` holds the builder's arguments, so a file
describes itself. Lookup order: ``--weights`` > ``$MEMC_WEIGHTS`` > the shipped ``memc/weights/``.
"""

from __future__ import annotations

import logging
import os
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import WeightsError

logger = logging.getLogger(__name__)

WEIGHTS_ENV = "MEMC_WEIGHTS"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class ModelSpec:
    name: str
    builder: Callable[..., torch.nn.Module]
    weights_file: str  # inside the memc.weights package
    stride: int
    # Whether ``--flow auto`` picks this model when its weights load. Only a model that beats DIS on
    # the dev protocol (weights/README.md) earns it: otherwise auto would be slower for nothing.
    auto: bool = False


def _build_refine(**config) -> torch.nn.Module:
    from .refine import RefineNet

    return RefineNet(**config)


# learned v1 ties DIS on dev (31.78 vs 31.79 dB) at 2-4x the cost: selectable, not the default.
MODELS = {"learned": ModelSpec("learned", _build_refine, "learned.pt", 8, auto=False)}


def list_models() -> list[str]:
    return sorted(MODELS)


def shipped_weights(name: str = "learned") -> Path:
    """Where the package keeps the weights of model ``name`` (the repo's ``weights/`` folder)."""
    import memc.weights

    return Path(memc.weights.__file__).parent / MODELS[name].weights_file


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
    except (OSError, RuntimeError, KeyError, TypeError, ValueError, EOFError, pickle.UnpicklingError) as exc:
        raise WeightsError(
            f"weights file {path} is corrupt or does not fit model {name!r}: {type(exc).__name__}: {exc}"
        ) from exc
    logger.info("loaded %s weights from %s", name, path)
    return model.eval()


def load_estimator(device: torch.device | str, weights: str | os.PathLike | None = None, *, dis_preset: str = "medium"):
    """The learned estimator on ``device``: raises WeightsError when its weights do not load."""
    from .learned import LearnedEstimator

    return LearnedEstimator(load_model("learned", weights).to(device), dis_preset=dis_preset)


def save_weights(model: torch.nn.Module, path: str | os.PathLike, extra: dict | None = None) -> None:
    """Write a self-describing weights file: plain state_dict, builder config, format version."""
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    torch.save({"state_dict": state, "config": dict(model.config), "version": FORMAT_VERSION, **(extra or {})}, path)
