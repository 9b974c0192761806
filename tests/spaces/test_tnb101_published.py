"""TransNAS-Bench-101's NAS-Bench-Suite-Zero tables as published pools ``tnb101:<space>:<task>`` and sample
benchmarks ``tnb101_<space>_<task>`` (``raynas.spaces.tnb101.published``): on small files in the layout of
``shared/data/tnb101/`` written here, then on the real files (skipped where absent)."""

from __future__ import annotations

import json
import pickle
import re
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from raynas.api import describe_registry
from raynas.api import search as api_search
from raynas.errors import DataError, OracleError, SearchError, UnknownNameError
from raynas.oracles.base import BenchmarkTableOracle, create_oracle
from raynas.spaces import benchmark_for_space, create_benchmark, create_space
from raynas.spaces.benchmarks import data_root
from raynas.spaces.nbsz import SampleBenchmark
from raynas.spaces.tnb101 import TASKS
from raynas.spaces.tnb101.published import SAMPLES, TNB101_METRICS, sample_name, table_spec
from raynas.store import read_published
from raynas.store.published import TABLES, parse_spec, read_published_target
from raynas_tests.nbsz_tables import TNB101_TABLE_PROXIES
from raynas_tests.nbsz_tables import write_tnb101 as write_table

SPACE_KEYS = ("micro", "macro")
# NASLib's proxy columns of the files, as the tables the tests write hold them
PROXIES = TNB101_TABLE_PROXIES


@pytest.fixture
def data(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("RAYNAS_DATA", str(tmp_path))
    return tmp_path




MICRO = (0, 1060, 4095, 2000)  # raynas indices: not sorted in the file, to see the rows sorted by index
MACRO = (0, 18, 3255)


# --- registration --------------------------------------------------------------------------------------------
def test_fourteen_tables_and_samples_are_registered():
    specs = {s for s, t in TABLES.items() if t.source == "tnb101"}
    assert specs == {table_spec(sp, t) for sp in SPACE_KEYS for t in TASKS}
    assert len(specs) == 14 and len(SAMPLES) == 14
    for sp in SPACE_KEYS:
        for task in TASKS:
            tb = parse_spec(table_spec(sp, task))
            b = create_benchmark(sample_name(sp, task))
            assert b is SAMPLES[b.name] and isinstance(b, SampleBenchmark) and b.sample
            assert (tb.space, b.space, tb.benchmark, b.spec) == (f"tnb101_{sp}", f"tnb101_{sp}", b.name, tb.spec)
            assert b.relpath == tb.relpath == f"tnb101/tnb101_{sp}_{task}.parquet"
            assert b.query_column == b.final_column() == "val_metric_best_epoch" and b.default_dataset == task
            # the final-epoch metric: micro files only
            assert (f"{task}_final_epoch" in b.finals) == (sp == "micro")
            assert tb.extra_targets == (("val_metric_final_epoch",) if sp == "micro" else ())
    # samples are never a space's default benchmark
    assert benchmark_for_space("tnb101_micro") is None and benchmark_for_space("tnb101_macro") is None


def test_every_task_metric_is_higher_is_better():
    # the samples rely on it: oracles, searches and answer ranks take a larger value as better
    assert {t: (i.val_metric_name, i.higher_is_better) for t, i in TASKS.items()} == {
        "class_scene": ("valid_top1", True), "class_object": ("valid_top1", True), "jigsaw": ("valid_top1", True),
        "room_layout": ("valid_neg_loss", True), "segmentsemantic": ("valid_acc", True),
        "normal": ("valid_ssim", True), "autoencoder": ("valid_ssim", True)}


def test_list_benchmarks_shows_them_as_samples(data):
    lines = {ln.split()[0]: ln for ln in describe_registry("benchmarks")}
    for name, b in SAMPLES.items():
        assert "sample" in lines[name] and str(data / b.relpath) in lines[name] and "(absent: " in lines[name]


def test_an_unknown_task_lists_the_valid_ones():
    with pytest.raises(UnknownNameError, match="room_layout"):
        parse_spec("tnb101:micro:room_layot")


# --- the pool ------------------------------------------------------------------------------------------------
def test_micro_pool_has_raynas_indices_and_names(data):
    archs = write_table(data, "micro", "room_layout", MICRO, [-0.9, -0.6, -0.7, -0.8])
    wide, cfg = read_published("tnb101:micro:room_layout")
    # rows sorted by raynas's index (the file's NASLib arch_index is not read)
    order = np.argsort(MICRO)
    assert wide.column("arch_index").to_pylist() == sorted(MICRO)
    assert wide.column("arch").to_pylist() == [archs[i] for i in order]
    sp = create_space("tnb101_micro")
    assert [sp.arch_to_index(sp.parse(a)) for a in wide.column("arch").to_pylist()] == sorted(MICRO)
    assert cfg["metrics"] == ["fisher", "grad_norm", "grasp", "jacob_cov", "l2_norm", "naswot_code", "nbsz_flops",
                              "params", "plain", "snip", "zen"]
    assert (cfg["space"], cfg["benchmark"], cfg["dataset"], cfg["rows"], cfg["archs"]) == (
        "tnb101_micro", "tnb101_micro_room_layout", "room_layout", 4, 4)
    assert cfg["columns"]["jacob_cov"] == "jacov" and cfg["columns"]["naswot_code"] == "nwot"
    assert cfg["columns"]["nbsz_flops"] == "flops"
    rows = order  # wide row j is file row order[j]
    k = {name: i for i, name in enumerate(PROXIES)}
    assert wide.column("jacob_cov").to_pylist() == [10.0 * k["jacov"] + r for r in rows]
    assert wide.column("naswot_code").to_pylist() == [10.0 * k["nwot"] + r for r in rows]
    assert wide.column("nbsz_flops").to_pylist() == [10.0 * k["flops"] + r for r in rows]
    assert wide.column("params").to_pylist() == [250000.0 + 7 * r for r in rows]  # millions -> the count
    assert wide.column("zen").to_pylist() == [100.0 + r for r in rows]
    # no placeholder, timing or ground-truth column is a metric
    assert not {"epe_nas", "val_metric_best_epoch", "val_metric_final_epoch"} & set(wide.column_names)
    assert not any(c.endswith("_time_s") for c in wide.column_names)


def test_macro_pool_has_no_zen_and_no_final_epoch(data):
    write_table(data, "macro", "class_scene", MACRO, [50.0, 51.0, 49.0])
    wide, cfg = read_published("tnb101:macro:class_scene")
    assert wide.column("arch").to_pylist() == ["64-1114-basic", "64-1242-basic", create_space(
        "tnb101_macro").format(create_space("tnb101_macro").index_to_arch(3255))]
    assert "zen" not in cfg["metrics"] and len(cfg["metrics"]) == 10
    assert read_published_target("tnb101:macro:class_scene").column_names == [
        "arch_index", "arch", "val_metric_best_epoch", "n_rows"]


def test_failed_proxies_are_null_and_a_real_zero_stays(data):
    write_table(data, "micro", "jigsaw", MICRO, [90.0, 91.0, 92.0, 93.0],
                jacov=[-1e8, -32.0, -32.1, -32.2], zen=[-1e8, 1.0, 2.0, 3.0], snip=[0.0, 1.0, 2.0, 3.0])
    wide, _ = read_published("tnb101:micro:jigsaw")
    first = int(np.flatnonzero(np.array(wide.column("arch_index").to_pylist()) == MICRO[0])[0])
    assert wide.column("jacob_cov")[first].as_py() is None and wide.column("zen")[first].as_py() is None
    assert wide.column("snip")[first].as_py() == 0.0
    assert wide.column("jacob_cov").null_count == 1


def test_a_bad_arch_string_names_the_file_and_row(data):
    write_table(data, "micro", "normal", MICRO[:2], [0.4, 0.5], arch_str=["64-41414-1_00_210", "64-41414-4_00_210"])
    with pytest.raises(DataError, match=r"tnb101_micro_normal\.parquet: row 1: .*64-41414-4_00_210"):
        read_published("tnb101:micro:normal")


def test_rows_of_another_metric_are_refused(data):
    # a table whose ground truth is not the task's metric would be ranked in a direction nobody checked
    names = ["valid_neg_loss", "valid_loss", "valid_neg_loss"]
    write_table(data, "macro", "room_layout", MACRO, [-0.6, -0.7, -0.8], val_metric_name=names)
    with pytest.raises(DataError, match=r"row 1: val_metric_name 'valid_loss', but room_layout's metric is "
                                        r"'valid_neg_loss'"):
        read_published("tnb101:macro:room_layout")


def test_a_micro_file_without_the_final_epoch_column_is_refused(data):
    write_table(data, "micro", "autoencoder", MICRO, [0.1, 0.2, 0.3, 0.4])
    p = data / "tnb101" / "tnb101_micro_autoencoder.parquet"
    pq.write_table(pq.read_table(p).drop(["val_metric_final_epoch"]), p)
    with pytest.raises(DataError, match=r"lacks column\(s\) \['val_metric_final_epoch'\]"):
        read_published("tnb101:micro:autoencoder")


def test_an_absent_table_names_its_path(data):
    with pytest.raises(DataError, match=re.escape(str(data / "tnb101" / "tnb101_macro_normal.parquet"))):
        read_published("tnb101:macro:normal")
    with pytest.raises(OracleError, match="tnb101_macro_normal.parquet"):
        create_oracle("tnb101_macro_normal")


# --- the sample benchmarks -------------------------------------------------------------------------------------
def test_sample_oracle_answers_best_and_final_epoch_for_its_archs_only(data):
    best = [-0.9, -0.6, -0.7, -0.8]
    write_table(data, "micro", "room_layout", MICRO, best)
    o = create_oracle("tnb101_micro_room_layout")
    assert len(o) == 4
    for i, v in zip(MICRO, best):
        q = o.query(i)
        assert (q.value, q.cost_seconds, o.final(i)) == (pytest.approx(v), 0.0, pytest.approx(v))
    # the negated loss nearest 0 is the best: rank 1, and the oracle's best
    assert o.best_final() == pytest.approx(-0.6)
    b = SAMPLES["tnb101_micro_room_layout"]
    a = b.answer(1060)
    assert (a.rank, a.total) == (1, 4) and "rank 1 of 4" in a.line and "negated validation loss" in a.line
    assert b.answer(0).rank == 4
    # the final-epoch metric, as another dataset's final column
    fin = b.final_values(dataset="room_layout_final_epoch")
    assert fin == {i: pytest.approx(v - 0.5) for i, v in zip(MICRO, best)}
    o2 = BenchmarkTableOracle(b, final_column=b.final_column("room_layout_final_epoch"))
    assert o2.final(1060) == pytest.approx(-1.1) and o2.query(1060).value == pytest.approx(-0.6)
    other = next(i for i in range(4096) if i not in MICRO)
    with pytest.raises(OracleError, match=rf"architecture {other} is not in tnb101_micro_room_layout\.parquet"):
        o.query(other)
    assert "not in the ground truth table" in b.answer(other).line


def test_sample_benchmark_pickles_with_its_class(data):
    b = SAMPLES["tnb101_macro_jigsaw"]
    c = pickle.loads(pickle.dumps(b))
    assert type(c) is SampleBenchmark and c == b


# --- a search end to end -----------------------------------------------------------------------------------------
FIVE = "grad_norm,snip,grasp,fisher,jacob_cov"  # these files have no synflow (RoBoT's sixth)


@pytest.mark.parametrize("method,options", [("linucb", {"metrics": FIVE}), ("random", {})])
def test_search_on_a_published_tnb101_pool_answers_from_its_sample(data, tmp_path, method, options):
    best = [-0.9, -0.6, -0.7, -0.8]
    write_table(data, "micro", "room_layout", MICRO, best)
    # the whole pool queried: the answer must be the best arch, whatever the proxies say
    r = api_search(method, tmp_path / "out", scores="tnb101:micro:room_layout", budget=4, **options)
    assert r["arch_index"] == 1060 and r["arch"] == "64-41414-1_00_210"
    assert r["benchmark"]["rank"] == 1 and r["benchmark"]["total"] == 4
    saved = json.loads((tmp_path / "out" / "search.json").read_text())
    assert "tnb101_micro_room_layout" in json.dumps(saved)  # the default oracle the search recorded


def test_the_default_metrics_leave_out_the_missing_synflow(data, tmp_path, caplog):
    """No metrics named: the defaults the table holds are searched, synflow left out with one log line and the
    searched list recorded; a metric named explicitly that the table lacks is still refused, naming the stored ones."""
    write_table(data, "micro", "room_layout", MICRO, [-0.9, -0.6, -0.7, -0.8])
    with caplog.at_level("WARNING", logger="raynas.search.session"):
        r = api_search("linucb", tmp_path / "out", scores="tnb101:micro:room_layout", budget=2)
    assert r["metrics"] == FIVE.split(",")
    assert [m for m in caplog.messages if "synflow (not stored)" in m and "left out" in m]
    assert json.loads((tmp_path / "out" / "search.json").read_text())["metrics"] == FIVE.split(",")
    with pytest.raises(SearchError, match=r"lack metric\(s\) \['synflow'\]; stored metrics: \[.*'snip'"):
        api_search("linucb", tmp_path / "o2", scores="tnb101:micro:room_layout", budget=2, metrics="synflow,snip")


# --- the real files --------------------------------------------------------------------------------------------
def _real(space: str, task: str) -> Path:
    p = data_root() / "tnb101" / f"tnb101_{space}_{task}.parquet"
    if not p.exists():
        pytest.skip(f"NAS-Bench-Suite-Zero TNB101 table not found at {p} (set RAYNAS_DATA)")
    return p


@pytest.mark.parametrize("space,task", [(s, t) for s in SPACE_KEYS for t in TASKS])
def test_real_table(space, task):
    p = _real(space, task)
    raw = pq.read_table(p, columns=["arch_str", "val_metric_best_epoch", "val_metric_name"]).to_pydict()
    wide, cfg = read_published(table_spec(space, task))
    n = 711 if space == "micro" else (662 if task.startswith("class_") else 725)
    assert cfg["rows"] == cfg["archs"] == wide.num_rows == n
    # arch round trip: index -> arch -> the file's own string
    sp = create_space(f"tnb101_{space}")
    idx, arch = wide.column("arch_index").to_pylist(), wide.column("arch").to_pylist()
    assert [sp.format(sp.index_to_arch(i)) for i in idx] == arch
    assert sorted(arch) == sorted(raw["arch_str"])
    assert set(raw["val_metric_name"]) == {TASKS[task].val_metric_name}
    # the oracle's value is the file's best-epoch metric of that arch
    o = create_oracle(sample_name(space, task))
    by_str = dict(zip(raw["arch_str"], raw["val_metric_best_epoch"]))
    assert [o.final(i) for i in idx[:25]] == [pytest.approx(by_str[a]) for a in arch[:25]]
    if task == "room_layout":  # a negated loss: every value below 0, the best the one nearest 0
        assert max(raw["val_metric_best_epoch"]) < 0
    # RoBoT's five proxies have a value on (almost) every arch: only micro jacov fails (20 cut-off cells)
    for m in ("grad_norm", "snip", "grasp", "fisher", "jacob_cov"):
        nulls = wide.column(m).null_count
        assert nulls == (20 if (space, m) == ("micro", "jacob_cov") else 0), (m, nulls)
    assert ("zen" in cfg["metrics"]) == (space == "micro")
    assert {c.name for c in TNB101_METRICS} >= set(cfg["metrics"])


def test_real_micro_final_epoch_is_the_files_column():
    p = _real("micro", "class_scene")
    raw = pq.read_table(p, columns=["arch_str", "val_metric_final_epoch"]).to_pydict()
    t = read_published_target("tnb101:micro:class_scene")
    want = dict(zip(raw["arch_str"], raw["val_metric_final_epoch"]))
    got = t.column("val_metric_final_epoch").to_pylist()
    assert got == [pytest.approx(want[a]) for a in t.column("arch").to_pylist()]


def test_real_search_end_to_end(tmp_path):
    _real("micro", "jigsaw")
    r = api_search("linucb", tmp_path / "out", scores="tnb101:micro:jigsaw", budget=10, metrics=FIVE)
    b = r["benchmark"]
    assert b["total"] == 711 and 1 <= b["rank"] <= 711
    # the answer is the best of the ten queried archs, by the sample's value
    o = create_oracle("tnb101_micro_jigsaw")
    queried = r["queried"]
    assert len(set(queried)) == 10 and r["values"] == [pytest.approx(o.query(i).value) for i in queried]
    assert r["arch_index"] == max(queried, key=lambda i: (o.query(i).value, -i))
    assert b["test_acc"] == pytest.approx(o.final(r["arch_index"]))
