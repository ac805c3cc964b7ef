"""memc convert --ray: a batch on Ray gives the files a local run gives, frame for frame.

A folder of three short clips and one long clip (3 s, a keyframe every 0.5 s, cut into segments of
1 s, so >= 3 segments) is converted on Ray and compared with the single-process conversion: same
frame count, same timestamps, every frame >= 45 dB (lossless x264, --crf 0, so a difference could
only come from the conversion), audio kept. Then: a worker killed mid-task is retried and its file
completes; a lost segment fails only its file and a rerun converts only what is missing; two Ray
nodes on this machine both take tasks.

Clusters are stopped by terminating the ``ray start --block`` processes these tests started (never
``ray stop``, which stops every Ray of the user on the machine, other runs' included).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from media import decode_rgb, write_clip
from synthetic import Scene, psnr

from memc.config import ConvertConfig, EncodeOptions
from memc.errors import ExitStatus
from memc.motion.interpolate import Interpolator
from memc.pipeline import convert
from memc.segments import plan

ray = pytest.importorskip("ray")

pytestmark = pytest.mark.slow  # end to end, with Ray clusters

ROOT = Path(__file__).resolve().parents[1]
FAST = ["--flow", "dis", "--dis-preset", "ultrafast", "--preset", "ultrafast", "--crf", "0"]
CONFIG = ConvertConfig(fps=60, encode=EncodeOptions(preset="ultrafast", crf=0))
SEGMENT = ["--segment-seconds", "1"]
KEYFRAMES = {"preset": "ultrafast", "crf": "12", "g": "12", "keyint_min": "12", "sc_threshold": "0"}  # every 0.5 s
SHORT = ["a.mp4", "b.mkv", "c.mov"]
MIN_PSNR = 45.0  # dB per frame; lossless encoding, so only a different conversion could go below
# Ray's nodes and the CLI's driver must agree on authentication (Ray >= 2.59 turns tokens on for `ray start`).
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}


def moving(n: int, seed: int) -> list[np.ndarray]:
    base = np.random.default_rng(seed).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    return [np.roll(base, 2 * k, axis=1) for k in range(n)]


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    """in/: three short clips (one with audio) and long.mp4 (3 s at 24 fps with audio)."""
    root = tmp_path_factory.mktemp("clips") / "in"
    root.mkdir()
    write_clip(root / "a.mp4", moving(6, 1), audio_seconds=0.25)
    write_clip(root / "b.mkv", moving(8, 2))
    write_clip(root / "c.mov", moving(5, 3))
    scene = Scene(height=48, width=64, size=16)
    frames = [scene.frame_u8(0.5 * k) for k in range(72)]
    write_clip(root / "long.mp4", frames, audio_seconds=3.0, options=KEYFRAMES)
    return root


@pytest.fixture(scope="module")
def reference(clips: Path, tmp_path_factory) -> Path:
    """The single-process conversion of every clip, with the CLI's options."""
    out = tmp_path_factory.mktemp("reference")
    interpolator = Interpolator(device="cpu", flow="dis", dis_preset="ultrafast")
    for name in [*SHORT, "long.mp4"]:
        convert(clips / name, out / name, CONFIG, interpolator)
    return out


def memc(*args: str, env: dict | None = None, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "memc", "convert", *args],
        cwd=ROOT,
        env=env or ENV,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def video(path: Path) -> tuple[list[int], Fraction, float | None]:
    """pts of every decoded frame, the stream's time base and the audio's duration (None: no audio)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        pts = [frame.pts for frame in container.decode(stream)]
        audio = container.streams.audio[0] if container.streams.audio else None
        audio_seconds = float(audio.duration * audio.time_base) if audio is not None and audio.duration else None
        return pts, Fraction(stream.time_base), audio_seconds if audio is not None else None


def assert_same_as_local(out: Path, ref: Path) -> None:
    got, want = video(out), video(ref)
    assert len(got[0]) == len(want[0]), out
    assert [p * got[1] for p in got[0]] == [p * want[1] for p in want[0]], f"{out}: timestamps differ"
    assert (got[2] is None) == (want[2] is None), f"{out}: audio lost or added"
    if want[2] is not None:
        assert abs(got[2] - want[2]) < 0.03, (got[2], want[2])
    worst = min(psnr(a, b) for a, b in zip(decode_rgb(out), decode_rgb(ref)))
    assert worst >= MIN_PSNR, f"{out}: a frame at {worst:.1f} dB from the local conversion"


def leftovers(folder: Path) -> list[str]:
    """Temporaries and segment folders: nothing of the kind may stay after a complete run."""
    return [p.name for p in folder.rglob("*") if ".memc-tmp-" in p.name or p.name == ".memc-ray"]


def test_long_clip_is_cut_into_three_segments_or_more(clips: Path):
    segments = plan(clips / "long.mp4", CONFIG, 1.0).segments
    assert len(segments) >= 3
    assert all(s.seek is not None for s in segments[1:])  # each starts at a keyframe of its own


def test_local_ray_batch_matches_the_single_process_conversion(clips: Path, reference: Path, tmp_path: Path):
    out, broken = tmp_path / "out", tmp_path / "broken.mp4"
    broken.write_bytes(np.random.default_rng(9).integers(0, 256, 4000, np.uint8).tobytes())
    args = [str(clips), str(broken), "-o", str(out), "--fps", "60", *FAST, *SEGMENT]
    result = memc(*args, "--ray-cpus", "2", "-v", "--ray")
    assert result.returncode == ExitStatus.PARTIAL, result.stderr
    assert result.stdout == ""
    assert f"memc: error: {broken}: " in result.stderr  # named, and the rest went on
    assert "4 converted, 0 skipped, 1 failed" in result.stderr
    assert re.search(r"long\.mp4: [3-9] segments", result.stderr), result.stderr
    assert "Traceback" not in result.stderr
    for name in [*SHORT, "long.mp4"]:
        assert_same_as_local(out / name, reference / name)
    assert sorted(p.name for p in out.iterdir()) == sorted([*SHORT, "long.mp4"])  # no temporaries, no .memc-ray

    again = memc(*[a for a in args if a != str(broken)], "--ray")
    assert again.returncode == 0, again.stderr
    assert "0 converted, 4 skipped, 0 failed" in again.stderr  # finished files are not converted again


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """Two Ray nodes of one CPU each on this machine (the second with a resource of its own)."""

    def __init__(self) -> None:
        # A short path: Ray's socket names under it must stay within the OS's limit.
        self.temp = tempfile.mkdtemp(prefix="memc-ray-", dir="/tmp")
        self.address = f"127.0.0.1:{_free_port()}"
        self.nodes: list[subprocess.Popen] = []
        common = ["--num-cpus", "1", "--disable-usage-stats", "--block"]
        self._start(
            ["--head", "--port", self.address.split(":")[1], "--temp-dir", self.temp, "--include-dashboard=false"]
        )
        self._wait_for(1)
        self._start(["--address", self.address, "--resources", '{"node2": 1}'], common)
        self._wait_for(2)

    def _start(self, args: list[str], common: list[str] | None = None) -> None:
        common = common or ["--num-cpus", "1", "--disable-usage-stats", "--block"]
        log = open(os.path.join(self.temp, f"node{len(self.nodes)}.log"), "w")  # noqa: SIM115 - closed with the node
        self.nodes.append(
            subprocess.Popen(
                [sys.executable, "-m", "ray.scripts.scripts", "start", *args, *common],
                env=ENV,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stopped as a whole, and only it
            )
        )

    def _wait_for(self, count: int, timeout: float = 120) -> None:
        probe = (
            "import ray, sys; ray.init(address=sys.argv[1], logging_level='ERROR'); "
            "print(sum(n['Alive'] for n in ray.nodes()))"
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for node in self.nodes:
                assert node.poll() is None, f"a Ray node exited; see {self.temp}"
            result = subprocess.run(
                [sys.executable, "-c", probe, self.address], env=ENV, capture_output=True, text=True, timeout=60
            )
            if result.returncode == 0 and result.stdout.strip().splitlines()[-1:] == [str(count)]:
                return
            time.sleep(1)
        raise TimeoutError(f"{count} Ray nodes did not come up at {self.address}")

    def stop(self) -> None:
        for node in reversed(self.nodes):
            if node.poll() is None:
                node.send_signal(signal.SIGTERM)  # `ray start --block` stops the processes it started
        for node in reversed(self.nodes):
            try:
                node.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(node.pid, signal.SIGKILL)
                node.wait()


@pytest.fixture(scope="module")
def cluster():
    nodes = Cluster()
    try:
        yield nodes
    finally:
        nodes.stop()


def test_two_nodes_both_take_tasks(cluster: Cluster, clips: Path, reference: Path, tmp_path: Path):
    out = tmp_path / "out"
    inputs = [str(clips / "long.mp4"), str(clips / "a.mp4")]
    result = memc(*inputs, "-o", str(out), "--fps", "60", *FAST, *SEGMENT, "-v", "--ray", cluster.address)
    assert result.returncode == 0, result.stderr
    ran_on = re.search(r"ray: tasks ran on (\d+) node\(s\): ([0-9a-f]+(?:, [0-9a-f]+)*)", result.stderr)
    assert ran_on is not None, result.stderr
    assert int(ran_on.group(1)) == 2 and len(set(ran_on.group(2).split(", "))) == 2
    for name in ("long.mp4", "a.mp4"):
        assert_same_as_local(out / name, reference / name)


def test_a_killed_worker_is_retried(cluster: Cluster, clips: Path, reference: Path, tmp_path: Path):
    out, marker = tmp_path / "long.mp4", tmp_path / "crashed"
    args = [str(clips / "long.mp4"), "-o", str(out), "--fps", "60", *FAST, *SEGMENT, f"--ray={cluster.address}"]
    result = memc(*args, env={**ENV, "MEMC_RAY_TEST_CRASH_ONCE": str(marker)})
    assert result.returncode == 0, result.stderr
    assert marker.exists()  # a task did die, mid-segment, with its temporary file half-written
    assert_same_as_local(out, reference / "long.mp4")
    assert leftovers(tmp_path) == []

    again = memc(*args)
    assert again.returncode == 1 and "output exists" in again.stderr  # as a local run: finished work is kept


def test_a_lost_segment_fails_its_file_and_a_rerun_does_only_the_rest(
    cluster: Cluster, clips: Path, reference: Path, tmp_path: Path
):
    out, marker = tmp_path / "long.mp4", tmp_path / "crashed"
    args = [str(clips / "long.mp4"), "-o", str(out), "--fps", "60", *FAST, *SEGMENT, "-v", "--ray", cluster.address]
    first = memc(*args, env={**ENV, "MEMC_RAY_TEST_CRASH_ONCE": str(marker), "MEMC_RAY_MAX_RETRIES": "0"})
    assert first.returncode == ExitStatus.ERROR, first.stderr
    assert re.search(r"^memc: error: .*(Worker|died|crash|exit)", first.stderr, re.IGNORECASE | re.MULTILINE), (
        first.stderr
    )
    assert not out.exists()

    second = memc(*args)
    assert second.returncode == 0, second.stderr
    reused = re.findall(r"segment \d+ done in an earlier run", second.stderr)
    assert len(reused) >= 1, second.stderr  # the segments that finished beside the lost one are not redone
    assert_same_as_local(out, reference / "long.mp4")
    assert leftovers(tmp_path) == []


def test_without_ray_the_option_says_how_to_get_it(clips: Path, tmp_path: Path):
    code = (
        "import sys; sys.modules['ray'] = None; from memc.cli import main; "
        f"main(['convert', {str(clips / 'a.mp4')!r}, '-o', {str(tmp_path / 'a.mp4')!r}, '--fps', '60', '--ray'])"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip() == 'memc: error: --ray needs Ray: pip install "memc[ray]"'


def test_an_input_right_after_ray_is_not_taken_for_an_address(clips: Path, tmp_path: Path):
    result = memc("--ray", str(clips / "a.mp4"), str(clips / "b.mkv"), "-o", str(tmp_path), "--fps", "60")
    assert result.returncode == ExitStatus.USAGE
    assert "write --ray after the inputs, or --ray=ADDRESS" in result.stderr
