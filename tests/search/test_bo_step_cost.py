"""Issue 19, item 4: a BO step's cost does not grow with the budget or the history, and a search whose budget
exceeds what the pool can yield ends with a recorded reason.

Cost is counted, never timed: a spy on :func:`raynas.search.bo._gp_step` (one GP fit plus one acquisition
optimisation per call) records how many observations each GP step is fitted on and with which optimiser settings.
"""

from __future__ import annotations

import numpy as np
import pytest

import raynas.search.bo as bo
from raynas.errors import ConfigError, SearchError
from raynas.search import CandidatePool, RoBoT
from raynas.search.hnas import HNAS
from raynas.testing import FakeOracle, hnas_pool_table, synthetic_pool_table

FAST = {"num_restarts": 2, "raw_samples": 32}
#: HNAS's cache-repeat mode (a re-proposed queried arch is a free observation), which these tests pin; the
#: default since issue 19 is exclude_queried=True
REPEATS = {"exclude_queried": False}


class GPSpy:
    """Records ``(n observations, num_restarts, raw_samples)`` of every ``bo._gp_step`` call; fails past
    ``limit`` calls so a regression cannot hang the suite."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, limit: int = 400):
        self.calls: list[tuple[int, int, int]] = []
        real = bo._gp_step

        def spy(X, y, bounds, acquisition, num_restarts, raw_samples, *args, **kwargs):  # type: ignore[no-untyped-def]
            self.calls.append((len(X), int(num_restarts), int(raw_samples)))
            if len(self.calls) > limit:
                raise AssertionError(f"more than {limit} GP fits / acquisition optimisations")
            return real(X, y, bounds, acquisition, num_restarts, raw_samples, *args, **kwargs)

        monkeypatch.setattr(bo, "_gp_step", spy)


def synthetic(n: int = 200, seed: int = 0) -> tuple[CandidatePool, FakeOracle]:
    table, acc = synthetic_pool_table(n, seed)
    return CandidatePool.from_table(table, ["good", "bad", "noise"]), FakeOracle(table["arch_index"], acc)


def hnas_pool(n: int) -> tuple[CandidatePool, FakeOracle]:
    table, acc = hnas_pool_table(n, 0, "target", "ntk_trace")
    return HNAS.pool_from_table(table, "ntk_trace"), FakeOracle(table["arch_index"], acc)


def drive_by_hand(search, oracle, fail=()):  # type: ignore[no-untyped-def]
    """The driver's ask/query/tell loop, with the queries of the archs in ``fail`` told as failed."""
    while not search.done:
        p = search.ask()
        if p.cached:
            search.tell(p)
        elif p.arch_index in fail:
            search.tell_failed(p, "the training crashed")
        else:
            res = oracle.query(p.arch_index)
            search.tell(p, res.value, res.cost_seconds)
    return search.result()


# ------------------------------------------------------------------ the GP window
def test_gp_window_keeps_the_best_half_and_the_most_recent():
    y = np.array([5.0, 1.0, 9.0, 2.0, 9.0, 3.0, 0.0, 5.0, 1.0, 2.0])
    np.testing.assert_array_equal(bo.gp_window(y, 10), np.arange(10))
    # best 2 (the two 9s), then the 2 latest of the others (positions 8, 9)
    np.testing.assert_array_equal(bo.gp_window(y, 4), [2, 4, 8, 9])
    # a tie for the third best place: the earliest (5.0 at 0, not at 7) is kept as a best one
    np.testing.assert_array_equal(bo.gp_window(y, 6), [0, 2, 4, 7, 8, 9])
    with pytest.raises(SearchError):
        bo.gp_window(y, 1)


def test_propose_fits_at_most_max_points_and_all_of_them_below(monkeypatch):
    seen: list[np.ndarray] = []
    real = bo._gp_step
    monkeypatch.setattr(bo, "_gp_step", lambda X, *a, **k: seen.append(X.copy()) or real(X, *a, **k))
    rng = np.random.default_rng(0)
    b = np.array([[-1.0, -1.0], [1.0, 1.0]])
    X = rng.uniform(-1, 1, (30, 2))
    y = -((X[:, 0] - 0.3) ** 2)
    bo.propose(X, y, b, 0, max_points=12, **FAST)
    np.testing.assert_array_equal(seen[-1], X[bo.gp_window(y, 12)])
    assert len(seen[-1]) == 12
    bo.propose(X, y, b, 0, max_points=30, **FAST)
    np.testing.assert_array_equal(seen[-1], X)  # up to max_points: every observation, as before
    bo.propose(X, y, b, 0, max_points=None, **FAST)
    np.testing.assert_array_equal(seen[-1], X)
    assert bo.GP_MAX_POINTS >= 100  # no search of the test suite or the README's benchmarks reaches it
    for bad in (1, 0, True):
        with pytest.raises(SearchError):
            bo.propose(X, y, b, 0, max_points=bad)


def test_robot_gp_steps_are_fitted_on_a_bounded_window(monkeypatch):
    # the paper's rule (no patience): every one of the bo_iters = budget BO steps fits a GP
    spy = GPSpy(monkeypatch)
    pool, oracle = synthetic(60)
    r = drive_by_hand(RoBoT(pool, oracle, budget=14, bo_patience=None, gp_max_points=6, seed=0, **FAST), oracle)
    sizes = [n for n, _, _ in spy.calls]
    assert len(sizes) == 14 - 3 and max(sizes) == 6  # n_init=3 Sobol points, then 11 GP steps of at most 6 points
    assert r["stop"] == "budget"
    with pytest.raises(ConfigError):
        RoBoT(pool, oracle, gp_max_points=1)


def test_a_step_is_the_same_whatever_the_budget(monkeypatch):
    # the same history gives the same proposal with the same optimiser effort and the same GP size: nothing of a
    # step is sized by the budget or by the queries left
    spy = GPSpy(monkeypatch)
    pool, oracle = synthetic(200)
    runs = {}
    for budget in (20, 1000):
        spy.calls.clear()
        s = RoBoT(pool, oracle, budget=budget, seed=3, **FAST)
        props = []
        for _ in range(8):
            p = s.ask()
            props.append((p.kind, p.weights, p.arch_index))
            s.tell(p) if p.cached else s.tell(p, oracle.query(p.arch_index).value, 1.0)
        runs[budget] = (props, list(spy.calls))
    assert runs[20] == runs[1000]
    assert {(r, s) for _, r, s in runs[1000][1]} == {(FAST["num_restarts"], FAST["raw_samples"])}


# ------------------------------------------------------------ ending with a reason
def test_hnas_ends_on_patience_when_the_objective_reaches_no_new_arch(monkeypatch):
    # The argmin of F reaches a handful of the 40 archs; before the fix HNAS spun through all 3 * 40 = 120 BO
    # steps (GP fits) for them, a new query waiting for up to ~100 fits on an ever-growing set.
    spy = GPSpy(monkeypatch)
    pool, oracle = hnas_pool(40)
    h = HNAS(pool, oracle, budget=1000, seed=0, **REPEATS, **FAST)
    gaps, since = [], 0
    while not h.done:
        before = len(spy.calls)
        p = h.ask()
        since += len(spy.calls) - before
        if p.cached:
            h.tell(p)
        else:
            h.tell(p, oracle.query(p.arch_index).value, 1.0)
            gaps.append(since)
            since = 0
    r = h.result()
    patience = h.config.patience
    assert r["stop"] == "patience" and r["queries"] < 40
    assert max(gaps) <= patience + 1  # a new query never waits for more than `patience` repeats
    assert r["steps"] <= r["queries"] + patience * r["queries"] + patience
    assert [x["new_query"] for x in h.trace[-patience:]] == [False] * patience
    assert len(spy.calls) == r["steps"] - h.config.n_init


def test_hnas_patience_none_keeps_the_iteration_cap(monkeypatch):
    GPSpy(monkeypatch)
    pool, oracle = hnas_pool(12)
    r = HNAS(pool, oracle, budget=1000, patience=None, seed=0, **REPEATS, **FAST).run()
    assert r["stop"] == "max_iters" and r["steps"] == 3 * 12
    with pytest.raises(ConfigError):
        HNAS(pool, oracle, patience=0)


@pytest.mark.parametrize("q", [1, 2])
def test_hnas_patience_with_queries_in_flight(monkeypatch, q):
    GPSpy(monkeypatch)
    pool, oracle = hnas_pool(40)
    h = HNAS(pool, oracle, budget=1000, seed=0, q=q, patience=4, **REPEATS, **FAST)
    r = h.run()
    assert r["stop"] == "patience" and not h.pending
    assert [x["new_query"] for x in h.trace[-4:]] == [False] * 4


def test_hnas_excluding_queried_archs_ends_when_the_pool_is_exhausted_by_failures(monkeypatch):
    # one query fails, so the capped budget (every valid arch) can never be reached: before the fix the next
    # proposal raised "every valid architecture of the pool has been queried"
    GPSpy(monkeypatch)
    pool, oracle = hnas_pool(10)
    bad = int(pool.arch_index[4])
    r = drive_by_hand(HNAS(pool, oracle, budget=1000, exclude_queried=True, seed=0, **FAST), oracle, fail={bad})
    assert r["stop"] == "pool_exhausted" and r["queries"] == 9 and bad not in r["queried"]
    assert [f["arch_index"] for f in r["failed_queries"]] == [bad]


def test_robot_ends_when_the_pool_is_exhausted_by_failures(monkeypatch):
    GPSpy(monkeypatch)
    pool, oracle = synthetic(12)
    bad = int(pool.arch_index[5])
    r = drive_by_hand(RoBoT(pool, oracle, budget=1000, seed=0, **FAST), oracle, fail={bad})
    assert r["stop"] == "pool_exhausted" and r["queries"] == 11 and sorted(r["queried"] + [bad]) == list(
        pool.arch_index)


def test_robot_stop_reasons(monkeypatch):
    GPSpy(monkeypatch)
    pool, oracle = synthetic(12)
    assert RoBoT(pool, oracle, budget=5, seed=0, **FAST).run()["stop"] == "budget"
    assert RoBoT(pool, oracle, budget=12, seed=0, **FAST).run()["stop"] == "budget"
    r = RoBoT(pool, oracle, budget=1000, seed=0, **FAST).run()
    assert (r["stop"], r["queries"]) == ("pool_exhausted", 12)
    hp, ho = hnas_pool(8)
    assert HNAS(hp, ho, budget=3, seed=0, exclude_queried=True, **FAST).run()["stop"] == "budget"
    assert HNAS(hp, ho, budget=100, seed=0, exclude_queried=True, **FAST).run()["stop"] == "pool_exhausted"


def test_states_saved_before_the_rules_existed_continue_without_them():
    pool, _ = synthetic(12)
    cfg = RoBoT(pool, budget=3).state_config()
    for key in ("bo_patience", "gp_max_points"):
        cfg["robot"].pop(key)
    assert RoBoT.restore([], cfg, pool).config.gp_max_points is None
    hp, _ = hnas_pool(8)
    cfg = HNAS(hp, budget=3).state_config()
    for key in ("patience", "gp_max_points"):
        cfg["hnas"].pop(key)
    old = HNAS.restore([], cfg, hp)
    assert (old.config.patience, old.config.gp_max_points) == (None, None)
