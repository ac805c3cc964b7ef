import pathlib
import sys

import memc  # noqa: F401 - first, so its thread settings are in place before any test module loads torch

sys.path.insert(0, str(pathlib.Path(__file__).parent))
