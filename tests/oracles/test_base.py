"""Oracles: NB201 table lookups (pinned against the parquet), callable oracle, registry."""

from __future__ import annotations

import pytest

from raynas.errors import OracleError, UnknownNameError
from raynas.oracles.base import ORACLES, BenchmarkTableOracle, CallableOracle, QueryResult, create_oracle


@pytest.fixture(scope="module")
def nb201(nb201_table_path):
    return BenchmarkTableOracle("nb201", nb201_table_path)


def test_nb201_lookups(nb201):
    assert len(nb201) == 15625
    r = nb201.query(0)
    assert r.value == pytest.approx(63.364) and r.cost_seconds == pytest.approx(86.653116, abs=1e-5)
    assert nb201.final(0) == pytest.approx(85.863333, abs=1e-5)
    assert nb201.query(13714).value == pytest.approx(84.892, abs=1e-4)  # best 12-epoch validation accuracy
    assert nb201.final(6111) == pytest.approx(94.373333, abs=1e-5)
    assert nb201.best_final() == pytest.approx(94.373333, abs=1e-5)
    assert nb201.best_final_among([0, 13714]) == pytest.approx(94.373333, abs=1e-5)


@pytest.mark.parametrize("bad", [-1, 15625, 10**9, "x1"])
def test_nb201_unknown_arch(nb201, bad):
    with pytest.raises(OracleError, match=str(bad)):
        nb201.query(bad)
    with pytest.raises(OracleError):
        nb201.final(bad)


def test_nb201_default_path_from_env(nb201_table_path, monkeypatch):
    monkeypatch.setenv("RAYNAS_DATA", str(nb201_table_path.parents[1]))
    o = create_oracle("nb201")
    assert o.path == nb201_table_path and o.query(1).value == BenchmarkTableOracle("nb201", nb201_table_path).query(1).value


def test_nb201_missing_file(tmp_path):
    with pytest.raises(OracleError, match="cannot read"):
        BenchmarkTableOracle("nb201", tmp_path / "nope.parquet")
    (tmp_path / "bad.parquet").write_bytes(b"not parquet")
    with pytest.raises(OracleError):
        BenchmarkTableOracle("nb201", tmp_path / "bad.parquet")


def test_registry():
    assert {"nb201", "callable"} <= set(ORACLES.names())
    with pytest.raises(UnknownNameError, match="nb201"):
        create_oracle("nb2o1")


def test_callable_oracle_forms():
    o = CallableOracle(lambda i: float(i) * 2)
    r = o.query(3)
    assert r.value == 6.0 and r.cost_seconds >= 0.0
    assert o.final(3) == 6.0  # falls back to the queried value
    with pytest.raises(OracleError, match="never queried"):
        o.final(4)
    assert o.best_final() is None
    assert CallableOracle(lambda i: (1.5, 7.0)).query(0) == QueryResult(1.5, 7.0)
    assert CallableOracle(lambda i: QueryResult(2.0, 3.0), final_fn=lambda i: 9.0, best=10.0).final(1) == 9.0


def test_callable_oracle_wraps_failures():
    def boom(i):
        raise RuntimeError("CUDA out of memory")

    with pytest.raises(OracleError, match="RuntimeError: CUDA out of memory") as ei:
        CallableOracle(boom).query(5)
    assert isinstance(ei.value.__cause__, RuntimeError)


# --- the table oracle of any benchmark ----------------------------------------------------------------------


def _toy(tmp_path):  # type: ignore[no-untyped-def]
    """An unregistered benchmark and a table of its format: archs 0, 2, 3 (1 absent)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from raynas.spaces.benchmarks import Benchmark

    b = Benchmark(name="toy", space="toy_space", title="TOY", relpath="toy/t.parquet", query_column="q",
                  cost_column="secs", finals={"a": "acc_a", "b": "acc_b"}, default_dataset="a",
                  labels={"q": "short accuracy (%)", "acc_a": "final accuracy on a (%)"})
    p = tmp_path / "t.parquet"
    pq.write_table(pa.table({"arch_index": pa.array([0, 2, 3], pa.int32()), "q": [10.0, 30.0, 20.0],
                             "secs": [1.0, 2.0, 3.0], "acc_a": [50.0, 70.0, 90.0], "acc_b": [5.0, 4.0, 3.0]}), p)
    return b, p


def test_table_oracle_reads_the_benchmarks_columns(tmp_path):
    b, p = _toy(tmp_path)
    o = BenchmarkTableOracle(b, p)
    assert len(o) == 3 and o.query(2) == QueryResult(30.0, 2.0) and o.final(3) == 90.0 and o.best_final() == 90.0
    assert o.query_label == "short accuracy (%)" and o.final_label == "final accuracy on a (%)"
    with pytest.raises(OracleError, match="not in t.parquet"):
        o.query(1)
    other = BenchmarkTableOracle(b, p, final_column=b.final_column("b"), query_column="acc_a")
    assert other.final(0) == 5.0 and other.query(0).value == 50.0 and other.final_label == "acc_b"


def test_table_oracle_errors_are_oracle_errors(tmp_path):
    b, p = _toy(tmp_path)
    with pytest.raises(OracleError, match="cannot read TOY ground truth"):
        BenchmarkTableOracle(b, tmp_path / "nope.parquet")
    with pytest.raises(OracleError, match="cannot read"):
        BenchmarkTableOracle(b, p, cost_column="no_such_column")
    with pytest.raises(UnknownNameError, match="benchmark"):
        BenchmarkTableOracle("no_such_benchmark", p)


def test_one_table_oracle_per_benchmark_under_its_name():
    from raynas.api import cli_oracles
    from raynas.spaces import create_benchmark, list_benchmarks

    for name in list_benchmarks():
        assert name in ORACLES
        b = create_benchmark(name)
        assert b.label(b.query_column) in cli_oracles()[name]  # `raynas list oracles` says what it answers
