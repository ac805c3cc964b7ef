"""The synthesis thread beside the loop (``threads.Ahead``) and how a conversion uses it."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch
from media import decode_rgb, write_clip
from synthetic import Scene

from memc.cli import main
from memc.motion.interpolate import Interpolator
from memc.threads import Ahead


def test_ahead_runs_in_order_and_bounds_what_is_unfinished():
    ahead = Ahead("test", limit=2)
    gate = threading.Event()
    done: list[int] = []

    def call(k: int) -> int:
        gate.wait(5)
        done.append(k)
        return k * k

    first = [ahead.submit(call, k) for k in range(2)]  # both wait on the gate
    blocked = threading.Thread(target=lambda: first.append(ahead.submit(call, 2)))
    blocked.start()
    time.sleep(0.2)
    assert blocked.is_alive()  # a third call waits until the oldest finishes
    gate.set()
    blocked.join(5)
    assert [f.result(5) for f in first] == [0, 1, 4]
    ahead.close()
    assert done == [0, 1, 2]


def test_ahead_raises_a_calls_error_at_its_future_and_the_next_submit():
    ahead = Ahead("test", limit=1)

    def fail() -> None:
        raise ValueError("broken")

    future = ahead.submit(fail)
    with pytest.raises(ValueError, match="broken"):
        future.result(5)
    with pytest.raises(ValueError, match="broken"):
        ahead.submit(int)
    ahead.close()


LOSSLESS_RGB = ["-c:v", "ffv1", "--out-pix-fmt", "bgr0"]


@pytest.mark.slow
def test_conversion_with_the_synthesis_thread_matches_frame_by_frame(tmp_path, capsys):
    """The frames made beside the loop are the frames ``Interpolator`` makes one at a time, in order."""
    scene = Scene(height=96, width=128, bg_velocity=(2.0, 1.0), fg_velocity=(-4.0, 2.0), size=30)
    sources = [scene.frame_u8(k) for k in range(8)]
    src, out = tmp_path / "in.mkv", tmp_path / "out.mkv"
    write_clip(src, sources, 24, codec="ffv1", pix_fmt="bgr0")  # lossless RGB in and out
    threads = torch.get_num_threads()
    with pytest.raises(SystemExit) as exit_info:
        main(["convert", str(src), "--fps", "60", "-o", str(out), "--flow", "dis", "-q", *LOSSLESS_RGB])
    assert exit_info.value.code == 0, capsys.readouterr().err
    assert torch.get_num_threads() == threads  # the conversion gave its thread count back
    frames = decode_rgb(out)
    assert len(frames) == 20
    ip = Interpolator(device="cpu", flow="dis")
    for k in (1, 2, 3, 6, 8):  # output k sits at t = (k * 24 / 60) mod 1 after source frame k * 24 // 60
        i, t = divmod(k * 24, 60)
        expected = ip.interpolate(sources[i], sources[i + 1], t / 60)
        difference = np.abs(frames[k].astype(int) - expected.astype(int))
        assert difference.max() <= 1 and difference.mean() < 0.01, k  # float sums may round apart


@pytest.mark.slow
@pytest.mark.parametrize("when", ["early", "last"])
def test_a_synthesis_error_is_one_line_and_leaves_no_output(tmp_path, capsys, monkeypatch, when):
    """Early, or in the last frame (its error then surfaces while the encoder drains): one line, no
    output, and no thread of the conversion left running."""
    write_clip(tmp_path / "in.mkv", [Scene(height=64, width=64).frame_u8(k) for k in range(12)], 24, codec="ffv1")
    args = ["convert", str(tmp_path / "in.mkv"), "--fps", "60", "-q"]
    real = Interpolator.frame_array
    calls = []

    def counting(self, *a):
        calls.append(1)
        return real(self, *a)

    monkeypatch.setattr(Interpolator, "frame_array", counting)
    with pytest.raises(SystemExit):
        main([*args, "-o", str(tmp_path / "dry.mkv")])
    (tmp_path / "dry.mkv").unlink()
    fail_at = 4 if when == "early" else len(calls)
    calls.clear()

    def broken(self, *a):
        calls.append(1)
        if len(calls) == fail_at:
            raise RuntimeError("synthesis broke")
        return real(self, *a)

    monkeypatch.setattr(Interpolator, "frame_array", broken)
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "-o", str(tmp_path / "o.mkv")])
    err = capsys.readouterr().err
    assert exit_info.value.code == 1, err
    assert "synthesis broke" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert {p.name for p in tmp_path.iterdir()} == {"in.mkv"}
    assert not [t.name for t in threading.enumerate() if t.name.startswith("memc-")]
