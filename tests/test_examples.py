"""The scripts in examples/ run as documented, on tiny generated clips instead of the sample."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from media import probe, write_clip

pytestmark = pytest.mark.slow  # the shipped examples, end to end

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
FAST = ["--flow", "dis", "--dis-preset", "ultrafast", "--preset", "ultrafast"]


def clip(path: Path, n: int = 6) -> Path:
    base = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_clip(path, [np.roll(base, 2 * k, axis=1) for k in range(n)], fps=24)
    return path


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """PATH with a ``memc`` that is this interpreter's memc, whatever else is installed."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "memc"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m memc "$@"\n')
    shim.chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", "MEMC_FLOW": "dis"}


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_batch_sh(tmp_path: Path, env):
    clip(tmp_path / "in" / "x" / "a.mp4")
    clip(tmp_path / "in" / "b.mkv")
    result = subprocess.run(
        ["bash", str(EXAMPLES / "batch.sh"), str(tmp_path / "in"), str(tmp_path / "out"), *FAST],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "2 converted, 0 skipped, 0 failed" in result.stderr
    assert probe(tmp_path / "out" / "x" / "a.mp4")["rate"] == 60
    assert probe(tmp_path / "out" / "b.mkv")["frames"] == 15


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg command line tool")
def test_pipe_sh(tmp_path: Path, env):
    source = clip(tmp_path / "in.mp4", n=12)
    result = subprocess.run(
        ["bash", str(EXAMPLES / "pipe.sh"), str(source), str(tmp_path / "out.mp4"), *FAST],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    info = probe(tmp_path / "out.mp4")
    assert info["rate"] == 60 and abs(info["frames"] - 30) <= 1


def test_api_py(tmp_path: Path, env):
    source = clip(tmp_path / "in.mp4")
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "api.py"), str(source), str(tmp_path / "out.mp4")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert "middle frame: 64x48" in result.stderr
    info = probe(tmp_path / "out.mp4")
    assert info["rate"] == 60 and info["frames"] == 15


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
@pytest.mark.parametrize("script", ["batch.sh", "pipe.sh"])
def test_scripts_parse(script):
    """Syntax check that runs even where pipe.sh itself cannot (no ffmpeg CLI)."""
    subprocess.run(["bash", "-n", str(EXAMPLES / script)], check=True, timeout=30)
