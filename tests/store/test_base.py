"""The Store protocol and its one factory (issue 15): a second backend is a new class, not an edit per caller."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from raynas.errors import UnknownNameError
from raynas.store import BACKENDS, ScoreStore, Store, open_store, results_to_table
from raynas.store.base import Store as StoreProtocol
from raynas.testing import metric_results


def _members(proto: type) -> set[str]:
    return {n for n in vars(proto) if not n.startswith("_")} | set(getattr(proto, "__annotations__", {}))


def test_score_store_conforms_to_the_protocol(tmp_path):
    store = open_store(tmp_path)
    assert isinstance(store, ScoreStore) and isinstance(store, Store)
    for name in _members(StoreProtocol):
        assert hasattr(store, name), name
        if callable(getattr(StoreProtocol, name, None)):
            want = list(inspect.signature(getattr(StoreProtocol, name)).parameters)
            have = list(inspect.signature(getattr(ScoreStore, name)).parameters)
            assert have[: len(want)] == want, (name, want, have)


def test_unknown_backend_names_the_close_ones(tmp_path):
    with pytest.raises(UnknownNameError, match="unknown store backend 'parquett'; did you mean 'parquet'"):
        open_store(tmp_path, "parquett")


class MemoryStore:
    """A second backend: only what the test calls, to show registration is all a backend needs."""

    def __init__(self, run_dir: Path, planner=None):  # type: ignore[no-untyped-def]
        self.run_dir, self.planner, self.shards = run_dir, planner, {}

    def write_shard(self, shard_id, table):  # type: ignore[no-untyped-def]
        self.shards[shard_id] = table


def test_a_registered_backend_is_opened_by_name(tmp_path, monkeypatch):
    monkeypatch.setattr(BACKENDS, "_entries", {**BACKENDS._entries})  # leave the real registry as it was
    BACKENDS.add("memory", MemoryStore)
    planner = object()
    store = open_store(tmp_path, "memory", planner=planner)  # type: ignore[arg-type]
    assert isinstance(store, MemoryStore) and store.run_dir == tmp_path and store.planner is planner
    store.write_shard(0, results_to_table("nb201", 0, "a", 0, "d", metric_results({"params": 1.0}), "h"))
    assert list(store.shards) == [0] and not (tmp_path / "scores").exists()


def test_open_store_creates_nothing(tmp_path):
    store = open_store(tmp_path / "run")
    assert store.read().num_rows == 0 and store.shard_ids() == set() and not (tmp_path / "run").exists()
