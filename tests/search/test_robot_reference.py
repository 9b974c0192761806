"""RoBoTReference (issue 30 item 4): the authors' RoBoT loop on bayes_opt as an ask/tell query search. It queries
what the authors' ``maximize`` loop queries (written out below with the objective, as the robustness benchmark
ran it before the loop moved into the library), resumes exactly by replaying the seeded loop, is sequential only,
and says how to install bayes_opt when it is missing."""

from __future__ import annotations

import importlib.util
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from raynas.errors import ConfigError, SearchError, StoreError
from raynas.search import CandidatePool
from raynas.search.robot_reference import (INSTALL_HINT, ReferenceUnavailableError, RoBoTReference,
                                           RoBoTReferenceConfig, authors_normalize)
from raynas.store.search_state import load_search_state
from raynas.testing import FakeOracle
from raynas_tests.interrupt import Stop, stop_after


def _setup(k=3, n=40, seed=0):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    idx = 2 * np.arange(n) + 1
    metrics = list("abcd"[:k])
    table = {"arch_index": idx, **{m: rng.normal(size=n) for m in metrics}}
    return table, metrics, FakeOracle(idx, rng.normal(size=n), costs=1.0 + np.arange(n))


def _search(k=3, n=40, data_seed=0, **kw):  # type: ignore[no-untyped-def]
    table, metrics, oracle = _setup(k, n, data_seed)
    return RoBoTReference(CandidatePool.from_table(table, metrics), oracle, **kw)


def _maximize_loop(table, metrics, oracle, budget, seed,  # type: ignore[no-untyped-def]
                   kappa=2.576, init_points=0, bo_iters=None):
    """The authors' loop driven by bayes_opt's own ``maximize`` with the objective (as
    ``scripts/bench_search_robustness.py`` ran it): ``(archs queried in order, the BO points evaluated, T0)``."""
    from bayes_opt import BayesianOptimization
    from bayes_opt.acquisition import UpperConfidenceBound

    x = np.stack([np.asarray(table[m], dtype=np.float64) for m in metrics], axis=1)
    lo, hi = x.min(axis=0), x.max(axis=0)
    score_matrix = (x - lo) / (hi - lo)  # the test pools have no missing score and no constant column
    idx = np.asarray(table["arch_index"])
    budget = min(budget, len(idx))
    queried: list[int] = []
    points: list[np.ndarray] = []
    best: list = [-np.inf, None]

    def f(**kw):  # type: ignore[no-untyped-def]
        w = np.array([kw[m] for m in metrics])
        pos = int(np.argsort(score_matrix @ w)[-1])
        v = oracle.query(int(idx[pos])).value
        if v >= best[0]:
            best[:] = [v, w]
        if pos not in queried:
            queried.append(pos)
        points.append(w)
        return v

    opt = BayesianOptimization(f=f, pbounds={m: (-1.0, 1.0) for m in metrics}, random_state=seed, verbose=0,
                               acquisition_function=UpperConfidenceBound(kappa=kappa))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        opt.maximize(init_points=init_points, n_iter=(bo_iters or budget) - max(init_points, 1))
    t0 = len(queried)
    for p in np.argsort(score_matrix @ best[1])[::-1]:
        if len(queried) >= budget:
            break
        if int(p) not in queried:
            queried.append(int(p))
    return [int(idx[p]) for p in queried], points, t0


def _qbatch():  # type: ignore[no-untyped-def]
    """tests/search/test_qbatch.py as a module (its OrderExecutor: failures, a driver that dies)."""
    spec = importlib.util.spec_from_file_location("_qbatch", Path(__file__).with_name("test_qbatch.py"))
    mod = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


# ----------------------------------------------------------------------------- without bayes_opt
def test_without_bayes_opt_construction_says_how_to_install_it(monkeypatch):
    table, metrics, oracle = _setup()
    pool = CandidatePool.from_table(table, metrics)
    monkeypatch.setitem(sys.modules, "bayes_opt", None)  # `import bayes_opt` raises ImportError
    monkeypatch.setitem(sys.modules, "bayes_opt.acquisition", None)
    with pytest.raises(ReferenceUnavailableError, match=r"pip install 'raynas\[bench\]'") as e:
        RoBoTReference(pool, oracle, budget=5)
    assert isinstance(e.value, ConfigError) and INSTALL_HINT in str(e.value) and "\n" not in str(e.value)


def test_q_above_1_is_a_config_error_saying_the_loop_is_sequential():
    with pytest.raises(ConfigError, match="sequential"):
        RoBoTReferenceConfig(q=2)
    table, metrics, oracle = _setup()
    with pytest.raises(ConfigError, match="sequential"):
        RoBoTReference(CandidatePool.from_table(table, metrics), oracle, q=3)


@pytest.mark.parametrize("bad", [dict(budget=0), dict(seed=-1), dict(kappa=-1.0), dict(kappa=float("inf")),
                                 dict(init_points=-1), dict(bo_iters=0), dict(q=0), dict(budget=True),
                                 dict(kappa="2")])
def test_bad_settings_are_config_errors(bad):
    with pytest.raises(ConfigError):
        RoBoTReferenceConfig(**bad)


def test_defaults_are_the_authors_settings():
    c = RoBoTReferenceConfig()
    assert (c.budget, c.seed, c.kappa, c.init_points, c.bo_iters, c.q) == (20, 0, 2.576, 0, None, 1)


def test_authors_normalize_keeps_missing_scores_and_constant_columns():
    raw = np.array([[1.0, 10.0], [3.0, np.nan], [3.0, 10.0], [0.0, np.inf]])
    norm = authors_normalize(raw)
    assert norm[:, 0].tolist() == [1 / 3, 1.0, 1.0, 0.0]
    assert np.isnan(norm[[1, 3], 1]).all() and norm[[0, 2], 1].tolist() == [10.0, 10.0]


# ----------------------------------------------------------------------------- with bayes_opt
@pytest.mark.parametrize("k,data_seed,seed,budget,kw", [
    (3, 0, 0, 8, {}),
    (2, 1, 5, 10, {}),
    (3, 2, 1, 10, dict(init_points=2, bo_iters=6)),
    # kappa 0.1 on one metric: bayes_opt suggests points it has already observed, which maximize answers from its
    # cache without calling the objective (the skipped BO iterations)
    (1, 0, 0, 10, dict(kappa=0.1, bo_iters=15)),
])
def test_queries_what_the_authors_maximize_loop_queries(k, data_seed, seed, budget, kw):
    pytest.importorskip("bayes_opt")
    table, metrics, oracle = _setup(k, 30, data_seed)
    s = RoBoTReference(CandidatePool.from_table(table, metrics), oracle, budget=budget, seed=seed, **kw)
    r = s.run()
    archs, points, t0 = _maximize_loop(table, metrics, oracle, budget, seed, **kw)
    assert r["queried"] == archs and r["t0"] == t0
    assert r["arch_index"] == max(archs, key=lambda a: (oracle.values[a], -archs.index(a)))  # first of the best
    bo = [row for row in s.trace if row["kind"] == "bo"]
    # the same BO points in the same order (both paths run the same seeded bayes_opt in this process)
    assert np.array_equal(np.array([row["weights"] for row in bo]), np.array(points))
    assert len(bo) + r["skipped"] == r["bo_iters"] and (r["skipped"] > 0) == ("kappa" in kw)
    assert {row["kind"] for row in s.trace[len(bo):]} <= {"greedy"}


def test_the_weights_column_carries_the_bo_point_then_w_star():
    pytest.importorskip("bayes_opt")
    s = _search(k=3, n=30, budget=8, seed=2)
    r = s.run()
    norm = np.nan_to_num(authors_normalize(s.pool.raw))
    bo = [row for row in s.trace if row["kind"] == "bo"]
    for row in bo:
        w = np.asarray(row["weights"])
        assert w.shape == (3,) and np.all(np.abs(w) <= 1.0)
        assert row["arch_index"] == int(s.pool.arch_index[int(np.argsort(norm @ w)[-1])])
    best = max(row["value"] for row in bo)
    w_star = [row["weights"] for row in bo if row["value"] == best][-1]  # the latest of the best
    assert r["weights"] == w_star
    assert all(row["weights"] == w_star for row in s.trace if row["kind"] == "greedy")
    assert len(r["queried"]) == 8 == len(set(r["queried"])) and r["stop"] == "budget"


def test_resume_after_a_kill_continues_exactly(tmp_path):
    pytest.importorskip("bayes_opt")
    full = _search(budget=10, seed=3)
    full.run()
    assert [row["kind"] for row in full.trace].count("bo") == 10 and len(full.trace) > 10  # 10: a greedy step
    for stop in (1, 4, 11):
        cut = _search(budget=10, seed=3)
        path = tmp_path / f"state{stop}.arrow"
        with pytest.raises(Stop):
            cut.run(stop_after(stop), state_path=path)
        assert len(load_search_state(path).rows) == stop
        resumed = RoBoTReference.from_state(path, cut.pool, cut.oracle)
        assert resumed.trace == full.trace[:stop]
        resumed.run(state_path=path)
        assert resumed.trace == full.trace and resumed.result() == full.result()


def test_resume_with_the_query_in_flight_continues_exactly(tmp_path):
    pytest.importorskip("bayes_opt")
    qbatch = _qbatch()
    full = _search(budget=8, seed=4)
    full.run()
    cut = _search(budget=8, seed=4)
    path = tmp_path / "state.arrow"
    with pytest.raises(qbatch.Interrupted):  # dies waiting for its 4th answer: the 4th proposal is in flight
        cut.run(state_path=path, executor=qbatch.OrderExecutor(cut.oracle, stop_after=3))
    assert len(load_search_state(path).in_flight) == 1
    resumed = RoBoTReference.from_state(path, cut.pool, cut.oracle)
    assert resumed.pending[0].arch_index == full.trace[len(resumed.trace)]["arch_index"]
    resumed.run(state_path=path)
    assert resumed.trace == full.trace


def test_a_saved_row_the_loop_would_not_propose_is_refused(tmp_path):
    pytest.importorskip("bayes_opt")
    s = _search(budget=5, seed=0)
    path = tmp_path / "state.arrow"
    s.run(state_path=path)
    st = load_search_state(path)
    rows = [dict(r) for r in st.rows]
    rows[2]["weights"] = [0.5 * v for v in rows[2]["weights"]]  # not the point the seeded BO suggests
    with pytest.raises(StoreError, match="row 2"):
        RoBoTReference.restore(rows, st.config, s.pool, s.oracle)
    other = _search(budget=5, seed=0, data_seed=1)
    with pytest.raises(StoreError, match="different candidate pool"):
        RoBoTReference.from_state(path, other.pool, other.oracle)


def test_a_failed_query_is_never_proposed_again_and_the_budget_is_still_met():
    pytest.importorskip("bayes_opt")
    qbatch = _qbatch()
    first = _search(budget=8, seed=1)
    first.run()
    bad = first.trace[1]["arch_index"]
    s = _search(budget=8, seed=1)
    s.run(executor=qbatch.OrderExecutor(s.oracle, fail=[bad]))
    assert bad not in [row["arch_index"] for row in s.trace] and [f["arch_index"] for f in s.failed] == [bad]
    assert len(s.result()["queried"]) == 8 and s.result()["stop"] == "budget"


def test_every_bo_query_failing_stops_without_a_w_star():
    pytest.importorskip("bayes_opt")
    s = _search(k=2, n=10, budget=3, seed=0)
    while not s.done:
        s.tell_failed(s.ask(), "diverged")
    assert s.stop_reason() == "no_bo_value" and len(s.failed) == 3 and s.trace == []
    with pytest.raises(SearchError):
        s.best_weights()
