"""memc as a filter: y4m / rawvideo on stdin, y4m / rawvideo / matroska / nut on stdout.

The Done-when case, a closing reader and latency run the real CLI in a subprocess
(``python -m memc``): pipes, SIGPIPE and what lands on stdout versus stderr are only real
there. The format variations run in-process through click's CliRunner (stdin/stdout are byte
buffers there too), which saves a torch start-up per case. Clips are 64x48.
"""

from __future__ import annotations

import io
import os
import select
import subprocess
import sys
import time
from fractions import Fraction

import av
import numpy as np
import pytest
from click.testing import CliRunner

from memc.cli import cli

pytestmark = pytest.mark.slow  # end to end through pipes

W, H = 64, 48
FAST = ["--flow", "dis", "--dis-preset", "ultrafast"]
MEMC = [sys.executable, "-m", "memc", "convert", "-", "--fps", "60", *FAST]


def rgb_frame(k: float, dtype=np.uint8) -> np.ndarray:
    """A smooth gradient drifting 2 px per frame under a textured band: real motion, no noise.
    Any k, so the true in-between frames are known too."""
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    x = xx - 2 * k
    image = np.stack([128 + 100 * np.sin(x / 7), 128 + 100 * np.cos(yy / 5 + x / 11), 60 + yy * 3], axis=-1)
    image = np.clip(image, 0, 255) / 255
    scale = 65535 if dtype == np.uint16 else 255
    return (image * scale).round().astype(dtype)


def rgb_frames(n: int, dtype=np.uint8) -> list[np.ndarray]:
    return [rgb_frame(k, dtype) for k in range(n)]


def make_y4m(n: int, fps: int = 24, pix_fmt: str = "yuv420p") -> bytes:
    """A YUV4MPEG2 stream made with PyAV (what ``ffmpeg -f yuv4mpegpipe -`` would write)."""
    buffer = io.BytesIO()
    depth = np.uint16 if "10" in pix_fmt else np.uint8
    with av.open(buffer, "w", format="yuv4mpegpipe", options={"strict": "-1"}) as out:
        stream = out.add_stream("wrapped_avframe", rate=fps)
        stream.width, stream.height, stream.pix_fmt = W, H, pix_fmt
        for k, rgb in enumerate(rgb_frames(n, depth)):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb48le" if depth == np.uint16 else "rgb24")
            frame = frame.reformat(format=pix_fmt)
            frame.pts, frame.time_base = k, Fraction(1, fps)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return buffer.getvalue()


def parse_y4m(data: bytes) -> tuple[dict[str, str], list[bytes]]:
    """Header tags and the raw frames; raises if the stream is not exactly Y4M (no stray bytes)."""
    end = data.index(b"\n")
    magic, *tags = data[:end].decode("ascii").split(" ")
    assert magic == "YUV4MPEG2"
    header = {tag[0]: tag[1:] for tag in tags}
    width, height = int(header["W"]), int(header["H"])
    bytes_per_sample = 2 if header.get("C", "420jpeg").endswith(("p10", "p12", "p16")) else 1
    size = width * height * 3 // 2 * bytes_per_sample  # 4:2:0
    frames, pos = [], end + 1
    while pos < len(data):
        line_end = data.index(b"\n", pos)
        assert data[pos:line_end].startswith(b"FRAME"), f"expected FRAME at byte {pos}"
        frames.append(data[line_end + 1 : line_end + 1 + size])
        assert len(frames[-1]) == size, "truncated frame"
        pos = line_end + 1 + size
    return header, frames


def run_memc(args: list[str], stdin: bytes) -> subprocess.CompletedProcess:
    return subprocess.run(MEMC + args, input=stdin, capture_output=True, timeout=120)


def invoke(args: list[str], stdin: bytes) -> tuple[bytes, bytes]:
    """``memc convert - --fps 60 ARGS`` in-process; returns (stdout, stderr) bytes of a success."""
    result = CliRunner().invoke(cli, MEMC[3:] + args, input=stdin)
    assert result.exit_code == 0, (result.exception, result.stderr)
    return result.stdout_bytes, result.stderr_bytes


def test_y4m_in_and_out():
    source = make_y4m(48)  # 2 s at 24 fps
    result = run_memc(["-o", "-"], source)
    assert result.returncode == 0, result.stderr.decode()
    header, frames = parse_y4m(result.stdout)  # stdout is nothing but Y4M
    assert header["F"] == "60:1"
    assert (header["W"], header["H"]) == (str(W), str(H))
    assert abs(len(frames) - 120) <= 1
    _, source_frames = parse_y4m(source)
    first_in = np.frombuffer(source_frames[0], np.uint8).astype(int)
    first_out = np.frombuffer(frames[0], np.uint8).astype(int)
    # t = 0 is the source frame itself; YUV -> RGB -> YUV rounding moves samples by a code or two.
    assert np.abs(first_in - first_out).max() <= 3
    # output frame 61 is at t = 0.4 between source frames 24 and 25: compare its luma with the truth
    middle = np.frombuffer(frames[61], np.uint8)[: W * H].reshape(H, W).astype(int)
    truth = av.VideoFrame.from_ndarray(rgb_frame(24.4), format="rgb24").reformat(format="yuv420p")
    truth_luma = truth.to_ndarray()[:H].astype(int)
    # measured 1.1 codes; a copy of source frame 24 (no in-between frame at all) is 2.6
    assert np.abs(middle - truth_luma)[4:-4, 4:-4].mean() < 2
    assert b"YUV4MPEG2" not in result.stderr and b"FRAME" not in result.stderr


def test_y4m_10bit_stays_10bit():
    stdout, _ = invoke(["-o", "-"], make_y4m(12, pix_fmt="yuv420p10le"))
    header, frames = parse_y4m(stdout)
    assert header["C"].startswith("420p10")
    assert header["F"] == "60:1"
    assert abs(len(frames) - 30) <= 1
    samples = np.frombuffer(frames[0], "<u2")
    assert samples.max() < 1024 and samples.max() > 255  # really 10-bit codes


@pytest.mark.parametrize("pix_fmt, bytes_per_frame", [("rgb24", W * H * 3), ("yuv420p", W * H * 3 // 2)])
def test_rawvideo_in_and_out(pix_fmt, bytes_per_frame):
    frames = [av.VideoFrame.from_ndarray(f, format="rgb24").reformat(format=pix_fmt) for f in rgb_frames(24)]
    raw = b"".join(f.to_ndarray().tobytes() for f in frames)  # 1 s at 24 fps -> 60 frames at 60 fps
    assert len(raw) == 24 * bytes_per_frame
    stdout, _ = invoke(
        [
            "--in-format",
            "rawvideo",
            "--size",
            f"{W}x{H}",
            "--pix-fmt",
            pix_fmt,
            "--in-fps",
            "24",
            "-f",
            "rawvideo",
            "-o",
            "-",
        ],
        raw,
    )
    assert len(stdout) == 60 * W * H * 3  # rawvideo out is rgb24: exactly 60 frames, nothing else
    first = np.frombuffer(stdout[: W * H * 3], np.uint8).reshape(H, W, 3).astype(int)
    # t = 0 is the source frame: bit-exact from rgb24; from yuv420p, within the rounding of the
    # YUV -> RGB conversion (BT.601, limited range: the rule for untagged sources).
    expected = frames[0].to_ndarray(format="rgb24").astype(int)
    assert np.abs(first - expected).max() <= (0 if pix_fmt == "rgb24" else 2)


@pytest.mark.parametrize("container", ["matroska", "nut"])
def test_container_to_stdout(container):
    stdout, _ = invoke(["-f", container, "--preset", "ultrafast", "-o", "-"], make_y4m(12))
    with av.open(io.BytesIO(stdout)) as decoded:
        assert decoded.format.name.split(",")[0] == container
        stream = decoded.streams.video[0]
        assert stream.average_rate == 60
        assert abs(sum(1 for _ in decoded.decode(stream)) - 30) <= 1


def test_reader_closing_early_ends_quietly(tmp_path):
    source = tmp_path / "in.y4m"
    source.write_bytes(make_y4m(48))  # 120 output frames, ~550 KB: far more than a pipe buffer
    with source.open("rb") as stdin:
        process = subprocess.Popen(MEMC + ["-o", "-"], stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert process.stdout.read(1000).startswith(b"YUV4MPEG2")
        process.stdout.close()  # the reader goes away, like `| head -c 1000`
        _, stderr = process.communicate(timeout=120)
    assert process.returncode != 0
    assert b"Traceback" not in stderr and b"Exception ignored" not in stderr, stderr.decode()


@pytest.mark.skipif(sys.platform == "win32", reason="select() on pipes is POSIX-only")
def test_frames_flow_before_input_ends():
    """Low latency: output appears while stdin is still open, so nothing waits for the end."""
    source = make_y4m(6)
    process = subprocess.Popen(
        MEMC + ["-q", "-o", "-"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    try:
        header_end = source.index(b"FRAME")
        third = source.index(b"FRAME", source.index(b"FRAME", header_end + 1) + 1)
        process.stdin.write(source[: source.index(b"FRAME", third + 1)])  # header + 3 frames, stdin left open
        process.stdin.flush()
        received, deadline = b"", time.monotonic() + 90  # start-up (torch import) dominates on a busy machine
        while received.count(b"FRAME") < 3 and time.monotonic() < deadline:
            ready, _, _ = select.select([process.stdout], [], [], 1.0)
            if ready:
                chunk = os.read(process.stdout.fileno(), 65536)
                assert chunk, "memc ended early"
                received += chunk
        # Frames 0 and 1 give the outputs at 0, 1/60 and 2/60 s (all before 1/24 s).
        assert received.count(b"FRAME") >= 3
    finally:
        process.kill()
        process.communicate()
