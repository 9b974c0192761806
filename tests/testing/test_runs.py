"""The run fakes of raynas.testing: a planned run written by hand is complete, in the default space, and the
tiny scoring config names the default space too (the fakes name no search space themselves)."""

from __future__ import annotations

from pathlib import Path

import pytest

import raynas.testing
from raynas.spaces import DEFAULT_SPACE
from raynas.store import ScoreStore
from raynas.testing import assert_complete, planned_score_run, score_rows, tiny_score_config


def test_planned_score_run_is_complete_in_the_default_space(tmp_path: Path) -> None:
    run = planned_score_run(tmp_path, [3, 5, 7], lambda a: {"params": float(a), "naswot": -float(a)})
    assert ScoreStore(run).load_config()["identity"]["space"] == DEFAULT_SPACE
    assert set(ScoreStore(run).read(["space"]).column("space").to_pylist()) == {DEFAULT_SPACE}
    assert_complete(run, [3, 5, 7], metrics=("params", "naswot"))
    assert [r[:4] for r in score_rows(run) if r[1] == "params"] == [(a, "params", 0, float(a)) for a in (3, 5, 7)]


def test_assert_complete_names_the_missing_rows(tmp_path: Path) -> None:
    run = planned_score_run(tmp_path, [3, 5], lambda a: {"params": 1.0})
    with pytest.raises(AssertionError, match=r"missing \[\(9, 'params', 0\)\]"):
        assert_complete(run, [3, 5, 9], metrics=("params",))


def test_tiny_score_config_uses_the_default_space(tmp_path: Path) -> None:
    cfg = tiny_score_config(tmp_path, sample=2)
    assert cfg["space"] == DEFAULT_SPACE and cfg["sample"] == 2 and cfg["out"] == str(tmp_path)


def test_every_exported_name_exists() -> None:
    for name in raynas.testing.__all__:
        assert hasattr(raynas.testing, name), name
