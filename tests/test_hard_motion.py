"""The synthetic hard-motion suite: seeded, exact, and reachable from ``memc eval --hard-motion``."""

import json

import numpy as np
from click.testing import CliRunner

from memc.cli import cli
from memc.hard_motion import SCENES, make_scene


def test_scenes_are_seeded_and_render_their_motion():
    for name in SCENES:
        a, b = make_scene(name, 3, []), make_scene(name, 3, [])
        assert np.array_equal(a.frame_u8(0.5), b.frame_u8(0.5))
        assert not np.array_equal(a.frame_u8(0), a.frame_u8(1))
    scene = make_scene("small_disc", 0, [])
    sprite = scene.sprites[0]
    assert abs(np.hypot(*sprite.velocity) - 24) < 1e-9
    # the object mask follows the disc: about pi r^2 = 79 px at one time, more with the dilation
    at_half = scene.object_mask((0.5,), dilate=0)
    assert 60 < at_half.sum() < 110
    ys, xs = np.nonzero(at_half)
    centre = (sprite.start[0] + sprite.velocity[0] / 2, sprite.start[1] + sprite.velocity[1] / 2)
    assert abs(xs.mean() - centre[0]) < 0.5 and abs(ys.mean() - centre[1]) < 0.5


def test_eval_hard_motion_command():
    result = CliRunner().invoke(cli, ["eval", "--hard-motion", "--seeds", "1", "--flow", "blend", "--json"])
    assert result.exit_code == 0, result.output
    scores = json.loads(result.output)["blend"]
    assert set(scores) == set(SCENES)
    for entry in scores.values():
        assert entry["object_psnr"] < entry["psnr"]  # the objects are where frame blending fails


def test_eval_without_folder_or_suite_is_a_usage_error():
    result = CliRunner().invoke(cli, ["eval"])
    assert result.exit_code == 2
