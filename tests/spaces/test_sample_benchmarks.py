"""The NAS-Bench-Suite-Zero sample benchmarks ``nbsz_nb101`` and ``nbsz_nb301`` (``raynas.spaces.nbsz``): registered
as samples (never a space's default benchmark), answering for the archs of their table only."""

from __future__ import annotations

import pickle

import numpy as np
import pyarrow.parquet as pq
import pytest

from raynas.api import describe_registry
from raynas.errors import OracleError
from raynas.oracles.base import create_oracle
from raynas.spaces import benchmark_for_space, create_benchmark, create_space, list_benchmarks
from raynas.spaces.nbsz import NBSZ_NB101, NBSZ_NB301, SampleBenchmark
from raynas.store import read_published
from raynas.store.published import parse_spec
from raynas_tests.nbsz_tables import write_nb101, write_nb301


@pytest.fixture
def data(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("RAYNAS_DATA", str(tmp_path))
    return tmp_path


def test_samples_are_registered_but_no_spaces_default():
    assert {"nbsz_nb101", "nbsz_nb301"} <= set(list_benchmarks())
    assert create_benchmark("nbsz_nb101") is NBSZ_NB101 and NBSZ_NB101.sample and NBSZ_NB301.sample
    assert (NBSZ_NB101.space, NBSZ_NB301.space) == ("nb101", "darts_cifar")
    assert benchmark_for_space("nb101").name == "nb101"  # the full table stays NB101's benchmark
    assert benchmark_for_space("darts_cifar") is None  # a DARTS run has no default table oracle
    assert not create_benchmark("nb201").sample
    # the published table's config names the sample as the default oracle of a search on it
    assert parse_spec("nbsz:nb101:cifar10").benchmark == "nbsz_nb101"
    assert parse_spec("nbsz:nb301:cifar10").benchmark == "nbsz_nb301"


def test_list_benchmarks_shows_them_as_samples(data):
    lines = {ln.split()[0]: ln for ln in describe_registry("benchmarks")}
    for name, rel in (("nbsz_nb101", "nbsz/nb101_cifar10.parquet"), ("nbsz_nb301", "nbsz/nb301_cifar10.parquet")):
        assert "sample" in lines[name] and str(data / rel) in lines[name] and "(absent: " in lines[name]
    assert "sample" not in lines["nb201"]


def test_the_oracle_answers_for_the_tables_archs_only(data):
    write_nb101(data)
    wide, cfg = read_published("nbsz:nb101:cifar10")
    o = create_oracle(cfg["benchmark"])
    idx = wide.column("arch_index").to_pylist()
    assert len(o) == 2
    first = o.query(idx[0])  # two file rows of one cell: 90 and 91 % -> their mean
    assert (first.value, first.cost_seconds) == (pytest.approx(90.5), 0.0) and o.final(idx[0]) == first.value
    assert o.best_final() == max(o.final(i) for i in idx)
    other = next(i for i in range(10) if i not in idx)
    with pytest.raises(OracleError, match=rf"architecture {other} is not in nb101_cifar10.parquet \(the NB101 "
                                          r"NB-Suite-Zero sample table, 2 archs\)"):
        o.query(other)


def test_darts_indices_far_apart_are_answered(data):
    genos = write_nb301(data)
    o = create_oracle("nbsz_nb301")
    space = create_space("darts_cifar")
    got = [o.query(space.arch_to_index(g)).value for g in genos]
    assert got == [90.0, 91.0, 92.0]  # the file's val_accuracy, in row order
    with pytest.raises(OracleError, match="is not in nb301_cifar10.parquet"):
        o.query(10**18 - 1)
    with pytest.raises(OracleError, match="is not in"):
        o.query(2**70)  # beyond int64: no index of any table


def test_an_absent_sample_is_an_oracle_error_naming_the_file(data):
    with pytest.raises(OracleError, match=str(data / "nbsz" / "nb101_cifar10.parquet") + ".*RAYNAS_DATA"):
        create_oracle("nbsz_nb101")
    assert NBSZ_NB101.availability().startswith("absent: set RAYNAS_DATA")
    line = NBSZ_NB101.answer(0).line
    assert "absent" in line and "nb101_cifar10.parquet" in line


def test_answer_and_read_of_a_sample(data):
    write_nb101(data)
    wide, _ = read_published("nbsz:nb101:cifar10")
    i = wide.column("arch_index").to_pylist()[1]
    a = NBSZ_NB101.answer(i)
    assert a.value == pytest.approx(92.0) and a.rank == 1 and a.total == 2
    assert "not in the ground truth table" in NBSZ_NB101.answer(99).line
    with pytest.raises(Exception, match="no column"):
        NBSZ_NB101.read(["arch_index", "no_such_column"])
    idx, acc = NBSZ_NB101.column_arrays("val_accuracy")
    assert idx.dtype == np.int64 and acc.tolist() == pytest.approx([90.5, 92.0])


def test_a_sample_pickles_as_itself(data):
    write_nb101(data)
    back = pickle.loads(pickle.dumps(NBSZ_NB101))
    assert type(back) is SampleBenchmark and back == NBSZ_NB101
    assert back.read(["arch_index"]).num_rows == 2


def test_real_samples_answer_their_val_accuracy():
    for name, spec, n in (("nbsz_nb101", "nbsz:nb101:cifar10", 292), ("nbsz_nb301", "nbsz:nb301:cifar10", 725)):
        p = parse_spec(spec).path()
        if not p.is_file():
            pytest.skip(f"NAS-Bench-Suite-Zero table not found at {p} (set RAYNAS_DATA)")
        o = create_oracle(name)
        assert len(o) == n
        acc = pq.read_table(p, columns=["val_accuracy"]).column(0).to_numpy()
        if name == "nbsz_nb301":  # one row per genotype: the best row is the best arch
            assert o.best_final() == acc.max()
        else:  # 500 rows, 292 cells: a cell's value is the mean of its rows' (NASLib drew one of 3 runs per row)
            assert acc.min() <= o.best_final() <= acc.max() and o.best_final() > np.median(acc)
