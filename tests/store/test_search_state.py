"""Search state files: atomic versioned saves after every tell (by the driver, ``run(state_path=...)`` /
:func:`save_search_state`), exact resume, corrupt/mismatched files."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc
import pytest

from raynas.errors import StoreError
from raynas.search import CandidatePool, RoBoT
from raynas.search.base import save_search_state
from raynas.store.search_state import META_KEY, TRACE_SCHEMA, load_state, save_state
from raynas.testing import FakeOracle, synthetic_pool_table

FAST = {"num_restarts": 2, "raw_samples": 32}
CFG = dict(budget=8, bo_iters=6, seed=3, **FAST)


def _setup(metrics=("good", "bad", "noise")):
    table, acc = synthetic_pool_table(200, 1)
    return CandidatePool.from_table(table, list(metrics)), FakeOracle(table["arch_index"], acc)


def _step(robot, oracle, path=None):
    """One ask/query/tell, then (with ``path``) the save a driver makes after each tell."""
    p = robot.ask()
    if p.cached:
        row = robot.tell(p)
    else:
        r = oracle.query(p.arch_index)
        row = robot.tell(p, r.value, r.cost_seconds)
    if path is not None:
        save_search_state(robot, path)
    return row


def _row(step=0):
    return {"step": step, "kind": "bo", "weights": [0.5, -0.25], "arch_index": 4, "value": 71.5, "cost": 2.0,
            "cumulative_cost": 2.0, "new_query": True}


def test_roundtrip_and_atomic_write(tmp_path, monkeypatch):
    path = tmp_path / "sub" / "state.arrow"
    save_state(path, [_row(0), _row(1)], {"a": 1, "b": [1, 2]})
    rows, cfg = load_state(path)
    assert rows == [_row(0), _row(1)] and cfg == {"a": 1, "b": [1, 2]}
    with pytest.raises(StoreError, match="schema"):
        save_state(path, [dict(_row(), weights=["x"])], {})
    def disk_full(*a, **k):
        raise OSError("No space left on device")

    monkeypatch.setattr("raynas.store.search_state.ipc.new_file", disk_full)
    with pytest.raises(StoreError, match="No space left"):
        save_state(path, [_row(0)], {})
    assert load_state(path)[0] == [_row(0), _row(1)]  # a failed save leaves the previous state intact
    assert sorted(p.name for p in path.parent.iterdir()) == ["state.arrow"]  # no temp files left


def test_saved_after_every_tell(tmp_path):
    pool, oracle = _setup()
    robot = RoBoT(pool, oracle, **CFG)
    seen = []

    def on_step(row):  # run() saves before it calls on_step: the file already holds this row
        rows, cfg = load_state(tmp_path / "s.arrow")
        assert rows == robot.trace and rows[-1] == row
        seen.append(cfg)

    robot.run(on_step=on_step, state_path=tmp_path / "s.arrow")
    assert len(seen) == len(robot.trace) >= robot.queries == 8  # one save per tell, repeats included
    cfg = seen[-1]
    assert cfg["robot"]["budget"] == 8 and cfg["pool"]["metrics"] == ["good", "bad", "noise"]


def test_resume_proposes_exactly_the_uninterrupted_next_query(tmp_path):
    pool, oracle = _setup()
    full = RoBoT(pool, oracle, **CFG)
    full.run()
    kinds = [r["kind"] for r in full.trace]
    assert kinds.count("bo") == 6 and kinds.count("greedy") >= 2
    for stop in (2, 5, 7):  # inside the GP part of BO, at the last BO step, inside greedy
        path = tmp_path / f"stop{stop}.arrow"
        part = RoBoT(pool, oracle, **CFG)
        for _ in range(stop):
            _step(part, oracle, path)
        del part  # "killed"
        resumed = RoBoT.from_state(path, pool, oracle)
        assert resumed.trace == full.trace[:stop]
        nxt = resumed.ask()
        want = full.trace[stop]
        assert (nxt.kind, list(nxt.weights), nxt.arch_index) == (want["kind"], want["weights"], want["arch_index"])
        assert resumed.run(state_path=path) == full.result()
        assert resumed.trace == full.trace and load_state(path)[0] == full.trace


def test_load_errors(tmp_path):
    with pytest.raises(StoreError, match="no search state"):
        load_state(tmp_path / "missing.arrow")
    (tmp_path / "junk.arrow").write_bytes(b"\x00garbage" * 10)
    with pytest.raises(StoreError, match="corrupt"):
        load_state(tmp_path / "junk.arrow")
    good = tmp_path / "good.arrow"
    save_state(good, [_row(0), _row(1)], {})
    data = good.read_bytes()
    (tmp_path / "trunc.arrow").write_bytes(data[: len(data) // 2])
    with pytest.raises(StoreError, match="corrupt"):
        load_state(tmp_path / "trunc.arrow")


def _write_raw(path, table):
    with ipc.new_file(str(path), table.schema) as w:
        w.write_table(table)


def test_version_and_schema_mismatch(tmp_path):
    cols = {f.name: [_row()[f.name]] for f in TRACE_SCHEMA}
    t = pa.Table.from_pydict(cols, schema=TRACE_SCHEMA)
    _write_raw(tmp_path / "nometa.arrow", t)
    with pytest.raises(StoreError, match="not a raynas search state"):
        load_state(tmp_path / "nometa.arrow")
    _write_raw(tmp_path / "v99.arrow", t.replace_schema_metadata({META_KEY: json.dumps({"version": 99, "config": {}})}))
    with pytest.raises(StoreError, match="version 99"):
        load_state(tmp_path / "v99.arrow")
    _write_raw(tmp_path / "badjson.arrow", t.replace_schema_metadata({META_KEY: b"{not json"}))
    with pytest.raises(StoreError, match="corrupt metadata"):
        load_state(tmp_path / "badjson.arrow")
    t2 = t.drop_columns(["cost"]).replace_schema_metadata({META_KEY: json.dumps({"version": 1, "config": {}})})
    _write_raw(tmp_path / "cols.arrow", t2)
    with pytest.raises(StoreError, match="columns"):
        load_state(tmp_path / "cols.arrow")


def test_resume_refuses_other_pools_and_tampered_traces(tmp_path):
    pool, oracle = _setup()
    path = tmp_path / "s.arrow"
    robot = RoBoT(pool, oracle, **CFG)
    for _ in range(3):
        _step(robot, oracle, path)
    other, _ = _setup(("good", "noise", "bad"))
    with pytest.raises(StoreError, match="different candidate pool"):
        RoBoT.from_state(path, other, oracle)
    table, acc = synthetic_pool_table(200, 2)  # same metrics, different scores
    with pytest.raises(StoreError, match="different candidate pool"):
        RoBoT.from_state(path, CandidatePool.from_table(table, ["good", "bad", "noise"]), oracle)
    rows, cfg = load_state(path)
    rows[1]["arch_index"] = next(int(a) for a in pool.arch_index if a != rows[1]["arch_index"])
    save_state(path, rows, cfg)
    with pytest.raises(StoreError, match="row 1"):
        RoBoT.from_state(path, pool, oracle)
    save_state(path, rows[:1], {"method": "random"})
    with pytest.raises(StoreError, match="not a RoBoT state"):
        RoBoT.from_state(path, pool, oracle)
    bad_cfg = dict(cfg, robot=dict(cfg["robot"], budget="many"))
    save_state(path, rows[:1], bad_cfg)
    with pytest.raises(StoreError, match="bad RoBoT config"):
        RoBoT.from_state(path, pool, oracle)
    assert np.isfinite(acc).all()
