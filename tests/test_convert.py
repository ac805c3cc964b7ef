"""End to end: files in, files out, through the CLI entry point."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from media import decode_rgb, probe, write_clip
from synthetic import Scene, psnr

from memc.cli import main

pytestmark = pytest.mark.slow  # end to end through the CLI

FAST = ["--dis-preset", "ultrafast", "--preset", "ultrafast", "-q"]


def run_cli(args, capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in args])
    return exit_info.value.code, capsys.readouterr().err


@pytest.fixture(scope="module")
def scene():
    return Scene(height=240, width=320, bg_velocity=(3.0, 1.0), fg_velocity=(-5.0, 2.0), size=60)


@pytest.fixture(scope="module")
def clip24(tmp_path_factory, scene):
    """2 s at 24 fps, 320x240, AAC audio."""
    path = tmp_path_factory.mktemp("clip") / "in.mp4"
    write_clip(path, [scene.frame_u8(k) for k in range(48)], 24, audio_seconds=2.0)
    return path


def test_24_to_60_rate_count_audio_and_quality(tmp_path, clip24, scene, capsys):
    out = tmp_path / "out.mp4"
    code, err = run_cli(["convert", clip24, "--fps", "60", "-o", out, "--flow", "dis", "--crf", "10"], capsys)
    assert code == 0, err
    info = probe(out)
    assert info["rate"] == 60
    assert abs(info["frames"] - 120) <= 1
    assert abs(info["audio_duration"] - info["video_duration"]) < 0.060
    frames = decode_rgb(out)
    # output frame 5k+1 sits at t = 0.4 between source frames 2k and 2k+1; compare with the truth
    scores = [psnr(frames[k], scene.frame_u8(k * 24 / 60), 12) for k in (1, 2, 26, 27, 51)]
    assert min(scores) > 30.0, scores  # x264 crf 10 + DIS; measured ~33-36 dB
    assert not list(tmp_path.glob(".*memc-tmp*"))  # temporary file renamed away


def test_default_output_name_and_refusals(tmp_path, clip24, capsys):
    src = tmp_path / "a.mp4"
    src.write_bytes(clip24.read_bytes())
    code, err = run_cli(["convert", src, "--fps", "30", *FAST], capsys)
    assert code == 0, err
    assert (tmp_path / "a.30fps.mp4").exists()
    code, err = run_cli(["convert", src, "--fps", "30", *FAST], capsys)
    assert code == 1 and "exists" in err and "Traceback" not in err
    code, err = run_cli(["convert", src, "--fps", "30", "-y", *FAST], capsys)
    assert code == 0, err
    code, err = run_cli(["convert", src, "--fps", "30", "-o", src, "-y", *FAST], capsys)
    assert code == 1 and "input" in err
    assert src.read_bytes() == clip24.read_bytes()  # never touched


@pytest.mark.parametrize(
    "fps_in, frames, args, rate, expected",
    [
        (25, 25, ["--fps", "50"], 50, 50),
        (30, 15, ["--fps", "120"], 120, 60),
        (60, 30, ["--fps", "24"], 24, 12),
        (25, 25, ["--fps", "24"], 24, 24),
        (24, 24, ["--factor", "2"], 48, 48),
    ],
)
def test_rate_pairs(tmp_path, capsys, fps_in, frames, args, rate, expected):
    src = tmp_path / "in.mkv"
    small = Scene(height=48, width=64, size=16)
    write_clip(src, [small.frame_u8(k) for k in range(frames)], fps_in)
    out = tmp_path / "out.mkv"
    code, err = run_cli(["convert", src, *args, "-o", out, "--flow", "dis", *FAST], capsys)
    assert code == 0, err
    info = probe(out)
    assert info["rate"] == rate and info["frames"] == expected


def test_ntsc_rates(tmp_path, capsys):
    from fractions import Fraction

    src = tmp_path / "in.mp4"
    small = Scene(height=48, width=64, size=16)
    write_clip(src, [small.frame_u8(k) for k in range(24)], Fraction(24000, 1001))
    out = tmp_path / "out.mp4"
    code, err = run_cli(["convert", src, "--fps", "59.94", "-o", out, "--flow", "dis", *FAST], capsys)
    assert code == 0, err
    info = probe(out)
    assert info["rate"] == Fraction(60000, 1001) and info["frames"] == 60


def test_ten_bit_stays_ten_bit(tmp_path, capsys):
    scene = Scene(height=48, width=64, size=16)
    frames = [(scene.render(k) * 65535).round().astype(np.uint16) for k in range(6)]
    src = tmp_path / "in10.mkv"
    write_clip(src, frames, 24, codec="ffv1", pix_fmt="yuv420p10le")
    out = tmp_path / "out10.mkv"
    code, err = run_cli(["convert", src, "--fps", "48", "-o", out, "--flow", "dis", *FAST], capsys)
    assert code == 0, err
    assert probe(out)["pix_fmt"] == "yuv420p10le"


def test_odd_size(tmp_path, capsys):
    scene = Scene(height=239, width=321, size=40)
    src = tmp_path / "odd.mkv"
    write_clip(src, [scene.frame_u8(k) for k in range(4)], 24, codec="ffv1", pix_fmt="yuv444p")
    out = tmp_path / "odd.mkv.out.mkv"
    code, err = run_cli(["convert", src, "--fps", "48", "-o", out, "--flow", "dis", "-c:v", "ffv1", *FAST], capsys)
    assert code == 0, err
    info = probe(out)
    assert (info["width"], info["height"], info["frames"]) == (321, 239, 8)


def test_scene_cut_is_never_blended(tmp_path, capsys):
    a = Scene(height=96, width=128, size=30, seed=1)
    b = Scene(height=96, width=128, size=30, seed=7, bg_velocity=(-2.0, 0.5))
    b.bg = 1.0 - b.bg  # different colours: a real cut
    sources = [a.frame_u8(k) for k in range(6)] + [b.frame_u8(k) for k in range(6)]
    src = tmp_path / "cut.mkv"
    write_clip(src, sources, 24, codec="ffv1", pix_fmt="yuv444p")
    out = tmp_path / "cut60.mkv"
    code, err = run_cli(["convert", src, "--fps", "60", "-o", out, "--flow", "dis", "-c:v", "ffv1", "-v"], capsys)
    assert code == 0, err
    assert "scene cut between source frames 5 and 6" in err
    frames, decoded = decode_rgb(out), decode_rgb(src)
    # output frames 13 and 14 (t = 0.2, 0.6 between source 5 and 6) must be copies of one side
    # (up to one more RGB -> YUV -> RGB rounding)
    for k, nearest in ((13, 5), (14, 6)):
        assert psnr(frames[k], decoded[nearest]) > 40
    code, err = run_cli(
        ["convert", src, "--fps", "60", "-o", out, "-y", "--flow", "dis", "-c:v", "ffv1", "--no-scene-detect", "-q"],
        capsys,
    )
    assert code == 0, err
    frames = decode_rgb(out)
    assert psnr(frames[14], decoded[6]) < 30  # without detection it morphs across the cut


def test_truncated_input_converts_what_decodes(tmp_path, capsys):
    mkv = tmp_path / "trunc.mkv"
    write_clip(mkv, [np.full((48, 64, 3), k * 5, np.uint8) for k in range(48)], 24, codec="ffv1")
    mkv.write_bytes(mkv.read_bytes()[: int(len(mkv.read_bytes()) * 0.5)])
    out = tmp_path / "t.mkv"
    code, err = run_cli(["convert", mkv, "--fps", "48", "-o", out, "--flow", "dis", *FAST[:-1]], capsys)
    assert code == 0, err
    assert "truncated" in err
    assert 0 < probe(out)["frames"] < 96


@pytest.mark.parametrize(
    "make, args, message",
    [
        (None, ["convert", "{dir}/missing.mp4", "--fps", "60"], "no such file"),
        ("text", ["convert", "{dir}/notes.txt", "--fps", "60", "-o", "{dir}/o.mp4"], "not a video"),
        ("clip", ["convert", "{dir}/in.mkv", "--fps", "sixty"], "sixty"),
        ("clip", ["convert", "{dir}/in.mkv", "--fps", "0"], "positive"),
        ("clip", ["convert", "{dir}/in.mkv", "--fps", "60", "--factor", "2"], "exclude"),
        ("clip", ["convert", "{dir}/in.mkv"], "--fps"),
        ("clip", ["convert", "{dir}/in.mkv", "--fps", "60", "-o", "{dir}/nodir/o.mp4"], "does not exist"),
        ("clip", ["convert", "{dir}/in.mkv", "--fps", "60", "-o", "{dir}/o.mp4", "--device", "cuda:3"], "cuda"),
        ("clip", ["convert", "{dir}/in.mkv", "--fps", "60", "-o", "{dir}/o.mp4", "-c:v", "nosuchcodec"], "nosuchcodec"),
    ],
)
def test_bad_input_is_one_line_nonzero_no_output(tmp_path, capsys, make, args, message):
    if make == "text":
        (tmp_path / "notes.txt").write_text("hello\n" * 100)
    elif make == "clip":
        write_clip(tmp_path / "in.mkv", [np.zeros((16, 16, 3), np.uint8)] * 3, 24, codec="ffv1")
    code, err = run_cli([a.format(dir=tmp_path) for a in args], capsys)
    assert code != 0
    assert message in err, err
    assert "Traceback" not in err
    assert {p.name for p in tmp_path.iterdir()} <= {"notes.txt", "in.mkv"}  # no output, no temporary


def test_unwritable_output_folder(tmp_path, capsys, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    if os.geteuid() == 0:  # root may write anywhere: let the check see what a user would
        real_access = os.access
        monkeypatch.setattr(os, "access", lambda path, mode: real_access(path, mode) and Path(path) != locked)
    write_clip(tmp_path / "in.mkv", [np.zeros((16, 16, 3), np.uint8)] * 3, 24, codec="ffv1")
    code, err = run_cli(["convert", tmp_path / "in.mkv", "--fps", "48", "-o", locked / "o.mkv"], capsys)
    assert code == 1 and "writable" in err


def test_pair_command(tmp_path, capsys):
    import cv2

    scene = Scene(height=120, width=160)
    for name, t in (("a.png", 0), ("b.png", 1)):
        cv2.imwrite(str(tmp_path / name), scene.frame_u8(t)[..., ::-1])
    code, err = run_cli(
        [
            "pair",
            tmp_path / "a.png",
            tmp_path / "b.png",
            "-t",
            "0.25,0.5",
            "-o",
            tmp_path / "mid_{t}.png",
            "--flow",
            "dis",
        ],
        capsys,
    )
    assert code == 0, err
    mid = cv2.imread(str(tmp_path / "mid_0.5.png"))[..., ::-1]
    assert psnr(mid, scene.frame_u8(0.5), 12) > 33
    assert (tmp_path / "mid_0.25.png").exists()
    code, err = run_cli(
        ["pair", tmp_path / "a.png", tmp_path / "b.png", "-t", "0.5,0.7", "-o", tmp_path / "m.png"], capsys
    )
    assert code == 2 and "{t}" in err


def test_vfr_input_gives_constant_rate_output(tmp_path, capsys):
    from fractions import Fraction

    import av

    scene = Scene(height=48, width=64, size=16)
    src = tmp_path / "vfr.mkv"
    times = [0, 1, 2, 4, 5, 8, 9, 10, 14, 15]  # in 1/30 s: gaps of 1, 2, 3 and 4 frames
    with av.open(str(src), "w") as out:
        stream = out.add_stream("ffv1", rate=30)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv444p"
        stream.time_base = Fraction(1, 30)
        for k in times:
            frame = av.VideoFrame.from_ndarray(scene.frame_u8(k / 4), format="rgb24")
            frame.pts, frame.time_base = k, Fraction(1, 30)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    out = tmp_path / "cfr.mkv"
    code, err = run_cli(["convert", src, "--fps", "60", "-o", out, "--flow", "dis", "-c:v", "ffv1", *FAST], capsys)
    assert code == 0, err
    info = probe(out)
    # input spans 16/30 s (last frame lasts one interval): 32 frames at 60 fps
    assert info["rate"] == 60 and info["frames"] == 32


def test_hw_encode_is_its_own_choice_not_the_device(tmp_path, clip24, capsys, monkeypatch):
    """--hw-encode auto picks NVENC whenever it opens, even with --device cpu; on fails in one line."""
    from memc.io import encode

    really_opens = encode._nvenc_usable("h264_nvenc", 256, 256, "yuv420p") is None
    out = tmp_path / "out.mp4"
    monkeypatch.setattr(encode, "_nvenc_usable", lambda *a: "no NVIDIA GPU")
    code, err = run_cli(
        ["convert", clip24, "--fps", "60", "-o", out, "--hw-encode", "on", "--device", "cpu", *FAST], capsys
    )
    assert code == 1 and err.strip() == (
        "memc: error: --hw-encode on: h264_nvenc cannot open here (no NVIDIA GPU); use --hw-encode auto or off"
    )
    assert not out.exists()
    code, err = run_cli(
        ["convert", clip24, "--fps", "60", "-o", out, "-c:v", "libx264", "--hw-encode", "on", *FAST], capsys
    )
    assert code == 1 and "memc: error: --hw-encode on asks for NVENC, but -c:v names libx264" in err
    if not really_opens:  # the probe says yes, the real encoder then cannot open: NVENC was chosen on the CPU
        monkeypatch.setattr(encode, "_nvenc_usable", lambda *a: None)
        code, err = run_cli(["convert", clip24, "--fps", "60", "-o", out, "--device", "cpu", *FAST], capsys)
        assert code == 1 and "h264_nvenc is not usable here" in err and len(err.strip().splitlines()) == 1


def test_hw_encode_auto_is_off_on_ray(tmp_path, clip24, capsys, monkeypatch):
    """Every segment must come from the same encoder: with --ray, auto does not probe each worker."""
    seen = {}

    def fake_ray(ctx, inputs, output, config, **options):
        seen["encode"] = config.encode
        ctx.exit(0)

    monkeypatch.setattr("memc.cli._convert_on_ray", fake_ray)
    for extra, expected in ([], "off"), (["--hw-encode", "on"], "on"), (["-c:v", "h264_nvenc"], "auto"):
        code, _ = run_cli(["convert", clip24, "--fps", "60", "-o", tmp_path / "o.mp4", *extra, *FAST, "--ray"], capsys)
        assert code == 0 and seen["encode"].hw_encode == expected
