"""Baselines: random search, single-metric greedy (registered direction), NASWOT-style sample-N-pick-best."""

from __future__ import annotations

import numpy as np
import pytest

from raynas.errors import SearchError, UnknownNameError
from raynas.search import CandidatePool, metric_order, random_search, sample_pick_best, single_metric_greedy
from raynas.testing import FakeOracle, synthetic_pool_table

KEYS = {"method", "arch_index", "value", "final", "queries", "cost", "queried", "values", "costs"}


def _setup(n=50):
    table, acc = synthetic_pool_table(n, 0)
    pool = CandidatePool.from_table(table, ["good", "bad", "noise"])
    oracle = FakeOracle(table["arch_index"], acc, costs=np.arange(n) + 1.0, finals=acc + 10)
    return pool, oracle, table, acc


def test_random_search():
    pool, oracle, table, acc = _setup()
    r = random_search(pool, oracle, 5, seed=7)
    picks = np.random.default_rng(7).choice(50, size=5, replace=False)
    assert r["queried"] == table["arch_index"][picks].tolist() == oracle.calls
    assert r["value"] == acc[picks].max() and r["final"] == acc[picks].max() + 10
    assert r["cost"] == float((picks + 1).sum()) and r["queries"] == 5 and KEYS <= set(r)
    assert random_search(pool, oracle, 5, seed=7)["queried"] == r["queried"]
    assert random_search(pool, oracle, 100, seed=0)["queries"] == 50  # capped at the pool size


def test_single_metric_greedy_directions():
    pool, oracle, table, acc = _setup()
    top3 = table["arch_index"][np.argsort(-acc)[:3]].tolist()
    r = single_metric_greedy(pool, oracle, 3, "good", higher_is_better=True)
    assert r["queried"] == top3 and r["arch_index"] == top3[0] and r["method"] == "greedy:good"
    assert single_metric_greedy(pool, oracle, 3, "bad", higher_is_better=False)["queried"] == top3
    worst = single_metric_greedy(pool, oracle, 3, "bad", higher_is_better=True)
    assert worst["queried"] == table["arch_index"][np.argsort(acc)[:3]].tolist()
    assert worst["value"] == np.sort(acc)[2] == pytest.approx(61.2)  # best of the 3 worst: 60 + 2 * 30 / 50


def test_registered_direction_and_nan_last():
    # naswot is registered higher-is-better; NaN must come last whatever the direction
    t = {"arch_index": np.array([4, 1, 3, 2]), "naswot": np.array([2.0, np.nan, 5.0, 1.0])}
    pool = CandidatePool.from_table(t, ["naswot"])
    assert pool.arch_index[metric_order(pool, "naswot")].tolist() == [3, 4, 2, 1]
    assert pool.arch_index[metric_order(pool, "naswot", higher_is_better=False)].tolist() == [2, 4, 3, 1]
    with pytest.raises(UnknownNameError):
        metric_order(CandidatePool.from_table({"arch_index": [0], "goodish": [1.0]}, ["goodish"]), "goodish")


def test_sample_pick_best():
    pool, oracle, table, acc = _setup()
    full = sample_pick_best(pool, oracle, 4, "good", sample_size=50, higher_is_better=True)
    # sampling the whole pool each round = greedy by the metric
    assert full["queried"] == single_metric_greedy(pool, oracle, 4, "good", higher_is_better=True)["queried"]
    r = sample_pick_best(pool, oracle, 10, "good", sample_size=5, seed=1, higher_is_better=True)
    assert r["queries"] == 10 == len(set(r["queried"])) and KEYS <= set(r)
    # each pick is the best of its sample, so picks beat plain random picks on average
    assert np.mean(r["values"]) > np.mean(random_search(pool, oracle, 10, seed=1)["values"])
    assert sample_pick_best(pool, oracle, 10, "good", sample_size=5, seed=1, higher_is_better=True) == r


def test_bad_inputs():
    pool, oracle, *_ = _setup()
    with pytest.raises(SearchError, match="budget"):
        random_search(pool, oracle, 0)
    with pytest.raises(SearchError, match="not in the pool"):
        single_metric_greedy(pool, oracle, 3, "synflow")
    with pytest.raises(SearchError, match="sample_size"):
        sample_pick_best(pool, oracle, 3, "good", sample_size=0, higher_is_better=True)
