"""The multi-run pool readers the store provides for the searches: ``check_runs`` with a caller's planner,
``stored_space`` (``read_scores_wide`` / ``split_runs`` are covered in tests/search/test_runner.py)."""

from __future__ import annotations

import pytest

from raynas.errors import SearchError
from raynas.parallel import plan_run
from raynas.store import RunPlan, check_runs, open_store, results_to_table, stored_space
from raynas.testing import metric_results, planned_score_run


def _values(a):  # type: ignore[no-untyped-def]
    return {"params": 1.0 + a, "snip": 2.0 * a}


def test_check_runs_plans_each_run_with_the_given_planner(tmp_path):
    a = planned_score_run(tmp_path / "a", [0, 1, 2, 3], _values)
    b = planned_score_run(tmp_path / "b", [0, 1], _values)
    open_store(b).shard_path(0).unlink()
    checks = check_runs(f"{a}:{b}", planner=plan_run)
    assert [c.complete for c in checks] == [True, False] and checks[1].missing_shards == (0,)
    unplanned = check_runs(a)  # without a planner the plan is unknown: never reported complete
    assert unplanned[0].planned_archs is None and not unplanned[0].complete
    calls = []
    check_runs([a], planner=lambda cfg, run: calls.append(run) or RunPlan((0,), ((0, (0,)),), ("params",), 0))
    assert calls == [a]
    with pytest.raises(SearchError, match="does not exist"):
        check_runs(tmp_path / "nope", planner=plan_run)


def test_stored_space_from_config_else_rows(tmp_path):
    run = planned_score_run(tmp_path / "r", [0, 1], _values)
    assert stored_space(run) == "nb201"
    rows_only = open_store(tmp_path / "rows")
    rows_only.write_shard(0, results_to_table("darts", 0, "g", 0, "d", metric_results({"params": 1.0}), "h"))
    assert stored_space(tmp_path / "rows") == "darts"
    assert stored_space(tmp_path / "empty") is None
