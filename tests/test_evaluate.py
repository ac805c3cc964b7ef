"""memc eval: metrics against hand-computed values, the protocol on tiny generated clips, the CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from media import write_clip
from synthetic import Scene

from memc.cli import cli
from memc.evaluate import blend, evaluate, find_clips, interpolation_error, interpolator_predictor, psnr, ssim
from memc.motion.interpolate import Interpolator

SHARED_DEV = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "dev"


def moving_texture_clip(path: Path, frames: int = 9) -> None:
    """160 x 120: a textured background moving (2, 1) px/frame under a square moving (-3, 1.25)."""
    scene = Scene(bg_velocity=(2.0, 1.0), fg_velocity=(-3.0, 1.25))
    write_clip(path, [scene.frame_u8(k) for k in range(frames)], fps=24)


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("clips")
    moving_texture_clip(folder / "texture.mp4")
    return folder


def test_metrics_known_values():
    a = torch.zeros(1, 3, 32, 32)
    b = torch.full((1, 3, 32, 32), 10 / 255)
    assert psnr(a, a) == math.inf
    assert psnr(a, b) == pytest.approx(10 * math.log10(255**2 / 100), abs=1e-9)
    assert interpolation_error(a, b) == pytest.approx(10.0, abs=1e-9)
    assert ssim(b, b) == pytest.approx(1.0, abs=1e-12)
    noisy = (b + 0.05 * torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    assert 0 < ssim(noisy, b) < 0.9


def test_default_protocol_and_counts(clip_dir):
    (clip,) = find_clips(clip_dir)
    assert (clip.stride, clip.times) == (2, (0.5,))
    report = evaluate(clip_dir, {"blend": blend, "dis": interpolator_predictor(Interpolator("cpu", "dis"))})
    summary = report.summary()["methods"]
    # 9 frames, stride 2: inputs (0,2) (2,4) (4,6) (6,8) -> 4 scored frames
    assert summary["dis"]["mean"]["frames"] == 4
    # motion of several pixels: warping must clearly beat blending (about 5 dB on this scene, 2 asserted)
    assert summary["dis"]["mean"]["psnr"] > summary["blend"]["mean"]["psnr"] + 2
    assert summary["dis"]["mean"]["ie"] < summary["blend"]["mean"]["ie"]
    assert 0 < summary["blend"]["mean"]["ssim"] < summary["dis"]["mean"]["ssim"] <= 1


def test_manifest_protocol_multi_t(tmp_path):
    folder = tmp_path / "dev"
    folder.mkdir()
    moving_texture_clip(folder / "fast.mp4")
    manifest = {"entries": [{"file": "dev/fast.mp4", "protocol": {"stride": 4, "t": [0.25, 0.5, 0.75]}}]}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    report = evaluate(folder, {"blend": blend}, max_pairs=1)
    entry = report.summary()["methods"]["blend"]["clips"]["fast"]
    assert entry["frames"] == 3 and set(entry["per_t"]) == {"0.25", "0.5", "0.75"}
    # blending is worst in the middle, where both inputs are furthest away
    assert entry["per_t"]["0.5"]["psnr"] < min(entry["per_t"]["0.25"]["psnr"], entry["per_t"]["0.75"]["psnr"])


def test_cli_json(clip_dir):
    result = CliRunner().invoke(
        cli,
        ["eval", str(clip_dir), "--flow", "dis", "--flow", "blend", "--json", "-q", "--max-pairs", "2"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert set(summary["methods"]) == {"dis", "blend"}
    assert summary["methods"]["dis"]["mean"]["frames"] == 2


def test_cli_table_and_bad_clip(clip_dir):
    runner = CliRunner()
    result = runner.invoke(cli, ["eval", str(clip_dir), "--flow", "blend", "-q", "--scale", "0.5"])
    assert result.exit_code == 0 and "| texture |" in result.stdout
    bad = runner.invoke(cli, ["eval", str(clip_dir), "--flow", "blend", "--clips", "nope"])
    assert bad.exit_code != 0 and "nope" in str(bad.exception)


@pytest.mark.skipif(not SHARED_DEV.is_dir(), reason="../shared/data not present")
def test_shared_dev_protocol():
    clips = {c.name: c for c in find_clips(SHARED_DEV)}
    assert clips["openpose_street"].stride == 5 and clips["openpose_street"].times == (0.2, 0.4, 0.6, 0.8)
    report = evaluate(SHARED_DEV, {"blend": blend}, clips=["davis_drift-chicane"], max_pairs=1, scale=0.25)
    assert 20 < report.summary()["methods"]["blend"]["mean"]["psnr"] < 60
