"""RandomSearch (issue 30 item 4): random search as an ask/tell query search. With q = 1 it queries what
``baselines.random_search`` queries; with q > 1 the same archs; a resumed search continues exactly; a failed query
is replaced by the next arch of the seeded order."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from raynas.errors import ConfigError, StoreError
from raynas.search import CandidatePool
from raynas.search.baselines import random_search
from raynas.search.random_baseline import RandomConfig, RandomSearch, draw_order
from raynas.store.search_state import load_search_state
from raynas.testing import FakeOracle, synthetic_pool_table
from raynas_tests.interrupt import Stop, stop_after

_spec = importlib.util.spec_from_file_location("_qbatch", Path(__file__).with_name("test_qbatch.py"))
_qbatch = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
_spec.loader.exec_module(_qbatch)  # type: ignore[union-attr]
OrderExecutor, Interrupted = _qbatch.OrderExecutor, _qbatch.Interrupted


def _setup(n=60, seed=0):  # type: ignore[no-untyped-def]
    table, acc = synthetic_pool_table(n, seed)
    return CandidatePool.from_table(table, ["good", "noise"]), FakeOracle(table["arch_index"], acc,
                                                                          costs=1.0 + np.arange(n))


@pytest.mark.parametrize("seed,budget", [(0, 10), (3, 25), (7, 1), (1, 60), (2, 80)])
def test_q1_queries_what_the_baseline_queries(seed, budget):
    pool, oracle = _setup()
    r = RandomSearch(pool, oracle, budget=budget, seed=seed).run()
    b = random_search(pool, oracle, budget, seed)
    for key in ("queried", "values", "costs", "arch_index", "value", "final", "queries", "cost", "method"):
        assert r[key] == b[key], key
    assert r["seed"] == seed and r["q"] == 1 and r["failed_queries"] == []
    assert r["stop"] == ("budget" if budget <= len(pool) else "pool_exhausted")


@pytest.mark.parametrize("q", [2, 3, 7])
def test_the_queried_archs_do_not_depend_on_q(q):
    seq = RandomSearch(*_setup(), budget=15, seed=4)
    seq.run()
    pool, oracle = _setup()
    s = RandomSearch(pool, oracle, budget=15, seed=4, q=q)
    ex = OrderExecutor(oracle, "reverse")  # answers come back newest first
    s.run(executor=ex)
    assert ex.max_running == q
    assert [r["arch_index"] for r in s.trace] == [r["arch_index"] for r in seq.trace]  # told in proposal order
    assert s.result()["arch_index"] == seq.result()["arch_index"] and len(set(r["arch_index"] for r in s.trace)) == 15


def test_rows_are_random_steps_without_weights():
    pool, oracle = _setup()
    s = RandomSearch(pool, oracle, budget=5, seed=0)
    p = s.ask()
    assert (p.step, p.kind, p.weights, p.cached) == (0, "random", (), False)
    row = s.tell(p, oracle.query(p.arch_index).value, 2.0)
    assert row["weights"] == [] and row["new_query"] and row["cost"] == 2.0


@pytest.mark.parametrize("stop", [1, 4, 9])
def test_resume_from_the_state_file_continues_exactly(tmp_path, stop):
    full = RandomSearch(*_setup(), budget=12, seed=5)
    full.run()
    pool, oracle = _setup()
    path = tmp_path / "state.arrow"
    with pytest.raises(Stop):
        RandomSearch(pool, oracle, budget=12, seed=5).run(stop_after(stop), state_path=path)
    assert len(load_search_state(path).rows) == stop
    resumed = RandomSearch.from_state(path, pool, oracle)
    assert len(resumed.trace) == stop and resumed.config == RandomConfig(budget=12, seed=5)
    resumed.run(state_path=path)
    assert resumed.trace == full.trace and resumed.result() == full.result()


def test_resume_with_queries_in_flight_is_exact(tmp_path):
    full = RandomSearch(*_setup(), budget=12, seed=6, q=3)
    full.run(executor=OrderExecutor(full.oracle, "reverse"))
    for stop in (1, 5):
        path = tmp_path / f"state{stop}.arrow"
        pool, oracle = _setup()
        with pytest.raises(Interrupted):
            RandomSearch(pool, oracle, budget=12, seed=6, q=3).run(
                state_path=path, executor=OrderExecutor(oracle, "reverse", stop_after=stop))
        assert load_search_state(path).in_flight
        resumed = RandomSearch.from_state(path, pool, oracle)
        resumed.run(state_path=path, executor=OrderExecutor(oracle, "reverse"))
        assert resumed.trace == full.trace


def test_a_state_of_another_seed_or_pool_is_refused(tmp_path):
    pool, oracle = _setup()
    path = tmp_path / "state.arrow"
    s = RandomSearch(pool, oracle, budget=6, seed=1)
    s.run(state_path=path)
    st = load_search_state(path)
    cfg = {**st.config, "random": {**st.config["random"], "seed": 2}}  # the rows are seed 1's
    with pytest.raises(StoreError, match="inconsistent"):
        RandomSearch.restore(st.rows, cfg, pool, oracle)
    other, _ = _setup(n=61)
    with pytest.raises(StoreError, match="different candidate pool"):
        RandomSearch.from_state(path, other, oracle)


def test_a_failed_query_is_replaced_by_the_next_arch_of_the_order():
    pool, oracle = _setup()
    order = [int(pool.arch_index[p]) for p in draw_order(len(pool), 8, 3)]
    bad = order[2]
    s = RandomSearch(pool, oracle, budget=8, seed=3)
    s.run(executor=OrderExecutor(oracle, fail=[bad]))
    assert [r["arch_index"] for r in s.trace] == order[:2] + order[3:9]
    assert [f["arch_index"] for f in s.failed] == [bad] and s.result()["stop"] == "budget"


def test_draw_order_is_a_permutation_led_by_the_baselines_draw():
    o = draw_order(30, 7, 11)
    assert sorted(o.tolist()) == list(range(30))
    assert o[:7].tolist() == np.random.default_rng(11).choice(30, size=7, replace=False).tolist()
    assert o.tolist() == draw_order(30, 7, 11).tolist() and o.tolist() != draw_order(30, 7, 12).tolist()


@pytest.mark.parametrize("bad", [dict(budget=0), dict(q=0), dict(seed=-1), dict(budget=True), dict(q=1.5),
                                 dict(seed="0")])
def test_bad_settings_are_config_errors(bad):
    with pytest.raises(ConfigError):
        RandomConfig(**bad)
    with pytest.raises(ConfigError):
        RandomSearch(_setup()[0], **bad)
