"""ScoreStore: atomic shards, corruption detection and quarantine, config checks, done keys, wide pivot."""

from __future__ import annotations

import json
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from raynas.errors import StoreError
from raynas.store import SCHEMA, ScoreStore, empty_table, results_to_table, to_wide
from raynas.testing import metric_results


def rows(arch_index: int, values: dict, status: dict | None = None, seed: int = 0) -> pa.Table:
    return results_to_table("nb201", arch_index, f"arch{arch_index}", seed, "digits", metric_results(values, status),
                            "h")


def shard(*archs: int, seed: int = 0) -> pa.Table:
    return pa.concat_tables([rows(a, {"snip": float(a), "params": 10.0 * a}, seed=seed) for a in archs])


def test_round_trip_and_read_columns(tmp_path):
    store = ScoreStore(tmp_path / "run")
    assert store.shard_ids() == set() and store.read().equals(empty_table())
    p = store.write_shard(3, shard(1, 2))
    assert p == tmp_path / "run" / "scores" / "shard-000003.parquet"
    store.write_shard(0, shard(0))
    assert store.shard_ids() == {0, 3}
    t = store.read()
    assert t.schema.equals(SCHEMA) and t.num_rows == 6
    assert t.column("arch_index").to_pylist() == [0, 0, 1, 1, 2, 2]  # shard order, then row order
    assert t.equals(pa.concat_tables([shard(0), shard(1, 2)]))
    assert store.read(["metric", "value"]).column_names == ["metric", "value"]
    with pytest.raises(StoreError, match="unknown score column"):
        store.read(["nope"])


def test_empty_shard_counts_as_written(tmp_path):
    store = ScoreStore(tmp_path)
    store.write_shard(5, shard(1).slice(0, 0))
    assert store.shard_ids() == {5} and store.read().num_rows == 0


def test_write_shard_rejects_wrong_tables(tmp_path):
    store = ScoreStore(tmp_path)
    with pytest.raises(StoreError, match="missing"):
        store.write_shard(0, shard(1).drop_columns(["seconds"]))
    # columns in another order without metadata are conformed to the schema
    t = shard(1)
    store.write_shard(1, t.select(list(reversed(t.column_names))).replace_schema_metadata(None))
    assert store.read().equals(t)
    assert not (tmp_path / "scores" / "shard-000000.parquet").exists()


def test_crash_during_replace_leaves_old_shard_and_no_partial_file(tmp_path, monkeypatch):
    store = ScoreStore(tmp_path)
    store.write_shard(1, shard(1))

    def crash(src, dst):  # type: ignore[no-untyped-def]
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(StoreError, match="shard-000001.parquet: No space left"):
        store.write_shard(1, shard(7, 8))
    with pytest.raises(StoreError, match="shard-000002.parquet"):
        store.write_shard(2, shard(9))
    monkeypatch.undo()
    assert sorted(p.name for p in (tmp_path / "scores").iterdir()) == ["shard-000001.parquet"]  # no temp left
    assert store.read().equals(shard(1))


def test_interrupt_during_write_removes_temp(tmp_path, monkeypatch):
    store = ScoreStore(tmp_path)

    def interrupted(*a, **k):  # type: ignore[no-untyped-def]
        raise KeyboardInterrupt

    monkeypatch.setattr(pq, "write_table", interrupted)
    with pytest.raises(KeyboardInterrupt):
        store.write_shard(0, shard(1))
    assert list((tmp_path / "scores").iterdir()) == [] and store.shard_ids() == set()


def test_verify_detects_garbage_truncation_and_schema(tmp_path):
    store = ScoreStore(tmp_path)
    for i in range(4):
        store.write_shard(i, shard(i))
    d = tmp_path / "scores"
    (d / "shard-000001.parquet").write_bytes(b"garbage, not parquet")
    data = (d / "shard-000002.parquet").read_bytes()
    (d / "shard-000002.parquet").write_bytes(data[: len(data) - 40])  # footer cut off
    pq.write_table(pa.table({"arch_index": [1], "metric": ["snip"]}), d / "shard-000003.parquet")
    pq.write_table(shard(9).replace_schema_metadata({b"raynas.schema_version": b"99"}), d / "shard-000004.parquet")
    (d / ".shard-000005.parquet.tmp").write_bytes(b"partial")  # an interrupted write is not a shard
    good, bad = store.verify()
    assert good == [d / "shard-000000.parquet"]
    reasons = dict(bad)
    assert [p.name for p, _ in bad] == [f"shard-00000{i}.parquet" for i in (1, 2, 3, 4)]
    assert "ArrowInvalid" in reasons[d / "shard-000001.parquet"]
    assert "ArrowInvalid" in reasons[d / "shard-000002.parquet"]
    assert "missing" in reasons[d / "shard-000003.parquet"]
    assert "schema version 99" in reasons[d / "shard-000004.parquet"]
    # read skips the damaged files
    assert store.read().equals(shard(0))
    assert store.done_keys() == {(0, "snip", 0), (0, "params", 0)}


def test_quarantine_moves_never_deletes(tmp_path):
    store = ScoreStore(tmp_path)
    store.write_shard(1, shard(1))
    p = tmp_path / "scores" / "shard-000001.parquet"
    p.write_bytes(b"bad")
    dst = store.quarantine(p)
    assert dst == tmp_path / "scores" / "corrupt" / "shard-000001.parquet" and dst.read_bytes() == b"bad"
    assert store.shard_ids() == set()
    store.write_shard(1, shard(1))
    (tmp_path / "scores" / "shard-000001.parquet").write_bytes(b"bad again")
    assert store.quarantine(p).name == "shard-000001.parquet.1"
    assert (tmp_path / "scores" / "corrupt" / "shard-000001.parquet").read_bytes() == b"bad"
    with pytest.raises(StoreError, match="no such file"):
        store.quarantine(p)


def test_done_keys(tmp_path):
    store = ScoreStore(tmp_path)
    assert store.done_keys() == set()
    store.write_shard(0, rows(4, {"snip": None, "fisher": 1.0}, status={"snip": "error"}, seed=2))
    store.write_shard(1, shard(5))
    assert store.done_keys() == {(4, "snip", 2), (4, "fisher", 2), (5, "snip", 0), (5, "params", 0)}


def test_unwritable_run_dir(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("I am a file, not a directory")
    store = ScoreStore(blocker / "run")
    with pytest.raises(StoreError, match=str(blocker / "run" / "scores" / "shard-000000.parquet")):
        store.write_shard(0, shard(1))
    with pytest.raises(StoreError, match="config.json"):
        store.save_config({"a": 1})
    assert store.shard_ids() == set() and store.load_config() is None


def test_config_save_load_and_check(tmp_path):
    store = ScoreStore(tmp_path)
    assert store.load_config() is None and store.check_config({"seed": 1}) == []
    cfg = {"space": "nb201", "seed": 0, "metrics": ("snip", "synflow"), "workers": 4, "out": "/a"}
    store.save_config(cfg)
    assert json.loads((tmp_path / "config.json").read_text())["metrics"] == ["snip", "synflow"]
    assert store.load_config() == {**cfg, "metrics": ["snip", "synflow"]}
    assert [p.name for p in tmp_path.iterdir()] == ["config.json"]  # no temp file left
    # volatile keys may change, tuples equal their stored lists
    assert store.check_config({**cfg, "workers": 64, "out": "/b", "resume": True}) == []
    with pytest.raises(StoreError, match=r"metrics: stored \[\"snip\", \"synflow\"\], given \[\"snip\"\]; "
                                         r"seed: stored 0, given 1"):
        store.check_config({**cfg, "seed": 1, "metrics": ["snip"]})
    with pytest.raises(StoreError, match=r"batch_size: stored \(absent\), given 32"):
        store.check_config({**cfg, "batch_size": 32})
    assert store.check_config({**cfg, "seed": 1}, force=True) == ["seed"]


def test_check_config_identity_sections(tmp_path):
    # the layout of ScoreConfig.resolved(): only the identity section defines the run
    store = ScoreStore(tmp_path)
    store.save_config({"identity": {"space": "nb201", "seed": 0}, "volatile": {"workers": 1}})
    assert store.check_config({"identity": {"space": "nb201", "seed": 0}, "volatile": {"workers": 8}}) == []
    assert store.flat_config() == {"space": "nb201", "seed": 0, "workers": 1}
    with pytest.raises(StoreError, match="space: stored \"nb201\", given \"darts\""):
        store.check_config({"identity": {"space": "darts", "seed": 0}, "volatile": {"workers": 1}})


def test_corrupt_config(tmp_path):
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(StoreError, match="not valid JSON"):
        ScoreStore(tmp_path).load_config()
    (tmp_path / "config.json").write_text("[1, 2]")
    with pytest.raises(StoreError, match="JSON object"):
        ScoreStore(tmp_path).check_config({})
    with pytest.raises(StoreError, match="not JSON-serialisable"):
        ScoreStore(tmp_path).save_config({"x": object()})


def test_to_wide_with_missing_values():
    long = pa.concat_tables([
        rows(2, {"snip": 1.5, "synflow": None}, status={"synflow": "nan"}),
        rows(1, {"snip": -1.0, "synflow": 4.0}),
        rows(1, {"snip": 9.0}, seed=1),  # seed 1 scored only snip
        rows(3, {"synflow": None}, status={"synflow": "error"}),
        rows(3, {"synflow": 7.0}),  # re-scored after the error: the ok value wins
        rows(3, {"synflow": None}, status={"synflow": "oom"}),  # a later failure does not erase it
    ])
    wide = to_wide(long)
    assert wide.column_names == ["space", "arch_index", "arch", "seed", "snip", "synflow"]
    assert wide.schema.field("snip").type == pa.float64() and wide.schema.field("seed").type == pa.int64()
    assert wide.to_pylist() == [
        {"space": "nb201", "arch_index": 1, "arch": "arch1", "seed": 0, "snip": -1.0, "synflow": 4.0},
        {"space": "nb201", "arch_index": 1, "arch": "arch1", "seed": 1, "snip": 9.0, "synflow": None},
        {"space": "nb201", "arch_index": 2, "arch": "arch2", "seed": 0, "snip": 1.5, "synflow": None},
        {"space": "nb201", "arch_index": 3, "arch": "arch3", "seed": 0, "snip": None, "synflow": 7.0},
    ]
    empty = to_wide(empty_table())
    assert empty.num_rows == 0 and empty.column_names == ["space", "arch_index", "arch", "seed"]
    with pytest.raises(StoreError, match="needs column"):
        to_wide(long.drop_columns(["status"]))
