"""memc bench: the end-to-end row (output fps, stage breakdown, peak GPU memory) on the CPU, and
the stage timer it reads."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from media import write_clip
from synthetic import texture

from memc.cli import main
from memc.stages import STAGES, StageTimer


def test_bench_json_has_the_end_to_end_fields(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "--device", "cpu", "--size", "160x96", "--flow", "dis", "--frames", "12", "--json"])
    assert exit_info.value.code == 0
    report = json.loads(capsys.readouterr().out)
    (row,) = report["rows"]
    assert row["size"] == "160x96" and row["device"] == "cpu" and row["flow"] == "dis"
    assert (row["fps_in"], row["fps_out"], row["frames_in"], row["frames_out"]) == (24, 60, 12, 30)
    assert row["output_fps"] > 0 and row["seconds"] > 0 and row["encoder"]
    assert set(row["stages_s"]) == set(STAGES)
    assert all(v >= 0 for v in row["stages_s"].values()) and row["stages_s"]["flows"] > 0
    assert row["peak_gpu_mib"] is None  # no GPU memory on a CPU
    assert report["meta"]["gpu"] is None


def test_bench_table_is_readable(capsys):
    with pytest.raises(SystemExit):
        main(["bench", "--device", "cpu", "--size", "64x48", "--flow", "dis", "--frames", "4"])
    out = capsys.readouterr().out
    assert "e2e fps" in out and "synthesis" in out and "64x48" in out


def test_stage_timer_adds_from_threads_and_times_iterators():
    timer = StageTimer("cpu")
    assert list(timer.iterate("decode", iter(range(3)))) == [0, 1, 2]
    threads = [threading.Thread(target=lambda: timer.add("encode", 0.5)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with timer.stage("flows"):
        pass
    assert timer.seconds["encode"] == 2.0 and timer.seconds["decode"] >= 0 and timer.seconds["flows"] >= 0


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux's /proc/self/clear_refs")
def test_memory_by_stage_prints_each_stage(tmp_path):
    """``tools/memory_by_stage.py`` measures the three stages of a pair on a small clip: each has a
    peak of at least what it leaves behind, and the frame stage leaves little (its result)."""
    clip = tmp_path / "clip.mp4"
    write_clip(clip, [(texture(96, 160, seed) * 255).astype(np.uint8) for seed in range(3)])
    script = Path(__file__).parents[1] / "tools" / "memory_by_stage.py"
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}
    done = subprocess.run(
        [sys.executable, str(script), str(clip), "--size", "320x192"], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr
    rows = re.findall(r"^\| (motion|pair_flows|frame)[^|]* \| (-?\d+) MB \| (-?\d+) MB \|$", done.stdout, re.M)
    assert [name for name, _, _ in rows] == ["motion", "pair_flows", "frame"], done.stdout
    assert all(int(peak) >= max(int(kept), 0) for _, peak, kept in rows), done.stdout
    assert "320x192" in done.stdout


@pytest.mark.parametrize("stage", ["codec", "motion"])
def test_minterpolate_bench_floors_write_the_outputs_frame_count(tmp_path, stage):
    """The floors of ``tools/bench_vs_minterpolate.py --floors`` (no ffmpeg program needed for
    them): 4 frames at 24 fps to 60 fps are encoded as 10 frames, one source frame repeated 2 or 3
    times, with DIS run on the pairs in the ``motion`` floor."""
    import av

    clip, out = tmp_path / "clip.mp4", tmp_path / "floor.mp4"
    write_clip(clip, [(texture(96, 160, seed) * 255).astype(np.uint8) for seed in range(4)])
    script = Path(__file__).parents[1] / "tools" / "bench_vs_minterpolate.py"
    done = subprocess.run(
        [sys.executable, str(script), str(clip), "--fps", "60", "--floor", stage, "--floor-output", str(out)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    with av.open(str(out)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 10
        assert container.streams.video[0].average_rate == 60
