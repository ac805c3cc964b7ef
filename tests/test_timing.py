from fractions import Fraction as Fr

import pytest

from memc.errors import InputError
from memc.timing import output_frame_count, parse_fps, retime


@pytest.mark.parametrize(
    "text, value",
    [
        ("60", Fr(60)),
        ("60000/1001", Fr(60000, 1001)),
        ("59.94", Fr(60000, 1001)),
        ("29.97", Fr(30000, 1001)),
        ("23.976", Fr(24000, 1001)),
        ("119.88", Fr(120000, 1001)),
        ("25", Fr(25)),
        ("12.5", Fr(25, 2)),
        ("30:1", Fr(30)),
    ],
)
def test_parse_fps(text, value):
    assert parse_fps(text) == value


@pytest.mark.parametrize("text", ["", "abc", "0", "-5", "60/0", "1/0", "5000", "60fps"])
def test_parse_fps_rejects(text):
    with pytest.raises(InputError):
        parse_fps(text)


def cfr(fps_in: Fr, frames: int, start: Fr = Fr(0)) -> list[Fr]:
    return [start + Fr(i) / fps_in for i in range(frames)]


@pytest.mark.parametrize(
    "fps_in, fps_out, seconds",
    [
        (Fr(24), Fr(60), 2),
        (Fr(24000, 1001), Fr(60000, 1001), 3),
        (Fr(25), Fr(50), 2),
        (Fr(30), Fr(120), 1),
        (Fr(60), Fr(24), 2),
        (Fr(25), Fr(24), 4),
        (Fr(24), Fr(60000, 1001), 2),
    ],
)
def test_retime_rate_pairs(fps_in, fps_out, seconds):
    n_in = int(fps_in * seconds)
    pts = cfr(fps_in, n_in, start=Fr(1, 3))
    out = list(retime(pts, fps_out))
    duration_in = Fr(n_in) / fps_in
    # exact count: every output slot k/fps_out inside [start, start + duration)
    assert len(out) == output_frame_count(Fr(0), duration_in, fps_out)
    assert abs(Fr(len(out)) / fps_out - duration_in) <= 1 / fps_out
    assert [o.index for o in out] == list(range(len(out)))
    for o in out:
        assert o.pts == Fr(1, 3) + Fr(o.index) / fps_out  # exact, no float drift
        assert 0 <= o.t < 1
        assert (
            pts[o.source] + o.t * (pts[o.source + 1] - pts[o.source] if o.source + 1 < n_in else 0) == o.pts
            or o.source == n_in - 1
        )
    assert out[0].pts == pts[0] and out[0].t == 0  # first pts preserved, first frame copied
    assert all(a.pts < b.pts for a, b in zip(out, out[1:]))


def test_24_to_60_phases():
    out = list(retime(cfr(Fr(24), 48), Fr(60)))
    assert len(out) == 120
    # 24 -> 60 repeats a 2-source-frame / 5-output-frame cycle: t = 0, 0.4, 0.8 then 0.2, 0.6
    assert [(o.source, o.t) for o in out[:5]] == [(0, 0), (0, Fr(2, 5)), (0, Fr(4, 5)), (1, Fr(1, 5)), (1, Fr(3, 5))]
    assert out[-1].pts == Fr(119, 60)


def test_ntsc_film_to_ntsc_60():
    out = list(retime(cfr(Fr(24000, 1001), 24), Fr(60000, 1001)))
    assert len(out) == 60
    assert out[5].t == 0 and out[5].source == 2  # the cycle lines up exactly every 2 source frames


def test_downward_60_to_24_interpolates_half_phases():
    out = list(retime(cfr(Fr(60), 60), Fr(24)))
    assert len(out) == 24
    assert {o.t for o in out} == {Fr(0), Fr(1, 2)}


def test_vfr_input():
    pts = [Fr(0), Fr(1, 30), Fr(3, 30), Fr(4, 30), Fr(10, 30)]
    out = list(retime(pts, Fr(30), end=Fr(11, 30)))
    assert len(out) == 11
    assert [o.source for o in out] == [0, 1, 1, 2, 3, 3, 3, 3, 3, 3, 4]
    assert out[2].t == Fr(1, 2)
    assert out[5].t == Fr(1, 6)


def test_single_frame_and_empty():
    assert list(retime([], Fr(60))) == []
    out = list(retime([Fr(0)], Fr(60)))
    assert len(out) == 1 and out[0].t == 0


def test_non_increasing_pts_rejected():
    with pytest.raises(ValueError):
        list(retime([Fr(0), Fr(0)], Fr(60)))


def test_millisecond_timestamps_snap_to_the_nominal_rate():
    from memc.timing import snap_to_grid

    tb = Fr(1, 1000)
    stored = [Fr(round(Fr(k, 30) * 1000), 1000) for k in range(15)]  # what Matroska keeps of 30 fps
    snapped = [snap_to_grid(p, Fr(0), Fr(30), tb) for p in stored]
    assert snapped == [Fr(k, 30) for k in range(15)]
    assert len(list(retime(snapped, Fr(120)))) == 60
    # a genuinely off-grid (VFR) timestamp is left alone
    assert snap_to_grid(Fr(50, 1000), Fr(0), Fr(30), tb) == Fr(50, 1000)


def test_a_slice_on_the_whole_grid_gives_the_whole_runs_frames():
    """What a segment of --ray relies on: retime of frames a..b with the video's start numbers and
    times its output frames as the whole run does, for those in [pts_a, pts_b)."""
    pts = [Fr(k, 24) + Fr(1, 7) for k in range(48)]
    whole = list(retime(pts, Fr(60000, 1001)))
    a, b = 13, 31
    lo, hi = pts[a], pts[b]
    part = [o for o in retime(pts[a : b + 1], Fr(60000, 1001), start=pts[0]) if lo <= o.pts < hi]
    expected = [o for o in whole if lo <= o.pts < hi]
    assert [(o.index, o.pts, o.source + a, o.t) for o in part] == [(o.index, o.pts, o.source, o.t) for o in expected]
