"""Training of memc's learned estimator: ``python -m memc.train CONFIG.json`` or ``memc train CONFIG``."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    """Run the training described by a JSON config file (resumes its run folder if it exists)."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m memc.train CONFIG.json", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    from .loop import train

    path = train(json.loads(Path(args[0]).read_text()))
    print(path)
    return 0
