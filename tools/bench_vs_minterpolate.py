#!/usr/bin/env python3
"""memc against ffmpeg's ``minterpolate`` on the same clip: wall time, CPU time and peak memory.

    python tools/bench_vs_minterpolate.py examples/bigbuckbunny.mp4 --sizes 640x360,1280x720 --rounds 3

For each size the first ``--frames`` frames of CLIP are re-timed to 24 fps and scaled (one
x264 CRF 16 file per size), then ``memc convert`` and ``ffmpeg -vf minterpolate`` (mci, aobmc,
bidir, vsbmc: its best motion-compensated mode) convert it to ``--fps``, alternating, ``--rounds``
times; both encode with libx264 CRF 18, preset medium (memc's default), so the encoder costs the
same on both sides. Whole processes are measured (``os.wait4``: wall, user + system CPU, peak
RSS); the table shows medians and memc's speed-up (minterpolate's time / memc's).

With ``--floors`` three more commands alternate with them, each a part of what any conversion by
memc pays, whatever its own code does: Python importing torch, PyAV and OpenCV (the start); that
plus decoding the clip and x264-encoding as many frames as the output has (each source frame
repeated); that plus OpenCV DIS at memc's preset, both directions of every pair, at memc's flow
size (the motion the default's quality rests on). They show how much of a speed-up is left to win.

Needs an ``ffmpeg`` program (``--ffmpeg`` or on PATH; ``pip install imageio-ffmpeg`` ships one);
says so and exits when there is none. Run it on an otherwise idle machine: the ratio of the two
alternating commands is what is robust, not the absolute seconds.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

MINTERPOLATE = "minterpolate=fps={fps}:mi_mode=mci:mc_mode=aobmc:me_mode=bidir:vsbmc=1"
CRF, PRESET = "18", "medium"  # memc's defaults, for every encode timed here
ENCODE = ["-c:v", "libx264", "-crf", CRF, "-preset", PRESET, "-pix_fmt", "yuv420p"]


@dataclass
class Run:
    wall: float
    cpu: float
    peak_mb: float


FLOORS = {
    "start": "import torch, av, cv2",
    "codec": "+ decode, x264-encode the output's frame count",
    "motion": "+ DIS both ways per pair (memc's flow size)",
}


def floor(stage: str, clip: str, out: str, fps: str) -> None:
    """One floor command (``--floor STAGE``), run in its own process by ``--floors``."""
    from fractions import Fraction

    import av
    import cv2
    import torch  # noqa: F401 - its import is part of the floor

    from memc.motion.interpolate import AUTO_FLOW_SIDE

    if stage == "start":
        return
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    with av.open(clip) as source, av.open(out, "w") as sink:
        video = source.streams.video[0]
        video.thread_type = "AUTO"
        stream = sink.add_stream("libx264", rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = video.width, video.height, "yuv420p"
        stream.options = {"crf": CRF, "preset": PRESET}
        step = Fraction(fps) / Fraction(video.average_rate)  # output frames per source frame
        scale = min(1.0, AUTO_FLOW_SIDE / max(video.width, video.height))
        size = (round(video.width * scale), round(video.height * scale))
        previous = None
        for index, frame in enumerate(source.decode(video)):
            rgb = frame.to_ndarray(format="rgb24")
            if stage == "motion":
                grey = cv2.resize(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), size, interpolation=cv2.INTER_AREA)
                if previous is not None:
                    dis.calc(previous, grey, None)
                    dis.calc(grey, previous, None)
                previous = grey
            for _ in range(int((index + 1) * step) - int(index * step)):
                for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                    sink.mux(packet)
        for packet in stream.encode():
            sink.mux(packet)


def find_ffmpeg(given: str | None) -> str | None:
    if given:
        return given if shutil.which(given) else None
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:  # the binary that the imageio-ffmpeg wheel ships
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception:  # noqa: BLE001 - any failure means: no ffmpeg here
        return None


def measure(command: list[str]) -> Run:
    """Run ``command`` to completion; its own wall time, CPU time and peak resident memory."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    error = process.stderr.read().decode(errors="replace") if process.stderr else ""
    if process.returncode != 0:
        sys.exit(f"bench: {command[0]} failed ({process.returncode}): {error.strip()[-500:]}")
    return Run(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)


def prepare(ffmpeg: str, clip: str, size: str, frames: int, folder: Path) -> Path:
    width, height = size.split("x")
    out = folder / f"clip_{size}.mp4"
    subprocess.run(
        [ffmpeg, "-v", "error", "-y", "-i", clip, "-an", "-sn", "-frames:v", str(frames),
         "-vf", f"setpts=N/(24*TB),scale={width}:{height}:flags=lanczos", "-r", "24",
         "-c:v", "libx264", "-crf", "16", "-pix_fmt", "yuv420p", str(out)],
        check=True,
    )  # fmt: skip
    return out


def machine() -> str:
    model = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {len(os.sched_getaffinity(0))} cores usable, {platform.system()} {platform.release()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("clip")
    parser.add_argument("--sizes", default="640x360,1280x720,1920x1080")
    parser.add_argument("--frames", type=int, default=72)
    parser.add_argument("--fps", default="60")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--ffmpeg", help="the ffmpeg program (default: on PATH, else imageio-ffmpeg's)")
    parser.add_argument("--memc", default=f"{sys.executable} -m memc", help="how to run memc")
    parser.add_argument("--memc-args", default="", help="extra options for memc convert")
    parser.add_argument("--floors", action="store_true", help="also time the floors (see above)")
    parser.add_argument("--target", type=float, default=5.0, help="the speed-up the floors are set against")
    parser.add_argument("--floor", choices=FLOORS, help=argparse.SUPPRESS)  # one floor, in its own process
    parser.add_argument("--floor-output", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.floor:
        floor(args.floor, args.clip, args.floor_output, args.fps)
        return

    ffmpeg = find_ffmpeg(args.ffmpeg)
    if ffmpeg is None:
        sys.exit("bench: needs an ffmpeg program (put one on PATH, pass --ffmpeg, or pip install imageio-ffmpeg)")
    print(f"machine: {machine()}")
    print(f"ffmpeg: {ffmpeg}; {args.frames} frames at 24 fps -> {args.fps} fps, {args.rounds} rounds, medians\n")
    rows = []
    with tempfile.TemporaryDirectory(prefix="memc-bench-") as tmp:
        folder = Path(tmp)
        for size in args.sizes.split(","):
            clip = prepare(ffmpeg, args.clip, size, args.frames, folder)
            memc_cmd = [*args.memc.split(), "convert", str(clip), "--fps", args.fps, "-o", str(folder / "memc.mp4")]
            memc_cmd += ["-y", "-q", *args.memc_args.split()]
            ffmpeg_cmd = [ffmpeg, "-v", "error", "-y", "-threads", "0", "-i", str(clip)]
            ffmpeg_cmd += ["-vf", MINTERPOLATE.format(fps=args.fps), *ENCODE, str(folder / "ffmpeg.mp4")]
            commands = {"memc": memc_cmd, "minterpolate": ffmpeg_cmd}
            if args.floors:
                for stage in FLOORS:
                    commands[stage] = [sys.executable, __file__, str(clip), "--fps", args.fps, "--floor", stage,
                                       "--floor-output", str(folder / "floor.mp4")]  # fmt: skip
            runs: dict[str, list[Run]] = {name: [] for name in commands}
            for _ in range(args.rounds):
                for name, command in commands.items():
                    runs[name].append(measure(command))
            med = {name: Run(*(statistics.median(getattr(r, f) for r in rs) for f in ("wall", "cpu", "peak_mb")))
                   for name, rs in runs.items()}  # fmt: skip
            rows.append((size, med))
            done = f"{size}: memc {med['memc'].wall:.1f} s, minterpolate {med['minterpolate'].wall:.1f} s"
            print(done, file=sys.stderr)

    print("| size | memc wall | minterpolate wall | speed-up (wall) | memc CPU | minterpolate CPU | "
          "speed-up (CPU) | memc peak | minterpolate peak |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for size, med in rows:
        m, f = med["memc"], med["minterpolate"]
        print(
            f"| {size} | {m.wall:.1f} s | {f.wall:.1f} s | {f.wall / m.wall:.2f}x | {m.cpu:.1f} s | {f.cpu:.1f} s | "
            f"{f.cpu / m.cpu:.2f}x | {m.peak_mb:.0f} MB | {f.peak_mb:.0f} MB |"
        )
    if args.floors:
        cores = len(os.sched_getaffinity(0))
        print(f"\nFloors: what any memc conversion pays before its own work, against the {args.target:g}x budget:")
        print(f"minterpolate's wall / {args.target:g}, and the CPU time that {cores} cores give in it.\n")
        print(f"| size | floor | wall | CPU | peak | {args.target:g}x budget: wall | CPU on {cores} cores |")
        print("|---|---|---:|---:|---:|---:|---:|")
        for size, med in rows:
            budget = med["minterpolate"].wall / args.target
            for stage, label in FLOORS.items():
                r = med[stage]
                print(f"| {size} | {label} | {r.wall:.2f} s | {r.cpu:.2f} s | {r.peak_mb:.0f} MB | "
                      f"{budget:.2f} s | {cores * budget:.2f} s |")  # fmt: skip


if __name__ == "__main__":
    main()
