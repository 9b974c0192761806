"""Benchmarks registered beside their spaces (raynas.spaces.benchmarks): registry, table reads, answers, and the
rule that only raynas/spaces/ knows NAS-Bench-201 by its short name.

Tables here are written by the tests in the format of the real one (shared/data/README.md), so the numbers
expected are computed from what was written, and nothing needs the shared data.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from raynas.errors import ConfigError, DataError, UnknownNameError
from raynas.spaces import benchmark_for_space, create_benchmark, list_benchmarks
from raynas.spaces import benchmarks as bm
from raynas.spaces.benchmarks import Benchmark

REPO = Path(__file__).resolve().parents[2]

#: files under raynas/ outside raynas/spaces/ that still name nb201 until another helper's branch is merged
#: (raynas/testing.py: helper "layers" moves its NB201 fixtures). Empty this tuple once that is merged.
def toy_benchmark(**over) -> Benchmark:  # type: ignore[no-untyped-def]
    kw = dict(name="toy", space="toy_space", title="TOY", relpath="toy/toy.parquet", query_column="q",
              cost_column="secs", finals={"c10": "acc_c10", "c100": "acc_c100"}, default_dataset="c10",
              labels={"q": "short-run accuracy (%)", "acc_c10": "final accuracy (%) on c10"},
              answer_units={"acc_c10": "% final accuracy"}, published_rho={"synflow": 0.5})
    kw.update(over)
    return Benchmark(**kw)


def write_table(path: Path, idx, acc, *, q=None, cost=None) -> Path:  # type: ignore[no-untyped-def]
    """A table in the benchmark's format: index, query, cost and two final columns."""
    path.parent.mkdir(parents=True, exist_ok=True)
    n = len(idx)
    pq.write_table(pa.table({
        "arch_index": pa.array(idx, pa.int32()),
        "q": pa.array(q if q is not None else [float(i) for i in range(n)], pa.float64()),
        "secs": pa.array(cost if cost is not None else [10.0 + i for i in range(n)], pa.float64()),
        "acc_c10": pa.array(acc, pa.float64()),
        "acc_c100": pa.array([a / 2 for a in acc], pa.float64()),
    }), path)
    return path


# --- registry -----------------------------------------------------------------------------------------------


def test_registry_knows_the_nb201_benchmark_of_its_space():
    assert "nb201" in list_benchmarks()
    b = create_benchmark("nb201")
    assert benchmark_for_space("nb201") is b and b.space == "nb201"
    assert b.query_column == "cifar10_valid_acc_12ep" and b.cost_column == "cifar10_train_seconds_12ep"
    assert b.final_column() == "cifar10_test_acc_200ep" and b.finals == {"cifar10": "cifar10_test_acc_200ep"}
    assert b.label("cifar10_test_acc_200ep") == "200-epoch test accuracy (%) on CIFAR-10"
    assert b.published_rho["synflow"] == 0.73 and b.published_rho["naswot"] == 0.77
    assert benchmark_for_space("darts_cifar") is None  # no table for DARTS


def test_unknown_benchmark_names_close_matches():
    with pytest.raises(UnknownNameError, match="did you mean 'nb201'"):
        create_benchmark("nb2o1")


def test_register_benchmark_tells_subscribers_and_refuses_a_second_for_a_space(monkeypatch):
    monkeypatch.setattr(bm.BENCHMARKS, "_entries", dict(bm.BENCHMARKS._entries))  # leave the real one untouched
    monkeypatch.setattr(bm, "_HOOKS", [])
    seen: list[str] = []
    bm.on_benchmark(lambda b: seen.append(b.name))
    assert seen == list_benchmarks()  # existing ones at once
    toy = bm.register_benchmark(toy_benchmark())
    assert seen[-1] == "toy" and create_benchmark("toy") is toy and benchmark_for_space("toy_space") is toy
    with pytest.raises(ConfigError, match="already has benchmark 'toy'"):
        bm.register_benchmark(toy_benchmark(name="toy2"))
    with pytest.raises(ConfigError, match="registered twice"):
        bm.register_benchmark(toy_benchmark(space="other_space"))


def test_a_registered_benchmark_gets_a_table_oracle_under_its_name(monkeypatch, tmp_path):
    from raynas.oracles import base

    monkeypatch.setattr(bm.BENCHMARKS, "_entries", dict(bm.BENCHMARKS._entries))
    monkeypatch.setattr(base.ORACLES, "_entries", dict(base.ORACLES._entries))
    table = write_table(tmp_path / "toy" / "toy.parquet", [0, 1, 2], [50.0, 70.0, 60.0])
    bm.register_benchmark(toy_benchmark())
    o = base.create_oracle("toy", path=table)
    assert isinstance(o, base.BenchmarkTableOracle) and o.final(1) == 70.0 and o.query(2).cost_seconds == 12.0
    monkeypatch.setenv("RAYNAS_DATA", str(tmp_path))
    assert base.create_oracle("toy").path == table  # default location: $RAYNAS_DATA/<relpath>
    a = base.benchmark_answer("toy_space", 1)
    assert a is not None and a.rank == 1 and a.line == "TOY index 1: 70.00 % final accuracy, rank 1 of 3"


@pytest.mark.parametrize("bad", [dict(default_dataset="imagenet"), dict(finals={}), dict(query_column="")])
def test_malformed_descriptions_are_config_errors(bad):
    with pytest.raises(ConfigError):
        toy_benchmark(**bad)


def test_benchmark_and_its_table_oracle_pickle(tmp_path):
    """Both cross process boundaries (Ray workers) although the description's mappings are read-only views."""
    import pickle

    from raynas.oracles.base import BenchmarkTableOracle

    b = toy_benchmark()
    assert pickle.loads(pickle.dumps(b)) == b
    o = BenchmarkTableOracle(b, write_table(tmp_path / "t.parquet", [0, 1], [5.0, 6.0]))
    back = pickle.loads(pickle.dumps(o))
    assert back.final(1) == 6.0 and back.benchmark == b and back.query_label == o.query_label


def test_description_is_read_only():
    b = toy_benchmark()
    with pytest.raises(TypeError):
        b.finals["x"] = "y"  # type: ignore[index]
    with pytest.raises(AttributeError):
        b.name = "other"  # type: ignore[misc]


# --- columns, labels, paths ---------------------------------------------------------------------------------


def test_final_columns_and_labels():
    b = toy_benchmark()
    assert b.final_column() == "acc_c10" and b.final_column("c100") == "acc_c100"
    with pytest.raises(ConfigError, match="no final accuracy for dataset 'svhn'"):
        b.final_column("svhn")
    assert b.label("q") == "short-run accuracy (%)" and b.label("secs") == "secs"  # undeclared: the column name
    assert b.axis_label() == "final accuracy (%) on c10"  # no short axis label declared: the long one


def test_default_path_follows_raynas_data(monkeypatch, tmp_path):
    b = toy_benchmark()
    monkeypatch.setenv("RAYNAS_DATA", str(tmp_path))
    assert b.default_path() == tmp_path / "toy" / "toy.parquet"
    assert b.resolve_path(None) == b.default_path() and b.resolve_path("x.parquet") == Path("x.parquet")
    monkeypatch.delenv("RAYNAS_DATA")
    assert b.default_path() == REPO.parent / "shared" / "data" / "toy" / "toy.parquet"


# --- reading ------------------------------------------------------------------------------------------------


def test_read_is_cached_per_file_and_sees_a_rewritten_file(tmp_path):
    b = toy_benchmark()
    p = write_table(tmp_path / "t.parquet", [0, 1], [1.0, 2.0])
    first = b.read(["arch_index", "acc_c10"], p)
    assert b.read(["arch_index", "acc_c10"], p) is first  # cached
    write_table(p, [0, 1, 2], [1.0, 2.0, 3.0])
    later = p.stat().st_mtime_ns + 10**9  # a new modification time for sure, however coarse the clock
    os.utime(p, ns=(later, later))
    assert b.read(["arch_index", "acc_c10"], p).num_rows == 3
    assert b.final_values(p) == {0: 1.0, 1: 2.0, 2: 3.0}
    assert b.final_values(p, "c100") == {0: 0.5, 1: 1.0, 2: 1.5}


def test_read_errors_are_data_errors_naming_the_file(tmp_path):
    b = toy_benchmark()
    with pytest.raises(DataError, match=re.escape(f"cannot read TOY ground truth {tmp_path / 'nope.parquet'}")):
        b.read(["arch_index"], tmp_path / "nope.parquet")
    (tmp_path / "bad.parquet").write_text("not parquet")
    with pytest.raises(DataError, match="cannot read TOY ground truth"):
        b.read(["arch_index"], tmp_path / "bad.parquet")
    p = write_table(tmp_path / "t.parquet", [0], [1.0])
    with pytest.raises(DataError):
        b.read(["arch_index", "no_such_column"], p)


# --- answers ------------------------------------------------------------------------------------------------


def test_answer_value_rank_and_line(tmp_path):
    b = toy_benchmark()
    p = write_table(tmp_path / "t.parquet", [0, 1, 2, 3, 5], [80.0, 90.0, 85.0, 90.0, float("nan")])
    a = b.answer(2, p)
    assert (a.value, a.rank, a.total, a.table) == (85.0, 3, 5, str(p))  # two archs strictly higher
    assert a.line == "TOY index 2: 85.00 % final accuracy, rank 3 of 5"
    assert b.answer(3, p).rank == b.answer(1, p).rank == 1  # ties share a rank
    c100 = b.answer(2, p, "c100")  # no answer unit declared: the column's label, or its name
    assert c100.value == 42.5 and c100.line == "TOY index 2: 42.50 (acc_c100), rank 3 of 5"
    for missing in (4, 5, 99):  # not in the table, or NaN there
        m = b.answer(missing, p)
        assert m.value is None and m.line == f"TOY index {missing}: not in the ground truth table t.parquet"


def test_answer_for_an_absent_or_unreadable_table_is_one_line(tmp_path):
    b = toy_benchmark()
    a = b.answer(7, tmp_path / "nope.parquet")
    assert a.value is None and a.table is None
    assert a.line == (f"TOY index 7: no benchmark answer, the TOY ground truth table {tmp_path / 'nope.parquet'} "
                      "is absent (set RAYNAS_DATA to the folder holding toy/)")
    (tmp_path / "bad.parquet").write_text("not parquet")
    bad = b.answer(7, tmp_path / "bad.parquet")
    assert bad.value is None and bad.line.startswith(f"TOY index 7: no benchmark answer, cannot read "
                                                     f"{tmp_path / 'bad.parquet'}: ") and "\n" not in bad.line


def test_nb201_answer_line_on_a_table_of_the_real_format(tmp_path):
    """The NB201 benchmark's own line, on a table written here with its real column names."""
    from raynas.oracles.base import benchmark_answer

    p = tmp_path / "nb.parquet"
    pq.write_table(pa.table({"arch_index": pa.array([0, 1, 2], pa.int32()),
                             "cifar10_test_acc_200ep": [91.5, 93.25, 90.0]}), p)
    a = benchmark_answer("nb201", 0, p)
    assert a is not None and (a.test_acc, a.rank, a.total) == (91.5, 2, 3)
    assert a.line == "NB201 index 0: 91.50 % test accuracy after 200 epochs, rank 2 of 3"
    assert benchmark_answer("darts_cifar", 0, p) is None and benchmark_answer("nb201", None, p) is None


# --- NB201 lives in raynas/spaces/ --------------------------------------------------------------------------


def test_only_raynas_spaces_names_nb201():
    """The space's short name appears only beside the space (raynas/spaces/: the space, its benchmark, its
    parity cases): everything else reads benchmarks and spaces through their registries."""
    root = REPO / "raynas"
    naming = sorted(
        p.relative_to(REPO).as_posix()
        for p in root.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".pyc", ".pyo")
        and "nb201" in p.read_text(encoding="utf-8", errors="ignore").lower()
    )
    outside = [p for p in naming if not p.startswith("raynas/spaces/")]
    assert outside == []
