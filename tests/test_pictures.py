"""--debug-dir: pictures of the motion for `pair` and for a range of `convert`'s frames."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from media import write_clip
from synthetic import Scene

from memc.cli import main
from memc.motion.pictures import flow_colour

SUFFIXES = {"flow01", "flow10", "flowt0", "flowt1", "visibility0", "visibility1", "confidence0", "confidence1"}
SUFFIXES |= {"still", "sheet"}


def run_cli(args, capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in args])
    return exit_info.value.code, capsys.readouterr().err


def test_flow_colours_follow_the_middlebury_wheel():
    still = flow_colour(np.zeros((2, 4, 4)), 5)
    assert (still == 255).all()  # no motion is white
    right, left = (flow_colour(np.full((2, 1, 1), v, float) * [[[1]], [[0]]], 5)[0, 0].astype(int) for v in (5, -5))
    assert right[0] > 200 and right[1] < 60 and right[2] < 60  # rightward: red
    assert left[0] < 60 and left[1] > 150 and left[2] > 150  # leftward: cyan
    half = flow_colour(np.array([[[2.5]], [[0.0]]]), 5)[0, 0].astype(int)
    assert 100 < half[1] < 160  # half the scale: half saturated


def test_pair_writes_pictures_and_a_sheet(tmp_path, capsys):
    scene = Scene(height=60, width=80, size=20)
    for name, t in (("a.png", 0), ("b.png", 2)):
        cv2.imwrite(str(tmp_path / name), cv2.cvtColor(scene.frame_u8(t), cv2.COLOR_RGB2BGR))
    args = ["pair", tmp_path / "a.png", tmp_path / "b.png", "-o", tmp_path / "mid.png", "--flow", "dis"]
    code, err = run_cli([*args, "--debug-dir", tmp_path / "dbg"], capsys)
    assert code == 0, err
    written = {p.name for p in (tmp_path / "dbg").iterdir()}
    assert written == {f"mid_{suffix}.png" for suffix in SUFFIXES}
    sheet = cv2.imread(str(tmp_path / "dbg" / "mid_sheet.png"))
    assert sheet.shape[1] == 4 * (80 + 4) + 4 and sheet.shape[0] > 3 * 60  # 4 columns, 3 rows of tiles
    flow = cv2.imread(str(tmp_path / "dbg" / "mid_flow01.png"))
    assert flow.shape[:2] == (60, 80) and flow.std() > 10  # motion drawn, not a blank picture


def test_convert_draws_the_frames_asked_for(tmp_path, capsys):
    scene = Scene(height=48, width=64, size=16)
    write_clip(tmp_path / "in.mkv", [scene.frame_u8(k) for k in range(6)], 24, codec="ffv1")
    args = ["convert", tmp_path / "in.mkv", "--fps", "48", "-o", tmp_path / "out.mkv", "--flow", "dis", "-q"]
    code, err = run_cli([*args, "--debug-dir", tmp_path / "dbg", "--debug-frames", "2:6"], capsys)
    assert code == 0, err
    sheets = sorted(p.name for p in (tmp_path / "dbg").glob("*_sheet.png"))
    assert sheets == ["frame_000003_sheet.png", "frame_000005_sheet.png"]  # even frames are copies, not drawn
    code, err = run_cli([*args, "-y", "--debug-frames", "5:2"], capsys)
    assert code == 2 and "not a range" in err
