"""The CLI repeats a few names of memc.estimate to start fast; they must not drift apart."""

from memc import cli, estimate


def test_cli_choices_match_estimators():
    assert cli.FLOW_CHOICES == estimate.FLOW_CHOICES
    assert cli.DIS_PRESETS == tuple(estimate.DIS_PRESETS)
