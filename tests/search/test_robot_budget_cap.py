"""Issue 13, defect 2: a budget beyond the pool is capped (and reported), and a BO step's cost does not grow.

Cost is counted, never timed: a spy on :func:`raynas.search.bo._gp_step` (one GP fit plus one acquisition
optimisation per call) counts GP steps per ``ask`` and between two new queries.
"""

from __future__ import annotations

import numpy as np
import pytest

import raynas.search.bo as bo
from raynas.search import CandidatePool, RoBoT
from raynas.search.base import save_search_state
from raynas.search.hnas import HNAS
from raynas.testing import FakeOracle, hnas_pool_table

FAST = {"num_restarts": 2, "raw_samples": 32}
#: a search that is not capped runs ~1000 GP steps on the 40-arch pool; the spy stops it long before that
GP_LIMIT = 200


class GPSpy:
    """Counts calls of ``bo._gp_step`` and fails fast once ``limit`` is passed (so a regression cannot hang)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, limit: int = GP_LIMIT):
        self.calls = 0
        self.limit = limit
        real = bo._gp_step

        def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
            self.calls += 1
            if self.calls > self.limit:
                raise AssertionError(f"more than {self.limit} GP fits / acquisition optimisations")
            return real(*args, **kwargs)

        monkeypatch.setattr(bo, "_gp_step", spy)


def one_metric_pool(n: int, seed: int = 0) -> tuple[CandidatePool, FakeOracle]:
    """``params`` only: w in [-1, 1] ranks first either the largest or the smallest net, so the BO can reach
    just 2 of the ``n`` archs (the user's ``--metrics params`` case)."""
    rng = np.random.default_rng(seed)
    idx = 7 * np.arange(n, dtype=np.int64)
    table = {"arch_index": idx, "params": 1000.0 * rng.permutation(n) + 1.0}
    return CandidatePool.from_table(table, ["params"]), FakeOracle(idx, 60.0 + 30.0 * rng.random(n))


def test_budget_beyond_the_pool_is_capped_and_reported(monkeypatch):
    spy = GPSpy(monkeypatch)
    pool, oracle = one_metric_pool(40)
    robot = RoBoT(pool, oracle, budget=1000, seed=0, **FAST)
    assert (robot.budget, robot.bo_iters) == (40, 40)
    r = robot.run()
    assert r["queries"] == 40 and sorted(r["queried"]) == sorted(pool.arch_index.tolist())
    assert (r["budget"], r["budget_requested"], r["pool_size"]) == (40, 1000, 40)
    assert r["bo_iters"] <= 40 and spy.calls <= 40


def test_explicit_bo_iters_beyond_the_pool_is_capped(monkeypatch):
    GPSpy(monkeypatch)
    pool, oracle = one_metric_pool(12)
    robot = RoBoT(pool, oracle, budget=5, bo_iters=500, seed=0, **FAST)
    assert robot.bo_iters == 12
    assert robot.run()["bo_iters"] == 12


def test_gp_steps_between_new_queries_do_not_grow_with_what_the_pool_has_left(monkeypatch):
    # Before the fix the BO phase only ended after bo_iters iterations: with 2 reachable archs every later
    # iteration re-proposed one of them, so the 3rd new query waited for (budget - 2) GP fits, each on more points.
    spy = GPSpy(monkeypatch)
    pool, oracle = one_metric_pool(200)
    robot = RoBoT(pool, oracle, budget=60, seed=0, **FAST)
    per_ask, since_new, gaps = [], 0, []
    while not robot.done:
        before = spy.calls
        p = robot.ask()
        per_ask.append(spy.calls - before)
        since_new += spy.calls - before
        if p.cached:
            robot.tell(p)
        else:
            res = oracle.query(p.arch_index)
            robot.tell(p, res.value, res.cost_seconds)
        if not p.cached:
            gaps.append(since_new)
            since_new = 0
    patience = robot.config.bo_patience
    assert max(per_ask) == 1  # one GP fit + one acquisition optimisation per ask, whatever the history
    assert max(gaps) <= patience + 1  # a new query never waits for more than `patience` repeated proposals
    assert robot.result()["queries"] == 60 and robot.result()["bo_stop"] == "patience"
    assert spy.calls <= 2 + patience + 1


def test_patience_none_keeps_the_paper_rule_and_the_state_resumes(tmp_path, monkeypatch):
    GPSpy(monkeypatch)
    pool, oracle = one_metric_pool(20)
    full = RoBoT(pool, oracle, budget=8, bo_patience=None, seed=0, **FAST)
    full.run()
    assert [x["kind"] for x in full.trace].count("bo") == 8  # bo_iters (= budget) iterations, repeats included
    part = RoBoT(pool, oracle, budget=8, seed=0, **FAST)
    p = part.ask()
    part.tell(p, oracle.query(p.arch_index).value, 1.0)
    save_search_state(part, tmp_path / "s.parquet")
    resumed = RoBoT.from_state(tmp_path / "s.parquet", pool, oracle)
    assert resumed.config.bo_patience == part.config.bo_patience
    resumed.run()
    ref = RoBoT(pool, oracle, budget=8, seed=0, **FAST)
    ref.run()
    assert [(x["kind"], x["arch_index"]) for x in resumed.trace] == [(x["kind"], x["arch_index"]) for x in ref.trace]


def test_hnas_iteration_cap_follows_the_capped_budget(monkeypatch):
    spy = GPSpy(monkeypatch, limit=3 * 31)
    table, acc = hnas_pool_table(31, 0, "target", "ntk_trace")
    pool = HNAS.pool_from_table(table, "ntk_trace")
    h = HNAS(pool, FakeOracle(table["arch_index"], acc), budget=1000, seed=0, **FAST)
    assert h.budget == 31 and h.max_iters == 3 * 31
    r = h.run()
    assert (r["budget"], r["budget_requested"], r["max_iters"]) == (31, 1000, 93)
    assert spy.calls <= 93
