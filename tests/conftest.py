import logging
import pathlib
import sys

import pytest

import memc  # noqa: F401 - first, so its thread settings are in place before any test module loads torch

sys.path.insert(0, str(pathlib.Path(__file__).parent))


@pytest.fixture(autouse=True)
def _restore_memc_logging():
    """The CLI points memc's logger at the stderr of the test that ran it; put it back after."""
    logger = logging.getLogger("memc")
    handlers, level = logger.handlers[:], logger.level
    yield
    logger.handlers[:] = handlers
    logger.setLevel(level)
