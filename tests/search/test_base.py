"""``QuerySearch``: the ask/tell contract shared by RoBoT and HNAS, pinned on a tiny scripted subclass (no BO):
budget in distinct queries, repeated archs answered from the log, tell validation, tell writes nothing, and a
search resumed from its saved state equals the uninterrupted one."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pytest

from raynas.errors import SearchError, StoreError
from raynas.search.base import QuerySearch, save_search_state
from raynas.search.pool import CandidatePool
from raynas.store.search_state import load_state, save_state
from raynas.testing import FakeOracle

ARCHS = [10, 11, 12, 13, 14]
VALUES = [5.0, 9.0, 1.0, 7.0, 3.0]


@dataclass(frozen=True)
class ScriptedConfig:
    budget: int = 3
    plan: tuple[int, ...] = (0, 1, 1, 2, 0, 3)  # pool positions proposed in turn: repeats included


@dataclass(frozen=True)
class Step:
    step: int
    kind: str
    weights: tuple[float, ...]
    arch_index: int
    cached: bool


class Scripted(QuerySearch[Step]):
    """Proposes the pool positions of ``plan`` in turn (``weights = (position,)``)."""

    method = "scripted"
    config_cls = ScriptedConfig
    label = "Scripted"

    def __init__(self, pool, oracle=None, *, budget=3, plan=(0, 1, 1, 2, 0, 3)):  # type: ignore[no-untyped-def]
        super().__init__(pool, oracle, ScriptedConfig(budget, tuple(plan)))
        self.budget = min(budget, len(pool))

    def _position(self) -> int:
        return self.config.plan[len(self.trace) % len(self.config.plan)]

    def _propose(self) -> Step:
        pos = self._position()
        arch = int(self.pool.arch_index[pos])
        return Step(len(self.trace), "scripted", (float(pos),), arch, arch in self._log)

    def _next_kind(self) -> str:
        return "scripted"

    def _weights_dim(self) -> int:
        return 1

    def _replays(self, kind, weights, arch):  # type: ignore[no-untyped-def]
        return float(weights[0]) == self._position() and int(self.pool.arch_index[self._position()]) == arch

    def _result_extra(self):  # type: ignore[no-untyped-def]
        return {"steps": len(self.trace)}


def _pool(values=VALUES) -> CandidatePool:  # type: ignore[no-untyped-def]
    return CandidatePool.from_table({"arch_index": np.array(ARCHS), "m": np.array(values)}, ["m"])


def _oracle() -> FakeOracle:
    return FakeOracle(ARCHS, VALUES, costs=[1.0, 2.0, 3.0, 4.0, 5.0])


def _step(search, oracle):  # type: ignore[no-untyped-def]
    p = search.ask()
    if p.cached:
        return search.tell(p)
    r = oracle.query(p.arch_index)
    return search.tell(p, r.value, r.cost_seconds)


def test_budget_counts_distinct_queries_and_repeats_are_free():
    oracle = _oracle()
    s = Scripted(_pool(), oracle)
    r = s.run()
    # plan 0, 1, 1, 2: the repeat of position 1 is a step without a query, the third distinct query ends it
    assert [row["arch_index"] for row in s.trace] == [10, 11, 11, 12]
    assert [row["new_query"] for row in s.trace] == [True, True, False, True]
    assert [row["cost"] for row in s.trace] == [1.0, 2.0, 0.0, 3.0]
    assert [row["cumulative_cost"] for row in s.trace] == [1.0, 3.0, 3.0, 6.0]
    assert oracle.calls == [10, 11, 12] and s.done and s.queries == 3
    assert r["method"] == "scripted" and r["arch_index"] == 11 and r["value"] == 9.0 and r["steps"] == 4
    assert r["queries"] == 3 and r["cost"] == 6.0 and r["queried"] == [10, 11, 12]
    with pytest.raises(SearchError, match="done"):
        s.ask()
    assert Scripted(_pool(), oracle, budget=99).budget == len(ARCHS)  # capped at the pool


def test_tell_validation_and_duplicate_archs(caplog):
    oracle = _oracle()
    s = Scripted(_pool(), oracle)
    p = s.ask()
    assert s.ask() is p  # asking again before tell returns the pending proposal
    with pytest.raises(SearchError, match="finite"):
        s.tell(p, float("nan"))
    with pytest.raises(SearchError, match="finite"):
        s.tell(p, None)
    with pytest.raises(SearchError, match="cost"):
        s.tell(p, 1.0, -1.0)
    with pytest.raises(SearchError, match="not the pending"):
        s.tell(Step(0, "scripted", (0.0,), 10, True), 1.0)
    s.tell(p, 5.0, 1.0)
    with pytest.raises(SearchError, match="not the pending"):
        s.tell(p, 5.0, 1.0)  # told twice
    _step(s, oracle)
    dup = s.ask()
    assert dup.cached and dup.arch_index == 11
    with caplog.at_level(logging.WARNING, logger="raynas.search.base"):
        row = s.tell(dup, 123.0, 50.0)  # a cached arch keeps its first value, and costs nothing
    assert (row["value"], row["cost"], row["new_query"]) == (9.0, 0.0, False)
    assert "already queried" in caplog.text
    with pytest.raises(SearchError, match="needs an oracle"):
        Scripted(_pool()).run()


def test_tell_writes_nothing(tmp_path, monkeypatch):
    """The search is a pure state machine: only the driver saves (run(state_path=...), save_search_state)."""
    monkeypatch.chdir(tmp_path)

    def no_io(*a, **k):  # type: ignore[no-untyped-def]
        raise AssertionError("tell() must not save the state")

    monkeypatch.setattr("raynas.search.base.save_state", no_io)
    oracle = _oracle()
    s = Scripted(_pool(), oracle)
    while not s.done:
        _step(s, oracle)
    assert list(tmp_path.iterdir()) == []
    assert s.state_rows() == s.trace and s.state_rows() is not s.trace
    cfg = s.state_config()
    assert cfg["method"] == "scripted" and cfg["scripted"] == {"budget": 3, "plan": [0, 1, 1, 2, 0, 3]}
    assert cfg["pool"] == {"size": 5, "fingerprint": _pool().fingerprint()}


def test_run_saves_after_every_tell_before_on_step(tmp_path):
    path = tmp_path / "state.arrow"
    s = Scripted(_pool(), _oracle())
    saved = []
    s.run(on_step=lambda row: saved.append(load_state(path)[0]), state_path=path)
    assert [len(rows) for rows in saved] == [1, 2, 3, 4] and saved[-1] == s.trace


@pytest.mark.parametrize("stop", [0, 1, 2, 3])
def test_resume_replays_to_the_uninterrupted_search(tmp_path, stop):
    full = Scripted(_pool(), _oracle(), budget=4)
    want = full.run()
    path = tmp_path / "state.arrow"
    part = Scripted(_pool(), _oracle(), budget=4)
    for _ in range(stop):
        _step(part, _oracle())
    save_search_state(part, path)
    del part  # "killed"
    oracle = _oracle()
    resumed = Scripted.from_state(path, _pool(), oracle)
    assert resumed.trace == full.trace[:stop] and resumed.config == full.config
    assert resumed.ask().arch_index == full.trace[stop]["arch_index"]
    assert resumed.run(state_path=path) == want and resumed.trace == full.trace
    assert load_state(path)[0] == full.trace
    done_before = sum(r["new_query"] for r in full.trace[:stop])
    assert oracle.calls == want["queried"][done_before:]  # the resumed search re-queries nothing
    rows, cfg = load_state(path)
    assert Scripted.restore(rows, cfg, _pool(), _oracle()).result() == want


def test_resume_refuses_other_pools_methods_and_tampered_rows(tmp_path):
    path = tmp_path / "state.arrow"
    s = Scripted(_pool(), _oracle())
    s.run(state_path=path)
    rows, cfg = load_state(path)
    with pytest.raises(StoreError, match="different candidate pool"):
        Scripted.from_state(path, _pool([5.0, 9.0, 1.0, 7.0, 4.0]), _oracle())
    bad = [dict(r) for r in rows]
    bad[1]["arch_index"] = 13
    save_state(path, bad, cfg)
    with pytest.raises(StoreError, match="row 1"):
        Scripted.from_state(path, _pool(), _oracle())
    bad = [dict(r) for r in rows]
    bad[2]["new_query"] = True  # a repeat saved as a new query
    save_state(path, bad, cfg)
    with pytest.raises(StoreError, match="row 2"):
        Scripted.from_state(path, _pool(), _oracle())
    save_state(path, rows + [dict(rows[-1], step=4)], cfg)
    with pytest.raises(StoreError, match="row 4 comes after the search was already done"):
        Scripted.from_state(path, _pool(), _oracle())
    save_state(path, rows, {"method": "robot", "robot": {}})
    with pytest.raises(StoreError, match="not a Scripted state"):
        Scripted.from_state(path, _pool(), _oracle())
    save_state(path, rows, dict(cfg, scripted={"budget": "three"}))
    with pytest.raises(StoreError, match="bad Scripted config"):
        Scripted.from_state(path, _pool(), _oracle())
