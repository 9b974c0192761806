"""Atomic writes: a failed write leaves the old content and no temp file; errors are StoreErrors naming the path."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from raynas.errors import StoreError
from raynas.store import atomic_write, read_json, write_json, write_parquet


def test_json_round_trip_and_failures_keep_the_old_file(tmp_path):
    p = tmp_path / "d" / "x.json"
    write_json(p, {"b": 1, "a": 2.5})
    assert p.read_text() == '{\n  "a": 2.5,\n  "b": 1\n}' and read_json(p) == {"a": 2.5, "b": 1}
    with pytest.raises(StoreError, match="not JSON-serialisable"):
        write_json(p, {"x": object()}, default=None)
    assert read_json(p) == {"a": 2.5, "b": 1}
    assert read_json(tmp_path / "absent.json") is None
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(StoreError, match="bad.json is not valid JSON"):
        read_json(tmp_path / "bad.json")


def test_interrupted_write_leaves_nothing_behind(tmp_path):
    p = tmp_path / "f.bin"
    p.write_bytes(b"old")

    def boom(f):  # type: ignore[no-untyped-def]
        f.write(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(p, boom)
    assert p.read_bytes() == b"old" and [q.name for q in tmp_path.iterdir()] == ["f.bin"]


def test_write_parquet(tmp_path):
    t = pa.table({"a": [1, 2]})
    write_parquet(tmp_path / "t.parquet", t)
    assert pq.read_table(tmp_path / "t.parquet").equals(t)
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StoreError, match="cannot write"):
        write_parquet(blocker / "t.parquet", t)


def test_read_json_tells_absent_from_null(tmp_path):
    (tmp_path / "null.json").write_text("null")
    assert read_json(tmp_path / "null.json", missing="absent") is None
    assert read_json(tmp_path / "nope.json", missing="absent") == "absent"
