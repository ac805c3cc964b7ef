"""Segments (the pieces --ray converts apart) joined back are the local conversion: frame count,
timestamps and pixels (lossless x264), audio kept; also across a scene cut right at a join.

In-process and without Ray: plan -> convert_segment for each piece -> join, against pipeline.convert.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import pytest
from media import decode_rgb, write_clip
from synthetic import Scene

from memc.config import ConvertConfig, EncodeOptions
from memc.motion.interpolate import Interpolator
from memc.pipeline import convert
from memc.segments import convert_segment, join, plan

KEYFRAMES = {"preset": "ultrafast", "crf": "12", "g": "12", "keyint_min": "12", "sc_threshold": "0"}


@pytest.fixture(scope="module")
def interpolator() -> Interpolator:
    return Interpolator(device="cpu", flow="dis", dis_preset="ultrafast")


def frames(cut_at: int | None = None, n: int = 36) -> list:
    """A moving scene; from ``cut_at`` on, another one (a scene cut between cut_at - 1 and cut_at)."""
    first = Scene(height=48, width=64, size=16, seed=0)
    second = Scene(height=48, width=64, size=12, seed=7, bg_velocity=(-2.0, 1.0))
    darker = lambda k: (second.frame_u8(0.5 * k) * 0.4).astype("uint8")  # noqa: E731 - another histogram
    return [darker(k) if cut_at is not None and k >= cut_at else first.frame_u8(0.5 * k) for k in range(n)]


def times(path: Path) -> list[Fraction]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return [frame.pts * stream.time_base for frame in container.decode(stream)]


def convert_in_segments(src: Path, dst: Path, config: ConvertConfig, interpolator: Interpolator, seconds: float):
    pieces = plan(src, config, seconds)
    parts, stats = [], []
    for segment in pieces.segments:
        part = dst.with_name(f"seg{segment.index}{dst.suffix}")
        stats.append(convert_segment(src, part, config, interpolator, segment))
        parts.append((part, segment.first))
    join(src, parts, dst, config, pieces.fps)
    return pieces, stats


@pytest.mark.parametrize(
    ("suffix", "source_fps", "fps"),
    [(".mp4", 24, Fraction(60)), (".mkv", Fraction(24000, 1001), Fraction(60000, 1001)), (".mov", 25, Fraction(50))],
)
def test_joined_segments_are_the_local_conversion(tmp_path, interpolator, suffix, source_fps, fps):
    src = tmp_path / f"in{suffix}"
    write_clip(src, frames(), fps=source_fps, audio_seconds=1.5, options=KEYFRAMES)
    config = ConvertConfig(fps=fps, encode=EncodeOptions(preset="ultrafast", crf=0))
    local = convert(src, tmp_path / f"local{suffix}", config, interpolator)
    pieces, stats = convert_in_segments(src, tmp_path / f"joined{suffix}", config, interpolator, 0.5)
    assert len(pieces.segments) >= 2  # a keyframe every 12 frames, a cut at the first after 0.5 s
    assert sum(s.output_frames for s in stats) == local.output_frames == pieces.outputs
    assert times(tmp_path / f"joined{suffix}") == times(tmp_path / f"local{suffix}")  # exact, Fractions
    for a, b in zip(decode_rgb(tmp_path / f"joined{suffix}"), decode_rgb(tmp_path / f"local{suffix}")):
        assert (a == b).all()
    with av.open(str(tmp_path / f"joined{suffix}")) as container:
        assert container.streams.audio


@pytest.mark.parametrize("cut_at", [24, 30])  # at a join (a keyframe), and inside a segment
def test_a_scene_cut_at_a_join_is_held_as_locally(tmp_path, interpolator, cut_at):
    src = tmp_path / "in.mp4"
    write_clip(src, frames(cut_at), fps=24, options=KEYFRAMES)
    config = ConvertConfig(fps=60, encode=EncodeOptions(preset="ultrafast", crf=0))
    local = convert(src, tmp_path / "local.mp4", config, interpolator)
    pieces, stats = convert_in_segments(src, tmp_path / "joined.mp4", config, interpolator, 1.0)
    assert any(s.lo == Fraction(1) for s in pieces.segments)  # a join at frame 24 (1 s)
    assert local.scene_cuts == 1 and sum(s.scene_cuts for s in stats) == 1
    assert times(tmp_path / "joined.mp4") == times(tmp_path / "local.mp4")
    for a, b in zip(decode_rgb(tmp_path / "joined.mp4"), decode_rgb(tmp_path / "local.mp4")):
        assert (a == b).all()


def test_dedup_and_short_files_are_left_whole(tmp_path):
    src = tmp_path / "in.mp4"
    write_clip(src, frames(n=30), fps=24, options=KEYFRAMES)
    assert len(plan(src, ConvertConfig(fps=60), 0.5).segments) >= 2
    assert len(plan(src, ConvertConfig(fps=60, dedup=10.0), 0.5).segments) == 1  # dedup remembers across pairs
    assert len(plan(src, ConvertConfig(fps=60), 0).segments) == 1
    assert len(plan(src, ConvertConfig(fps=60), 10).segments) == 1
