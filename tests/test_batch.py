"""Batches: a tree of good clips, a broken one and a text file -> the same tree of outputs.

The first case runs the real CLI (exit code, stderr); the others call ``run_batch`` in-process
with one shared DIS interpolator, as the CLI does, to stay fast.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from media import probe, write_clip

from memc.batch import discover, is_video, run_batch
from memc.config import ConvertConfig, EncodeOptions
from memc.errors import ExitStatus, InputError
from memc.motion.interpolate import Interpolator

FAST = ["--flow", "dis", "--dis-preset", "ultrafast", "--preset", "ultrafast"]
GOOD = ["a/one.mp4", "a/b/two.mkv", "three.mp4"]


def moving(n: int = 6, seed: int = 0) -> list[np.ndarray]:
    base = np.random.default_rng(seed).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    return [np.roll(base, 2 * k, axis=1) for k in range(n)]  # 6 frames at 24 fps -> 15 at 60


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """Good clips in subfolders, a .mp4 of random bytes, a truncated .mp4 header, a text file."""
    root = tmp_path / "in"
    for i, name in enumerate(GOOD):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        write_clip(root / name, moving(seed=i))
    (root / "c").mkdir()
    (root / "c" / "broken.mp4").write_bytes(np.random.default_rng(9).integers(0, 256, 4000, np.uint8).tobytes())
    (root / "c" / "cut.mp4").write_bytes((root / "three.mp4").read_bytes()[:200])  # header cut short
    (root / "notes.txt").write_text("not a video\n")
    (root / "c" / "README").write_text("no extension, probed, still not a video\n" * 20)
    return root


@pytest.fixture(scope="module")
def interpolator() -> Interpolator:
    return Interpolator(device="cpu", flow="dis", dis_preset="ultrafast")


CONFIG = ConvertConfig(fps=60, encode=EncodeOptions(preset="ultrafast"))


def files_under(folder: Path) -> set[str]:
    """Every entry, hidden ones and folders included, relative to ``folder``."""
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*")}


@pytest.mark.slow
def test_cli_batch_converts_the_good_names_the_broken(tree: Path, tmp_path: Path):
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "memc", "convert", str(tree), "--fps", "60", "-o", str(out), *FAST],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == ExitStatus.PARTIAL, result.stderr
    assert result.stdout == ""
    assert f"memc: error: {tree / 'c' / 'broken.mp4'}: " in result.stderr
    assert f"memc: error: {tree / 'c' / 'cut.mp4'}: " in result.stderr
    assert "notes.txt" not in result.stderr and "README" not in result.stderr  # skipped silently
    assert "3 converted, 0 skipped, 2 failed in " in result.stderr
    assert "Traceback" not in result.stderr
    # The good clips at their relative paths, and nothing else: no temp files, no empty c/.
    assert files_under(out) == {"a", "a/b", "three.mp4", *GOOD}
    for name in GOOD:
        info = probe(out / name)
        assert info["rate"] == 60 and info["frames"] == 15


def test_rerun_skips_finished_outputs(tree: Path, tmp_path: Path, interpolator, capsys):
    out = tmp_path / "out"
    assert run_batch([tree], out, CONFIG, interpolator) == ExitStatus.PARTIAL
    finished = {name: (out / name).stat().st_mtime_ns for name in GOOD}
    (out / "a" / "one.mp4").unlink()  # as if the first run had stopped before this file
    capsys.readouterr()
    assert run_batch([tree], out, CONFIG, interpolator) == ExitStatus.PARTIAL
    err = capsys.readouterr().err
    assert "1 converted, 2 skipped, 2 failed" in err
    assert (out / "a" / "one.mp4").exists()
    assert all((out / n).stat().st_mtime_ns == t for n, t in finished.items() if n != "a/one.mp4")


def test_overwrite_converts_again(tree: Path, tmp_path: Path, interpolator, capsys):
    out = tmp_path / "out"
    run_batch([tree / "three.mp4", tree / "a" / "one.mp4"], out, CONFIG, interpolator)
    capsys.readouterr()
    assert (
        run_batch([tree / "three.mp4", tree / "a" / "one.mp4"], out, CONFIG, interpolator, overwrite=True)
        == ExitStatus.OK
    )
    assert "2 converted, 0 skipped, 0 failed" in capsys.readouterr().err
    assert files_under(out) == {"three.mp4", "one.mp4"}  # named files land by basename


def test_glob_chooses_files(tree: Path, tmp_path: Path, interpolator, capsys):
    out = tmp_path / "out"
    assert run_batch([tree], out, CONFIG, interpolator, pattern="*.mkv") == ExitStatus.OK
    assert files_under(out) == {"a", "a/b", "a/b/two.mkv"}
    assert "1 converted, 0 skipped, 0 failed" in capsys.readouterr().err


def test_quiet_prints_only_failures(tree: Path, tmp_path: Path, interpolator, capsys):
    run_batch([tree / "c" / "broken.mp4", tree / "three.mp4"], tmp_path / "out", CONFIG, interpolator, quiet=True)
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [line for line in err.strip().splitlines() if line.startswith("memc: error: ")]
    assert "broken.mp4" in err
    assert files_under(tmp_path / "out") == {"three.mp4"}


def test_failure_after_the_output_was_opened_leaves_nothing(tree: Path, tmp_path: Path, interpolator, capsys):
    """rawvideo fits Matroska but not MP4: the .mp4 files fail once their temporary output exists."""
    out = tmp_path / "out"
    config = ConvertConfig(fps=60, encode=EncodeOptions(codec="rawvideo"))
    assert run_batch([tree / "a"], out, config, interpolator) == ExitStatus.PARTIAL
    assert "cannot hold rawvideo" in capsys.readouterr().err
    assert files_under(out) == {"b", "b/two.mkv"}  # no .one.memc-tmp-*.mp4


def test_all_failing_leaves_no_output_folder(tree: Path, tmp_path: Path, interpolator, capsys):
    out = tmp_path / "new" / "out"
    assert run_batch([tree / "c"], out, CONFIG, interpolator) == ExitStatus.PARTIAL
    assert not (tmp_path / "new").exists()
    assert "0 converted, 0 skipped, 2 failed" in capsys.readouterr().err


def test_output_folder_inside_input_is_not_an_input(tree: Path):
    (tree / "out60").mkdir()
    write_clip(tree / "out60" / "three.mp4", moving(2))  # an earlier run's output
    jobs = discover([tree], tree / "out60")
    assert all("out60" not in job.src.parts for job in jobs)


@pytest.mark.parametrize("case", ["same-folder", "clash", "stdin", "empty-glob", "outdir-is-file"])
def test_refused_before_starting(tree: Path, tmp_path: Path, case: str):
    inputs, out, pattern = {
        "same-folder": ([tree], tree, None),
        "clash": ([tree / "three.mp4", tree / "a"], tmp_path / "o", None),  # a/one.mp4 is fine ...
        "stdin": (["-"], tmp_path / "o", None),
        "empty-glob": ([tree], tmp_path / "o", "*.webm"),
        "outdir-is-file": ([tree], tree / "notes.txt", None),
    }[case]
    if case == "clash":
        (tree / "a" / "three.mp4").write_bytes((tree / "three.mp4").read_bytes())  # ... but this clashes
    with pytest.raises(InputError):
        run_batch(inputs, out, CONFIG, lambda: pytest.fail("a refused batch must not load the model"), pattern=pattern)
    assert not (tmp_path / "o").exists()


def test_is_video(tree: Path):
    assert is_video(tree / "three.mp4")
    assert is_video(tree / "c" / "broken.mp4")  # by extension: its failure is reported, not hidden
    assert not is_video(tree / "notes.txt")
    assert not is_video(tree / "c" / "README")
    renamed = tree / "c" / "clip.bin"
    renamed.write_bytes((tree / "three.mp4").read_bytes())
    assert is_video(renamed)  # probed


def test_model_loads_once_and_only_when_needed(tree: Path, tmp_path: Path, interpolator):
    loads = []

    def load() -> Interpolator:
        loads.append(1)
        return interpolator

    out = tmp_path / "out"
    run_batch([tree], out, CONFIG, load)
    assert len(loads) == 1  # three files converted, one model
    run_batch([tree], out, CONFIG, load, pattern="*.mkv")
    assert len(loads) == 1  # everything was done: nothing loaded
    with pytest.raises(InputError):
        run_batch([tree], tree, CONFIG, load)
    assert len(loads) == 1


def test_one_file_into_a_folder(tree: Path, tmp_path: Path):
    """`memc convert *.mp4 -o out/` must not change meaning when the shell glob finds one file."""
    from click.testing import CliRunner

    from memc.cli import cli

    result = CliRunner().invoke(
        cli, ["convert", str(tree / "three.mp4"), "--fps", "60", "-o", f"{tmp_path / 'out'}/", *FAST, "-q"]
    )
    assert result.exit_code == 0, (result.exception, result.stderr)
    assert files_under(tmp_path / "out") == {"three.mp4"}
