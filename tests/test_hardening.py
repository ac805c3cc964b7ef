"""What a new user hit: each case reproduces one defect of the hardening issue and pins its fix.

Most run the CLI in-process (``memc.cli.main``) on 64x48 clips; the signal cases need a real
process to signal.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest
from media import probe, write_clip

from memc import progress
from memc.cli import main

FAST = ["--flow", "dis", "--dis-preset", "ultrafast", "--preset", "ultrafast"]


def run_cli(args, capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in args])
    return exit_info.value.code, capsys.readouterr().err


def moving(n: int, seed: int = 0, size=(48, 64)) -> list[np.ndarray]:
    base = np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)
    return [np.roll(base, 2 * k, axis=1) for k in range(n)]


@pytest.fixture(scope="module")
def with_audio(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("audio") / "talk.mp4"
    write_clip(path, moving(12), 24, audio_seconds=0.5)
    return path


def no_temporaries(folder: Path) -> bool:
    return not list(folder.glob(".*memc-tmp*"))


# 1. A file with audio to a container that holds video only.
def test_audio_source_to_y4m_file_gives_video_and_one_warning(tmp_path, with_audio, capsys):
    out = tmp_path / "out.y4m"
    code, err = run_cli(["convert", with_audio, "--fps", "48", "-o", out, *FAST], capsys)
    assert code == 0, err
    warnings = [line for line in err.splitlines() if "WARNING" in line]
    assert len(warnings) == 1 and "video only" in warnings[0], err
    with av.open(str(out)) as container:
        assert not container.streams.audio
        assert sum(1 for _ in container.decode(video=0)) == 24


def test_audio_source_to_stdout(with_audio):
    from click.testing import CliRunner

    from memc.cli import cli

    result = CliRunner().invoke(cli, ["convert", str(with_audio), "--fps", "48", "-o", "-", *FAST])
    assert result.exit_code == 0, (result.exception, result.stderr)
    assert result.stdout_bytes.startswith(b"YUV4MPEG2 ")
    assert result.stdout_bytes.count(b"FRAME") == 24
    assert "video only" in result.stderr


# 2. SIGTERM and SIGHUP clean up like Ctrl-C; a later run removes memc's own stale temporaries.
@pytest.mark.slow
@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_termination_signals_clean_up(tmp_path, signum, code):
    src = tmp_path / "long.mp4"
    write_clip(src, moving(240, size=(120, 160)), 24)
    out = tmp_path / "out.mp4"
    process = subprocess.Popen(
        [sys.executable, "-m", "memc", "convert", str(src), "--fps", "120", "-o", str(out), "--flow", "dis"],
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while no_temporaries(tmp_path) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    if process.poll() is not None:
        pytest.fail(f"finished (exit {process.returncode}) before it could be signalled: {process.stderr.read()}")
    process.send_signal(signum)
    _, err = process.communicate(timeout=60)
    assert process.returncode == code, err
    assert err.strip().splitlines()[-1] == f"memc: stopped by {signal.Signals(signum).name}", err
    assert "Traceback" not in err
    assert not out.exists() and no_temporaries(tmp_path)


def test_stale_temporaries_of_dead_writers_are_removed(tmp_path, capsys):
    src = tmp_path / "in.mp4"
    write_clip(src, moving(6), 24)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        stale = tmp_path / f".out.memc-tmp-{dead.pid}.mp4"
        running = tmp_path / f".out.memc-tmp-{alive.pid}.mp4"
        other_output = tmp_path / f".other.memc-tmp-{dead.pid}.mp4"
        not_ours = tmp_path / ".out.memc-tmp-notes.mp4"
        for path in (stale, running, other_output, not_ours):
            path.write_bytes(b"partial")
        code, err = run_cli(["convert", src, "--fps", "48", "-o", tmp_path / "out.mp4", *FAST, "-q"], capsys)
        assert code == 0, err
        assert not stale.exists()
        assert running.exists() and other_output.exists() and not_ours.exists()
        assert probe(tmp_path / "out.mp4")["frames"] == 12
    finally:
        alive.kill()
        alive.wait()


# 3. --factor has the same 1000 fps limit as --fps.
@pytest.mark.parametrize("factor", ["100", "1000"])
def test_factor_respects_the_fps_limit(tmp_path, capsys, factor):
    src = tmp_path / "in.mp4"
    write_clip(src, moving(4), 25)
    code, err = run_cli(["convert", src, "--factor", factor, "-o", tmp_path / "o.mp4", *FAST], capsys)
    assert code == 1 and "1000 fps limit" in err and "Traceback" not in err, err
    assert not (tmp_path / "o.mp4").exists() and no_temporaries(tmp_path)


# 5. Clear errors.
def test_weights_that_are_not_weights(tmp_path, capsys):
    src = tmp_path / "in.mp4"
    write_clip(src, moving(4), 24)
    bogus = tmp_path / "model.pt"
    bogus.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, np.uint8).tobytes())
    code, err = run_cli(["convert", src, "--fps", "48", "--weights", bogus, "-o", tmp_path / "o.mp4"], capsys)
    assert code == 1, err
    assert "is not a memc weights file" in err and str(bogus) in err, err
    assert len(err.strip().splitlines()) == 1 and "debug" not in err


def test_unknown_output_extension_names_the_output(tmp_path, capsys):
    src = tmp_path / "in.mp4"
    write_clip(src, moving(4), 24)
    code, err = run_cli(["convert", src, "--fps", "48", "-o", tmp_path / "out.xyz", *FAST], capsys)
    assert code == 1 and "out.xyz" in err and ".xyz" in err, err
    assert "memc-tmp" not in err and "Traceback" not in err
    assert no_temporaries(tmp_path) and not (tmp_path / "out.xyz").exists()


def test_batch_output_folder_that_cannot_be_made(tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    write_clip(folder / "a.mp4", moving(4), 24)
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a folder should be")
    code, err = run_cli(["convert", folder, "--fps", "48", "-o", blocker / "out", *FAST], capsys)
    assert code == 1 and "is a file, not a folder" in err and "Traceback" not in err, err


def test_batch_output_folder_not_writable(tmp_path, capsys, monkeypatch):
    folder = tmp_path / "in"
    folder.mkdir()
    write_clip(folder / "a.mp4", moving(4), 24)
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    if os.geteuid() == 0:  # root may write anywhere: let the check see what a user would
        real_access = os.access
        monkeypatch.setattr(os, "access", lambda path, mode: real_access(path, mode) and Path(path) != locked)
    code, err = run_cli(["convert", folder, "--fps", "48", "-o", locked / "out", *FAST], capsys)
    assert code == 1 and "not writable" in err and "PermissionError" not in err, err


def test_single_file_into_a_folder_is_a_conversion(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    src = tmp_path / "in.mp4"
    write_clip(src, moving(6), 24)
    code, err = run_cli(["convert", src, "--fps", "48", "-o", f"{out}/", *FAST, "-q"], capsys)
    assert code == 0, err
    assert probe(out / "in.mp4")["frames"] == 12
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\0" * 3000)
    fresh = tmp_path / "fresh"
    code, err = run_cli(["convert", broken, "--fps", "48", "-o", f"{fresh}/", *FAST], capsys)
    assert code == 1, err  # one file: an error (1), not a batch with failures (3)
    assert err.startswith("memc: error:") and not fresh.exists()  # the folder made for it went again


# 6. What the docs and messages say.
def test_flow_help_names_what_auto_is():
    from click.testing import CliRunner

    from memc.cli import cli
    from memc.config import AUTO_ESTIMATOR

    text = " ".join(CliRunner().invoke(cli, ["convert", "--help"]).output.split())
    assert f"auto = {AUTO_ESTIMATOR}" in text
    assert "learned model" not in Path(__file__).parents[1].joinpath("examples/api.py").read_text().split('"""')[1]


def test_batch_truncation_warning_names_the_file(tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    write_clip(folder / "whole.mkv", moving(24), 24, codec="ffv1")
    data = (folder / "whole.mkv").read_bytes()
    (folder / "half.mkv").write_bytes(data[: len(data) // 2])
    code, err = run_cli(["convert", folder, "--fps", "48", "-o", tmp_path / "out", *FAST], capsys)
    warnings = [line for line in err.splitlines() if "truncated" in line]
    assert code == 0 and len(warnings) == 1 and "half.mkv" in warnings[0], err


# 7. One frame lasts its duration; a still image is not a video.
def test_one_frame_input_is_held_for_its_duration(tmp_path, capsys):
    src = tmp_path / "one.mkv"
    write_clip(src, moving(1), 24, codec="ffv1")
    code, err = run_cli(["convert", src, "--fps", "60", "-o", tmp_path / "o.mkv", *FAST, "-q"], capsys)
    assert code == 0, err
    assert probe(tmp_path / "o.mkv")["frames"] == 3  # 1/24 s at 60 fps: frames at 0, 1/60, 2/60


def test_still_image_is_refused_with_a_pointer_to_pair(tmp_path, capsys):
    import cv2

    image = tmp_path / "still.png"
    cv2.imwrite(str(image), moving(1)[0])
    code, err = run_cli(["convert", image, "--fps", "60", "-o", tmp_path / "o.mp4", *FAST], capsys)
    assert code == 1 and "still image" in err and "memc pair" in err, err
    assert not (tmp_path / "o.mp4").exists()


# 8. Without a terminal, progress is a line every few seconds; -q silences it.
def test_progress_lines_without_a_terminal(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(progress, "LINE_SECONDS", 0.0)
    src = tmp_path / "in.mp4"
    write_clip(src, moving(6), 24)
    code, err = run_cli(["convert", src, "--fps", "48", "-o", tmp_path / "a.mp4", *FAST], capsys)
    assert code == 0, err
    lines = [line for line in err.splitlines() if "frames/s" in line and "/12 frames" in line]
    assert lines and lines[-1].startswith(f"memc: {src}: 12/12 frames (100%)"), err
    code, err = run_cli(["convert", src, "--fps", "48", "-o", tmp_path / "b.mp4", *FAST, "-q"], capsys)
    assert code == 0 and err == "", err
