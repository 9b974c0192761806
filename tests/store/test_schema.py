"""Long-format score schema: row building from MetricResults and validation."""

from __future__ import annotations

import pyarrow as pa
import pytest

from raynas.errors import StoreError
from raynas.store import SCHEMA, SCHEMA_VERSION, empty_table, results_to_table, validate_table
from raynas.testing import metric_results


class _Space:
    name = "toy"

    def format(self, arch):  # type: ignore[no-untyped-def]
        return f"<{arch}>"


def test_results_to_table_rows():
    res = metric_results({"snip": 2.5, "synflow": 1.0}, status={"synflow": "nan"})
    t = results_to_table(_Space(), 7, (1, 2), 3, "digits:seed=3", res, "hostA")
    assert t.schema.equals(SCHEMA, check_metadata=True)
    assert t.schema.metadata[b"raynas.schema_version"] == b"1" and SCHEMA_VERSION == 1
    rows = t.to_pylist()
    assert rows[0] == {"space": "toy", "arch_index": 7, "arch": "<(1, 2)>", "metric": "snip", "seed": 3, "value": 2.5,
                       "status": "ok", "error": "", "seconds": 0.5, "device": "cpu", "host": "hostA",
                       "data": "digits:seed=3"}
    assert rows[1]["value"] is None and rows[1]["status"] == "nan" and rows[1]["error"] == "synflow failed"
    # a space name and an unbuildable arch (None) are accepted too
    t2 = results_to_table("nb201", 0, None, 0, "d", res[:1], "h")
    assert t2.column("space").to_pylist() == ["nb201"] and t2.column("arch").to_pylist() == [None]
    assert results_to_table("nb201", 0, "x", 0, "d", [], "h").num_rows == 0


def test_unknown_status_is_rejected():
    from raynas.metrics.engine import MetricResult

    with pytest.raises(StoreError, match="unknown result status"):
        results_to_table("s", 0, "a", 0, "d", [MetricResult("m", 1.0, "weird", "", 0.0, "cpu")], "h")


def test_validate_table():
    validate_table(empty_table())
    t = results_to_table("s", 1, "a", 0, "d", metric_results({"m": 1.0}), "h")
    with pytest.raises(StoreError, match=r"missing \['host'\]"):
        validate_table(t.drop_columns(["host"]))
    with pytest.raises(StoreError, match=r"unexpected \['extra'\]"):
        validate_table(t.append_column("extra", pa.array([1])))
    with pytest.raises(StoreError, match="arch_index: int32"):
        validate_table(t.set_column(1, "arch_index", pa.array([1], pa.int32())))
    with pytest.raises(StoreError, match="no raynas.schema_version"):
        validate_table(t.replace_schema_metadata(None))
    validate_table(t.replace_schema_metadata(None), require_version=False)
    with pytest.raises(StoreError, match="schema version 2"):
        validate_table(t.replace_schema_metadata({b"raynas.schema_version": b"2"}), require_version=False)
    with pytest.raises(StoreError, match="'metric' has 1 null"):
        validate_table(t.set_column(3, "metric", pa.array([None], pa.string())))
    with pytest.raises(StoreError, match=r"unknown status\(es\) \['done'\]"):
        validate_table(t.set_column(6, "status", pa.array(["done"])))


def test_one_status_list():
    """The engine's statuses are the store's (issue 15: one ``STATUSES``, in ``raynas.store.schema``)."""
    from raynas.metrics import engine
    from raynas.parallel import run
    from raynas.store import STATUSES

    assert STATUSES == ("ok", "nan", "error", "oom", "not_applicable")
    assert tuple(engine.STATUSES) == STATUSES and run.STATUSES is STATUSES
