"""RoBoT ask/tell: finds a known optimum, caches repeated archs, phase switch, greedy order, errors."""

from __future__ import annotations

import numpy as np
import pytest

from raynas.errors import ConfigError, SearchError
from raynas.search import CandidatePool, RoBoT, random_search
from raynas.search.robot import RoBoTConfig
from raynas.testing import FakeOracle, synthetic_pool_table

FAST = {"num_restarts": 2, "raw_samples": 32}


def _setup(metrics, n=300, seed=0):
    table, acc = synthetic_pool_table(n, seed)
    pool = CandidatePool.from_table(table, metrics)
    costs = 100.0 + np.arange(n)  # distinct costs so sums are checkable
    return pool, FakeOracle(table["arch_index"], acc, costs=costs), table, acc


@pytest.mark.parametrize("metrics", [["good", "bad"], ["bad", "good"]])
def test_finds_the_optimum_when_weights_can_express_it(metrics):
    # good ranks archs exactly like accuracy and bad exactly reversed: every w with w_good > w_bad ranks the best
    # arch first, so RoBoT must find it among its first few distinct queries, whatever the metric order.
    for seed in range(2):
        pool, oracle, table, acc = _setup(metrics, seed=seed)
        best = int(table["arch_index"][np.argmax(acc)])
        opts = {} if seed == 0 else FAST  # default BO effort once, the cheaper setting for the rest
        r = RoBoT(pool, oracle, budget=10, seed=seed, **opts).run()
        assert r["arch_index"] == best and r["value"] == acc.max() and r["final"] == acc.max()
        assert r["queried"].index(best) <= 2
        assert r["queries"] == 10 and len(set(oracle.calls)) == len(oracle.calls) == 10


@pytest.mark.slow
def test_noisy_metric_still_gives_a_top_arch():
    # a third, unrelated metric: RoBoT must learn to down-weight it
    got, rnd = [], []
    for seed in range(3):
        pool, oracle, table, acc = _setup(["good", "bad", "noise"], n=400, seed=seed)
        r = RoBoT(pool, oracle, budget=10, seed=seed, **FAST).run()
        got.append(int((acc > r["value"]).sum()))  # 0 = found the optimum
        rnd.append(int((acc > random_search(pool, oracle, 10, seed=seed)["value"]).sum()))
    # measured: RoBoT ranks (0, 8, 1) vs random search (11, 8, 87) archs better than its answer
    assert np.mean(got) <= 5 and max(got) <= 10  # top ~1% of 400 archs on average with 10 queries
    assert sum(got) < sum(rnd) / 3


def test_repeated_archs_cost_nothing_but_are_bo_observations():
    pool, oracle, table, acc = _setup(["good", "bad"])
    rows = []
    r = RoBoT(pool, oracle, budget=6, seed=0, **FAST).run(on_step=rows.append)
    assert len(rows) == r["steps"] > r["queries"] == 6  # the 2-D problem has only 3 reachable top archs
    cached = [x for x in rows if not x["new_query"]]
    assert cached and all(x["cost"] == 0.0 and x["kind"] == "bo" for x in cached)
    assert oracle.calls == r["queried"]  # each arch queried once
    assert r["cost"] == pytest.approx(sum(oracle.costs[a] for a in oracle.calls))
    assert rows[-1]["cumulative_cost"] == pytest.approx(r["cost"])
    assert r["t0"] == len({x["arch_index"] for x in rows if x["kind"] == "bo"})


def test_phases_and_greedy_order():
    pool, oracle, table, acc = _setup(["good", "bad"])
    robot = RoBoT(pool, oracle, budget=7, bo_iters=4, seed=0, **FAST)
    robot.run()
    kinds = [x["kind"] for x in robot.trace]
    assert kinds == ["bo"] * 4 + ["greedy"] * (len(kinds) - 4)
    w = robot.best_weights()
    assert w[0] > w[1]  # the best BO point ranks by accuracy
    by_acc = [int(a) for a in table["arch_index"][np.argsort(-acc)]]
    bo_archs = {x["arch_index"] for x in robot.trace[:4]}
    expected = [a for a in by_acc if a not in bo_archs][: len(kinds) - 4]
    assert [x["arch_index"] for x in robot.trace[4:]] == expected
    assert all(x["weights"] == list(w) for x in robot.trace[4:])


def test_bo_budget_ends_the_bo_phase():
    pool, oracle, *_ = _setup(["good", "bad"])
    robot = RoBoT(pool, oracle, budget=4, bo_budget=1, seed=0, **FAST)
    robot.run()
    assert [x["kind"] for x in robot.trace] == ["bo", "greedy", "greedy", "greedy"]
    assert robot.result()["t0"] == 1


def test_same_seed_same_search_other_seed_differs():
    pool, oracle, *_ = _setup(["good", "bad"])
    a = RoBoT(pool, oracle, budget=4, seed=1, **FAST)
    a.run()
    b = RoBoT(pool, oracle, budget=4, seed=1, **FAST)
    b.run()
    c = RoBoT(pool, oracle, budget=4, seed=2, **FAST)
    c.run()
    assert a.trace == b.trace
    assert a.trace[0]["weights"] != c.trace[0]["weights"]


def test_ask_tell_protocol_errors():
    pool, oracle, *_ = _setup(["good", "bad"], n=5)
    robot = RoBoT(pool, budget=3, seed=0, **FAST)
    p = robot.ask()
    assert robot.ask() == p and p.kind == "bo" and not p.cached and p.step == 0
    with pytest.raises(SearchError, match="finite"):
        robot.tell(p, float("nan"))
    with pytest.raises(SearchError, match="finite"):
        robot.tell(p, None)
    with pytest.raises(SearchError, match="cost"):
        robot.tell(p, 1.0, -1.0)
    robot.tell(p, 50.0, 2.0)
    with pytest.raises(SearchError, match="pending"):
        robot.tell(p, 50.0, 2.0)
    with pytest.raises(SearchError, match="oracle"):
        robot.run()
    told = {p.arch_index: 50.0}
    while not robot.done:
        q = robot.ask()
        if q.cached:
            row = robot.tell(q, 123.0)  # a different value for a cached arch: the cache wins
            assert (row["value"], row["cost"], row["new_query"]) == (told[q.arch_index], 0.0, False)
        else:
            told[q.arch_index] = oracle.query(q.arch_index).value
            robot.tell(q, told[q.arch_index], 1.0)
    assert robot.trace[-1]["cumulative_cost"] == 2.0 + 1.0 * (len(told) - 1)
    with pytest.raises(SearchError, match="done"):
        robot.ask()
    assert robot.result()["final"] is None  # no oracle attached


def test_budget_larger_than_pool_and_config_errors():
    pool, oracle, *_ = _setup(["good", "bad"], n=4)
    r = RoBoT(pool, oracle, budget=50, bo_iters=2, seed=0, **FAST).run()
    assert r["queries"] == 4 and sorted(r["queried"]) == sorted(pool.arch_index.tolist())
    for bad in ({"budget": 0}, {"bo_iters": 0}, {"bo_budget": 0}, {"n_init": 0}):
        with pytest.raises(ConfigError):
            RoBoT(pool, oracle, **bad)


def _tied_search(tie_break):
    # the 2-D problem reaches only 3 top archs, so several BO points share the best value
    pool, oracle, *_ = _setup(["good", "bad"])
    robot = RoBoT(pool, oracle, budget=8, seed=0, tie_break=tie_break, **FAST)
    robot.run()
    return pool, oracle, robot


@pytest.mark.parametrize("tie_break", ["latest", "earliest"])
def test_w_star_among_tied_best_follows_tie_break(tie_break):
    pool, oracle, robot = _tied_search(tie_break)
    y = np.asarray(robot._y)
    tied = np.flatnonzero(y == y.max())
    assert len(tied) >= 2  # else the test could not tell the rules apart
    expected = robot._X[tied[-1] if tie_break == "latest" else tied[0]]
    assert np.array_equal(robot.best_weights(), expected)
    greedy = [x for x in robot.trace if x["kind"] == "greedy"]
    assert greedy and all(x["weights"] == list(expected) for x in greedy)


def test_default_tie_break_is_earliest():
    assert RoBoTConfig().tie_break == "earliest"
    with pytest.raises(ConfigError, match="tie_break"):
        RoBoTConfig(tie_break="first")  # type: ignore[arg-type]


def test_states_saved_before_tie_break_existed_resume_with_the_earliest():
    from raynas.errors import StoreError

    pool, oracle, robot = _tied_search("earliest")
    cfg = robot.state_config()  # a state of the code before tie_break: no such key
    old = {**cfg, "robot": {k: v for k, v in cfg["robot"].items() if k != "tie_break"}}
    resumed = RoBoT.restore(robot.trace, old, pool, oracle)
    assert resumed.config.tie_break == "earliest" and resumed.trace == robot.trace
    latest = {**cfg, "robot": {**cfg["robot"], "tie_break": "latest"}}
    with pytest.raises(StoreError):  # the greedy rows were made with the other w*
        RoBoT.restore(robot.trace, latest, pool, oracle)
