"""--dedup: animation on twos comes out with even motion; a static shot stays bit-still; timing stays exact."""

from __future__ import annotations

import numpy as np
import pytest
from media import decode_rgb, probe, write_clip

from memc.cli import main
from memc.motion.held import DROP, HeldFrames

H, W = 96, 160
FAST = ["--flow", "dis", "--dis-preset", "ultrafast", "--preset", "ultrafast", "-q"]


def run_cli(args, capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in args])
    return exit_info.value.code, capsys.readouterr().err


def drawing(x: float) -> np.ndarray:
    """A white 16 px square at column x over a still dark gradient."""
    yy, xx = np.mgrid[0:H, 0:W]
    image = np.stack([20 + xx * 0.3, 30 + yy * 0.4, 40 + 0 * xx], axis=-1)
    image[40:56, int(x) : int(x) + 16] = 255
    return image.clip(0, 255).astype(np.uint8)


def square_x(frame: np.ndarray) -> float:
    """Column of the square's centre to a fraction of a pixel: centroid of brightness above the
    background, so the blended edges of an in-between frame count by how bright they are."""
    weight = (frame[36:60].mean(axis=2) - 120).clip(0, None)
    return float((weight * np.arange(W)).sum() / weight.sum())


@pytest.fixture(scope="module")
def on_twos(tmp_path_factory):
    """24 frames at 24 fps, each drawing held for two frames, moving 6 px per drawing; x264 CRF 23
    so that a repeated frame is not bit-equal to the one it repeats."""
    path = tmp_path_factory.mktemp("twos") / "twos.mp4"
    write_clip(path, [drawing(20 + 6 * (k // 2)) for k in range(24)], 24, options={"preset": "medium", "crf": "23"})
    return path


def test_repeats_are_found_and_runs_are_bounded():
    a, b = drawing(20), drawing(26)
    noisy = (a.astype(int) + np.random.default_rng(0).integers(-3, 4, a.shape)).clip(0, 255).astype(np.uint8)
    held = HeldFrames(max_run=2)
    kept = [k for k, frame in enumerate([a, noisy, b, b, b, b, b, b, a]) if held.step(frame) != DROP]
    # the noisy copy repeats a; b's run of six keeps every third; a after b is a change
    assert kept == [0, 2, 5, 8]


@pytest.mark.parametrize("dedup, even", [("auto", True), ("off", False)])
def test_on_twos_gives_even_motion(tmp_path, capsys, on_twos, dedup, even):
    out = tmp_path / "out.mkv"
    code, err = run_cli(["convert", on_twos, "--fps", "60", "-o", out, "--dedup", dedup, "-c:v", "ffv1", *FAST], capsys)
    assert code == 0, err
    info = probe(out)
    assert info["rate"] == 60 and info["frames"] == 60  # timing exact: 1 s in, 1 s out
    xs = np.array([square_x(f) for f in decode_rgb(out)])
    steps = np.diff(xs[4:50])  # away from the start and the held end
    spread = steps.std() / steps.mean()
    if even:
        # measured 0.07: every step ~1.2 px (6 px per drawing = per 2/24 s)
        assert spread < 0.25, (spread, steps.round(2))
        assert abs(xs[50] - xs[0] - 6 * 50 / 60 * 12) < 2  # ... and it gets as far as the drawings do
    else:
        assert spread > 0.5, (spread, steps.round(2))  # zero steps alternate with double ones (measured 0.91)


def test_static_shot_stays_bit_still(tmp_path, capsys):
    src = tmp_path / "still.mkv"
    write_clip(src, [drawing(50)] * 12, 24, codec="ffv1")
    out = tmp_path / "out.mkv"
    code, err = run_cli(["convert", src, "--fps", "60", "-o", out, "--dedup", "auto", "-c:v", "ffv1", *FAST], capsys)
    assert code == 0, err
    frames = decode_rgb(out)
    assert len(frames) == 30
    assert all(np.array_equal(frame, frames[0]) for frame in frames)
    source = decode_rgb(src)[0].astype(int)
    assert np.abs(frames[0].astype(int) - source).max() <= 3  # the picture itself, after one more YUV round trip


def test_dedup_option_values(tmp_path, capsys, on_twos):
    code, err = run_cli(["convert", on_twos, "--fps", "60", "-o", tmp_path / "o.mkv", "--dedup", "often"], capsys)
    assert code == 2 and "'often' is not auto, off or a number" in err
    code, err = run_cli(["convert", on_twos, "--fps", "60", "-o", tmp_path / "o.mkv", "--dedup", "300"], capsys)
    assert code == 1 and "--dedup" in err and not (tmp_path / "o.mkv").exists()
    args = ["convert", on_twos, "--fps", "60", "-o", tmp_path / "o.mkv", "--dedup", "6", *FAST[:-1]]
    code, err = run_cli(args, capsys)
    assert code == 0 and "12 repeated frames re-timed" in err, err  # 12 drawings held for 2 frames each
