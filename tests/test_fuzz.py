"""Damaged inputs through `memc convert`: converted, or refused with one typed `memc: error:` line.

Seeded: the cases are drawn once from ``random.Random(SEED)``, so each id names the same damage on
every run (``MEMC_FUZZ_SEED=N`` draws another set). In-process (``main([...])``), because a subprocess
per case would pay the torch import. Every case runs under an alarm: a hang fails the test instead of
stalling the suite.
"""

from __future__ import annotations

import os
import random
import re
import signal
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path

import av
import cv2
import pytest
from media import write_clip
from synthetic import Scene

from memc.cli import main

SEED = int(os.environ.get("MEMC_FUZZ_SEED", "20240611"))  # another seed explores other damage
FPS_IN, FPS_OUT, FRAMES = 12, 24, 10
CASE_SECONDS = 20
ARGS = ["--fps", str(FPS_OUT), "--flow", "dis", "--dis-preset", "ultrafast", "--preset", "ultrafast", "-q"]
BASES = ("mp4", "mkv", "y4m")  # h264 + AAC audio (both), raw YUV


def _cases() -> list[tuple[str, str, tuple, str]]:
    """(base, damage, params, output extension); positions and lengths are fractions of the region hit."""
    rng = random.Random(SEED)
    cases = []
    for base in BASES:
        for _ in range(5):
            cases.append((base, "truncate", (rng.random(),)))
        for region in ("head", "body", "tail"):  # tail: the MP4 index, MKV cues and tags
            for _ in range(3 if region == "head" else 2):
                flips = tuple((rng.random(), rng.randrange(1, 256)) for _ in range(rng.choice((1, 4, 16))))
                cases.append((base, f"flip-{region}", flips))
        for how in ("cut", "repeat", "junk"):  # a chunk lost, written twice, overwritten
            cases.append((base, "splice", (rng.random(), rng.random() * 0.2, how)))
    cases += [(base, "empty", ()) for base in BASES]
    cases += [
        ("mp4", "rename", ("mkv",)),
        ("mkv", "rename", ("mp4",)),
        ("y4m", "rename", ("mp4",)),
        ("text", "rename", ("mp4",)),
        ("png", "rename", ("mp4",)),
    ]
    # Codec ids FFmpeg does not know (PyAV gives such a stream no codec context), and tags that are not UTF-8.
    cases += [("mp4", "replace", (b"avc1", b"xvc1")), ("mkv", "replace", (b"V_MPEG4", b"V_XPEG4"))]
    cases += [("mkv", "replace", (b"A_AAC", b"A_XAC"))]
    cases += [("mp4", "replace", (b"Lavf", b"L\xe9vf")), ("mkv", "replace", (b"Lavf", b"L\xe9vf"))]
    cases += [("y4m", "replace", (b"W64", b"W\x054"))]  # a width that is no number: FFmpeg says EBUSY
    # A block's time stamp (ms from its cluster) damaged: a block inside jumps ahead or back, the last one ahead.
    for kind in ("audio-time", "video-time"):
        cases.append(("mkv", kind, (rng.uniform(0.2, 0.8), rng.randrange(2000, 32768))))
        cases.append(("mkv", kind, (rng.uniform(0.2, 0.8), rng.randrange(-32768, -2000))))
        cases.append(("mkv", kind, (0.999, rng.randrange(2000, 32768))))
    return [(*case, rng.choice(("mp4", "mkv"))) for case in cases]


CASES = _cases()


def _video_intact(damage: str, params: tuple) -> bool:
    """Damage only to audio, tags or one frame's time: the video must still convert."""
    return damage.endswith("-time") or (damage == "replace" and params[0] in (b"A_AAC", b"Lavf"))


def _case_id(number: int, case) -> str:
    base, damage, params, out_ext = case
    if damage == "truncate":
        detail = f"{params[0]:.3f}"
    elif damage.startswith("flip"):
        detail = f"x{len(params)}"
    elif damage in ("splice", "rename"):
        detail = params[-1]
    elif damage == "replace":
        detail = params[0].decode()
    elif damage.endswith("-time"):
        detail = f"{params[0]:.3f}{params[1]:+d}ms"
    else:
        detail = ""
    return "-".join(p for p in (f"{number:02d}", base, damage, detail, f"to-{out_ext}") if p)


@pytest.fixture(scope="module")
def bases(tmp_path_factory) -> dict[str, bytes]:
    """The undamaged inputs, made once: tiny clips, a text file and a PNG."""
    folder = tmp_path_factory.mktemp("fuzz-bases")
    scene = Scene(height=48, width=64, size=16)
    frames = [scene.frame_u8(k) for k in range(FRAMES)]
    write_clip(folder / "a.mp4", frames, FPS_IN, audio_seconds=FRAMES / FPS_IN)
    write_clip(folder / "a.mkv", frames, FPS_IN, audio_seconds=FRAMES / FPS_IN)
    with av.open(str(folder / "a.y4m"), "w", format="yuv4mpegpipe") as out:
        stream = out.add_stream("wrapped_avframe", rate=FPS_IN)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for k, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
            frame.pts = k
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    data = {ext: (folder / f"a.{ext}").read_bytes() for ext in ("mp4", "mkv", "y4m")}
    data["text"] = b"this is a shopping list, not a video\neggs\nmilk\n" * 20
    data["png"] = cv2.imencode(".png", frames[0])[1].tobytes()
    return data


def _damage(data: bytes, damage: str, params: tuple) -> bytes:
    if damage == "truncate":
        return data[: int(len(data) * params[0])]
    if damage == "empty":
        return b""
    if damage == "rename":
        return data
    if damage == "replace":  # the last one: an MP4's brand list names avc1 too, its sample description comes later
        at = data.rindex(params[0])
        return data[:at] + params[1] + data[at + len(params[1]) :]
    if damage.endswith("-time"):  # SimpleBlock (0xA3), its size, track 1 video / 2 audio, int16 time, flags
        track = b"\x82" if damage == "audio-time" else b"\x81"
        blocks = list(re.finditer(rb"\xa3(?:[\x80-\xff]|[\x40-\x7f].)" + track + rb"(..)[\x00\x80]", data, re.DOTALL))
        assert len(blocks) >= FRAMES, f"{damage}: too few blocks found in the MKV"
        at = blocks[int(params[0] * len(blocks))].start(1)
        return data[:at] + params[1].to_bytes(2, "big", signed=True) + data[at + 2 :]
    if damage == "splice":
        where, length, how = params
        at, size = int(where * len(data)), int(length * len(data))
        if how == "cut":
            return data[:at] + data[at + size :]
        if how == "repeat":
            return data[: at + size] + data[at:]
        return data[:at] + random.Random(at).randbytes(size) + data[at + size :]
    region = min(512, len(data) // 4)
    start, size = {"head": (0, region), "body": (region, len(data) - 2 * region), "tail": (len(data) - region, region)}[
        damage.removeprefix("flip-")
    ]
    buf = bytearray(data)
    for where, xor in params:
        buf[start + int(where * size)] ^= xor
    return bytes(buf)


class Hang(BaseException):
    """Raised by the alarm; a BaseException so that main()'s catch-all cannot turn it into a message."""


@contextmanager
def time_limit(seconds: float):
    def expire(signum, frame):
        raise Hang(f"convert still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds, 1)  # again every second, should cleanup wait on a stuck thread
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.mark.parametrize("case", CASES, ids=[_case_id(n, c) for n, c in enumerate(CASES)])
def test_damaged_input(tmp_path: Path, bases, capfd, case):
    base, damage, params, out_ext = case
    in_ext = params[0] if damage == "rename" else base
    src = tmp_path / f"in.{in_ext}"
    src.write_bytes(_damage(bases[base], damage, params))
    dst = tmp_path / f"out.{out_ext}"

    with time_limit(CASE_SECONDS), pytest.raises(SystemExit) as exit_info:
        main(["convert", str(src), "-o", str(dst), *ARGS])
    code = exit_info.value.code
    err = capfd.readouterr().err

    lines = err.strip().splitlines()
    assert "Traceback" not in err, err
    assert "run with --debug" not in err, f"untyped error: {err}"
    assert all(line.startswith("memc: ") for line in lines), err  # nothing from FFmpeg or Python itself
    assert not [p.name for p in tmp_path.iterdir() if ".memc-tmp-" in p.name], "temporary file left behind"
    if _video_intact(damage, params):
        assert code == 0, err
    if code == 0:
        with av.open(str(dst)) as out:
            video = out.streams.video[0]
            assert video.average_rate == Fraction(FPS_OUT) or video.guessed_rate == Fraction(FPS_OUT)
            assert next(out.decode(video), None) is not None, "output has no decodable frame"
            # Damage must not stretch the output (e.g. a packet's time stamp far in the future).
            assert out.duration is None or out.duration / av.time_base < FRAMES / FPS_IN + 0.5, out.duration
    else:
        assert len(lines) == 1 and lines[0].startswith("memc: error: "), err  # -q: no warnings before it
        assert damage != "empty" or "empty file" in err, err
        assert "cannot open" not in err, err  # the file is there and readable: its content is the problem
        assert not dst.exists(), "output written although convert failed"
