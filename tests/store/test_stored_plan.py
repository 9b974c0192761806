"""A score run stores its plan with its config, so ``ScoreStore(run)`` alone judges completeness (issue 29 item 7)."""

from __future__ import annotations

import json

import pytest

import raynas
from raynas.errors import StoreError
from raynas.parallel import open_run
from raynas.parallel.planner import plan_run
from raynas.store import ScoreStore
from raynas.store.plan import NO_PLANNER

KW = dict(space="nb201", metrics=["params"], data="noise", batch_size=4, space_kwargs={"C": 4, "N": 1}, workers=0)


def test_a_store_opened_on_the_run_alone_knows_the_plan(tmp_path):
    run = tmp_path / "run"
    raynas.score(run, sample=5, seed=0, **KW)
    store = ScoreStore(run)
    assert store.stored_plan() == plan_run(store.flat_config(), store.run_dir)  # what the planner recomputes
    c = store.completeness()
    assert c.complete and c.planned_archs == 5, c.summary()
    assert c.summary() == open_run(run).completeness().summary()
    # a planned shard removed: the plain store sees it missing, as the planner-opened one does
    store.shard_files()[0].unlink()
    assert not ScoreStore(run).completeness().complete
    assert "missing" in " ".join(ScoreStore(run).completeness().problems())


def test_a_run_written_before_plans_were_stored_gets_one_on_resume(tmp_path):
    run = tmp_path / "run"
    raynas.score(run, sample=3, seed=1, **KW)
    cfg_path = run / "config.json"
    old = json.loads(cfg_path.read_text())
    del old["plan"]
    cfg_path.write_text(json.dumps(old))
    assert ScoreStore(run).completeness().config_error == NO_PLANNER  # no plan, no planner: unknown total
    assert open_run(run).completeness().complete  # the planner still plans it
    raynas.score(run, sample=3, seed=1, resume=True, **KW)
    assert ScoreStore(run).completeness().complete
    new = json.loads(cfg_path.read_text())
    assert {k: v for k, v in new.items() if k != "plan"} == old  # the config itself is unchanged


def test_a_malformed_plan_is_a_store_error(tmp_path):
    run = tmp_path / "run"
    raynas.score(run, sample=2, seed=0, **KW)
    cfg = json.loads((run / "config.json").read_text())
    cfg["plan"] = {"ids": [1]}
    (run / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(StoreError, match="malformed plan section"):
        ScoreStore(run).stored_plan()
