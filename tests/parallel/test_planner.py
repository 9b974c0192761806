"""``plan_run`` / ``open_run``: the scoring planner the store takes (issue 15), and the one VOLATILE_KEYS."""

from __future__ import annotations

import pytest

import raynas.parallel.config as pconfig
import raynas.store as store_pkg
from raynas.errors import ConfigError, StoreError
from raynas.parallel import ScoreConfig, open_run, plan_run
from raynas.store import RunPlan, ScoreStore


def test_open_run_plans_its_stored_config(tmp_path):
    store = open_run(tmp_path)
    assert isinstance(store, ScoreStore) and store.planner is plan_run
    store.save_config(ScoreConfig(out=str(tmp_path), metrics=("params",), ids=(4, 2, 9), shard_size=2,
                                  workers=0).resolved())
    c = store.completeness()
    assert c.planned_archs == 3 and c.planned_shards == (0, 1) and c.missing_shards == (0, 1)


def test_plan_run_rejects_what_is_not_a_scoring_config(tmp_path):
    with pytest.raises(ConfigError):
        plan_run({"space": "nb201", "bogus": 1}, tmp_path)
    assert plan_run({"space": "nb201", "ids": [3], "metrics": ["params"], "seed": 2}, tmp_path) == \
        RunPlan((3,), ((0, (3,)),), ("params",), 2)


def test_one_volatile_list_and_it_is_complete(tmp_path):
    assert pconfig.VOLATILE_KEYS is store_pkg.VOLATILE_KEYS
    assert {"shard_timeout_s", "metric_modules"} <= set(store_pkg.VOLATILE_KEYS)
    # a flat stored config (no identity section): an execution-only key such as shard_timeout_s may change
    store = open_run(tmp_path)
    store.save_config({"space": "nb201", "seed": 0, "shard_timeout_s": 10})
    assert store.check_config({"space": "nb201", "seed": 0, "shard_timeout_s": 99}) == []
    with pytest.raises(StoreError, match="seed"):
        store.check_config({"space": "nb201", "seed": 1})
