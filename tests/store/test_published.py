"""Published score tables as a read-only pool (``raynas.store.published``): spec grammar, the wide table's shape
(as ``read_scores_wide`` gives a score run's), the NASLib -> raynas metric mapping, arch decoding, and the real
NAS-Bench-Suite-Zero files (skipped where absent)."""

from __future__ import annotations

import math
import re

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from raynas.errors import ConfigError, DataError, UnknownNameError
from raynas.spaces import create_space  # also registers the NB-Suite-Zero arch decoders
from raynas.spaces.nbsz import naslib_compact_to_genotype
from raynas.store import PublishedScores, ScoreReader, is_published, open_store, read_published, read_scores_wide
from raynas.store.published import (NASLIB_FAILED, SOURCES, TABLES, parse_spec, published_data_root,
                                     read_published_target)
from raynas.testing import planned_score_run
from raynas_tests.nbsz_tables import (C1, C3, IN, MP, NB101_KEYS, OUT, adjacency, naslib_compact, write_nb101,
                                      write_nb201, write_nb301)


@pytest.fixture
def data(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("RAYNAS_DATA", str(tmp_path))
    return tmp_path


# --- specs ----------------------------------------------------------------------------------------------------
def test_is_published_tells_a_spec_from_run_directories():
    assert is_published("nbsz:nb201:cifar10") and is_published("nbsz:nb999:x")  # a bad space: parse_spec says so
    assert not is_published("runs/a:runs/b") and not is_published("nbsz") and not is_published("./nbsz:runs/b")
    assert not is_published(["nbsz:nb201:cifar10"])  # a sequence names run directories


def test_parse_spec_lists_the_valid_names():
    assert parse_spec("nbsz:nb101:cifar10").space == "nb101" and parse_spec("nbsz:nb301:cifar10").space == "darts_cifar"
    with pytest.raises(UnknownNameError, match=r"unknown published score source 'nbz'.*did you mean 'nbsz'.*known: "):
        parse_spec("nbz:nb201:cifar10")
    with pytest.raises(UnknownNameError, match=r"unknown nbsz space 'nb210'.*known: nb101, nb201, nb301"):
        parse_spec("nbsz:nb210:cifar10")
    with pytest.raises(UnknownNameError, match=r"unknown nbsz:nb201 dataset 'cifar100'.*known: cifar10\)"):
        parse_spec("nbsz:nb201:cifar100")
    with pytest.raises(ConfigError, match="<source>:<space>:<dataset>.*nbsz:nb101:cifar10"):
        parse_spec("nbsz:nb201")
    assert {"nbsz:nb101:cifar10", "nbsz:nb201:cifar10", "nbsz:nb301:cifar10"} <= set(TABLES)


def test_a_known_source_without_tables_says_who_registers_them(monkeypatch):
    monkeypatch.setitem(SOURCES, "fakesrc", "a source whose space module is not imported")
    assert is_published("fakesrc:a:b")  # recognised before any of its tables is registered: not run directories
    with pytest.raises(ConfigError, match="no fakesrc table is registered.*raynas.spaces"):
        parse_spec("fakesrc:a:b")


def test_an_absent_table_names_its_path_and_raynas_data(data):
    with pytest.raises(DataError, match=re.escape(str(data / "nbsz" / "nb201_cifar10.parquet")) + ".*RAYNAS_DATA"):
        read_published("nbsz:nb201:cifar10")
    assert published_data_root() == data


# --- the wide table ---------------------------------------------------------------------------------------------
def test_wide_table_has_the_shape_of_a_score_runs_pool(data):
    write_nb201(data)
    wide, cfg = read_published("nbsz:nb201:cifar10")
    run = planned_score_run(data / "run", [0, 1], lambda a: {"params": 1.0 + a, "snip": 2.0})
    run_wide, run_cfg = read_scores_wide(run)
    assert wide.schema.field("arch_index").type == run_wide.schema.field("arch_index").type == pa.int64()
    assert wide.schema.field("arch").type == run_wide.schema.field("arch").type == pa.string()
    assert wide.column_names[:2] == run_wide.column_names[:2] == ["arch_index", "arch"]
    metrics = wide.column_names[2:]
    assert metrics == sorted(metrics) == cfg["metrics"] and all(wide.schema.field(m).type == pa.float64()
                                                                 for m in metrics)
    assert cfg["space"] == run_cfg["space"] == "nb201"
    assert cfg["source"] == "nbsz:nb201:cifar10" and cfg["benchmark"] == "nb201" and cfg["published"] is True
    assert cfg["rows"] == cfg["archs"] == 3 and cfg["table"] == str(data / "nbsz" / "nb201_cifar10.parquet")


def test_naslib_proxies_get_raynas_names_and_units(data):
    write_nb201(data)
    wide, cfg = read_published("nbsz:nb201:cifar10")
    assert cfg["metrics"] == ["epe_nas", "fisher", "grad_norm", "grasp", "jacob_cov", "l2_norm", "naswot_code",
                              "nbsz_flops", "params", "plain", "snip", "synflow"]
    assert cfg["columns"]["jacob_cov"] == "jacov" and cfg["columns"]["naswot_code"] == "nwot"
    assert cfg["columns"]["nbsz_flops"] == "flops"
    src = pq.read_table(data / "nbsz" / "nb201_cifar10.parquet").to_pydict()
    w = wide.to_pydict()
    for name, col in cfg["columns"].items():
        if name not in ("params", "synflow"):
            assert w[name] == src[col], name  # carried as published
    assert w["params"] == [250000.0, 250007.0, 250014.0]  # NASLib's millions as a count
    assert w["params"] == [round(v * 1e6) for v in src["params"]]
    # NASLib logs synflow: the column is the sum itself, whose log is the published value again
    assert [math.log(v) for v in w["synflow"]] == pytest.approx(src["synflow"], rel=4 * np.finfo(float).eps)
    assert "val_accuracy" not in wide.column_names and not any(c.endswith("_seconds") for c in wide.column_names)


def test_failed_proxies_are_null(data):
    n = 3
    write_nb201(data, jacov=[NASLIB_FAILED, 1.0, 2.0], nwot=[1.0, float("-inf"), float("nan")],
                snip=pa.array([None, 1.0, 2.0], pa.float64()),
                synflow=[0.0, -math.log(1e8), 50.0])
    wide, _ = read_published("nbsz:nb201:cifar10")
    w = wide.to_pydict()
    assert w["jacob_cov"] == [None, 1.0, 2.0] and w["naswot_code"] == [1.0, None, None] and w["snip"][0] is None
    # synflow 0 is an arch without a path (S = 0), NASLib's -ln(1e8) its failed score
    assert w["synflow"][:2] == [0.0, None] and w["synflow"][2] == pytest.approx(math.exp(50.0))
    assert wide.column("jacob_cov").null_count == 1 and len(w["arch_index"]) == n


def test_nb201_keys_must_agree_with_the_official_index_and_string(data):
    archs = write_nb201(data)
    wide, _ = read_published("nbsz:nb201:cifar10")
    assert wide.column("arch_index").to_pylist() == [0, 7, 15624] and wide.column("arch").to_pylist() == archs
    write_nb201(data, arch_index=pa.array([0, 8, 15624], pa.int32()))
    with pytest.raises(DataError, match="row 1: naslib_key decodes to index 7"):
        read_published("nbsz:nb201:cifar10")


def test_nb101_keys_of_one_cell_are_one_arch_averaged(data):
    write_nb101(data)
    wide, cfg = read_published("nbsz:nb101:cifar10")
    space = create_space("nb101")
    assert cfg["rows"] == 3 and cfg["archs"] == 2 and cfg["benchmark"] == "nbsz_nb101"
    assert "naswot_code" not in wide.column_names  # the NB101 file has no nwot
    w = wide.to_pydict()
    conv = space.arch_to_index(space.cell(np.array([[0, 1, 0], [0, 0, 1], [0, 0, 0]]), [IN, C3, OUT]))
    pool = space.arch_to_index(space.cell(adjacency([(0, 1), (1, 2), (2, 3)])[:4, :4], [IN, C1, MP, OUT]))
    assert sorted([conv, pool]) == w["arch_index"]
    row = w["arch_index"].index(conv)
    assert w["arch"][row] == space.format(space.index_to_arch(conv))
    assert w["grad_norm"][row] == pytest.approx((0.0 + 1.0) / 2)  # rows 0 and 1 of the file
    assert w["params"][row] == 250003.5  # the cell's two networks differ; their counts are averaged
    target = read_published_target("nbsz:nb101:cifar10").to_pydict()
    assert target["n_rows"][row] == 2 and target["val_accuracy"][row] == pytest.approx(90.5)


def test_nb301_compact_genotypes_round_trip(data):
    genos = write_nb301(data)
    wide, cfg = read_published("nbsz:nb301:cifar10")
    space = create_space("darts_cifar")
    assert cfg["space"] == "darts_cifar" and cfg["benchmark"] == "nbsz_nb301"
    assert wide.column("arch_index").to_pylist() == [0, 123456789, 10**18]
    assert wide.column("arch").to_pylist() == [space.format(g) for g in genos]
    # an edge order NASLib may use (higher input first) names the same genotype
    key = pq.read_table(data / "nbsz" / "nb301_cifar10.parquet").column("naslib_key")[1].as_py()
    swapped = str([[e for k in range(4) for e in reversed(cell[2 * k:2 * k + 2])] for cell in eval(key)])
    assert naslib_compact_to_genotype(swapped) == genos[1]


def test_a_key_that_does_not_decode_names_the_file(data):
    write_nb101(data, keys=[NB101_KEYS[0], "(0, 1)"])
    with pytest.raises(DataError, match=r"nb101_cifar10.parquet: NASLib NB101 key must be 49"):
        read_published("nbsz:nb101:cifar10")


def test_published_scores_and_runs_are_score_readers(data):
    write_nb201(data)
    src = PublishedScores("nbsz:nb201:cifar10")
    assert isinstance(src, ScoreReader) and isinstance(open_store(data / "run"), ScoreReader)
    full = src.read_wide()
    assert full.column_names[:4] == ["space", "arch_index", "arch", "seed"]  # raynas.store.to_wide's shape
    assert full.column("seed").type == pa.int64() and set(full.column("space").to_pylist()) == {"nb201"}
    assert src.load_config()["metrics"] == full.column_names[4:]


# --- the real files -------------------------------------------------------------------------------------------
def _real(spec: str) -> pa.Table:
    p = parse_spec(spec).path()
    if not p.is_file():
        pytest.skip(f"NAS-Bench-Suite-Zero table not found at {p} (set RAYNAS_DATA)")
    return pq.read_table(p)


def test_real_nb201_table():
    src = _real("nbsz:nb201:cifar10")
    wide, cfg = read_published("nbsz:nb201:cifar10")
    assert src.num_rows == wide.num_rows == cfg["archs"] == 725
    space = create_space("nb201")
    by_index = dict(zip(src.column("arch_index").to_pylist(), src.to_pylist()))
    w = wide.to_pydict()
    for i, arch in zip(w["arch_index"], w["arch"]):
        assert arch == by_index[i]["arch_str"] == space.format(space.index_to_arch(i))
    for k, i in enumerate(w["arch_index"]):
        row = by_index[i]
        assert w["params"][k] == round(row["params"] * 1e6)
        if row["synflow"] is None:
            assert w["synflow"][k] is None
        elif row["synflow"] == 0.0:
            assert w["synflow"][k] == 0.0
        else:
            assert math.log(w["synflow"][k]) == pytest.approx(row["synflow"], rel=4 * np.finfo(float).eps)
    assert wide.column("jacob_cov").null_count == sum(v == NASLIB_FAILED for v in src.column("jacov").to_pylist())


def test_real_nb101_table_maps_every_key_to_its_cell():
    from raynas.spaces.nb101.benchmark import decode_naslib_key

    src = _real("nbsz:nb101:cifar10")
    wide, cfg = read_published("nbsz:nb101:cifar10")
    assert (src.num_rows, cfg["rows"], cfg["archs"], wide.num_rows) == (500, 500, 292, 292)
    space = create_space("nb101")
    archs = dict(zip(wide.column("arch_index").to_pylist(), wide.column("arch").to_pylist()))
    target = read_published_target("nbsz:nb101:cifar10")
    assert sum(target.column("n_rows").to_pylist()) == 500
    for key in src.column("naslib_key").to_pylist()[::10]:
        spec = decode_naslib_key(key)
        cell = space.cell(spec.matrix, spec.ops)
        i = space.arch_to_index(cell)
        assert archs[i] == space.format(cell) and space.format(space.index_to_arch(i)) == archs[i]


def test_real_nb301_table_round_trips_genotypes():
    src = _real("nbsz:nb301:cifar10")
    wide, cfg = read_published("nbsz:nb301:cifar10")
    assert src.num_rows == wide.num_rows == cfg["archs"] == 725
    space = create_space("darts_cifar")
    archs = dict(zip(wide.column("arch_index").to_pylist(), wide.column("arch").to_pylist()))
    for key in src.column("naslib_key").to_pylist():
        g = naslib_compact_to_genotype(key)
        i = space.arch_to_index(g)
        assert space.index_to_arch(i) == g and archs[i] == space.format(g)
        assert naslib_compact_to_genotype(naslib_compact(space.index_to_arch(i))) == g
    # the params column carries NASLib's counts (in millions there)
    by_index = dict(zip(wide.column("arch_index").to_pylist(), wide.column("params").to_pylist()))
    for key, p in zip(src.column("naslib_key").to_pylist(), src.column("params").to_pylist()):
        assert by_index[space.arch_to_index(naslib_compact_to_genotype(key))] == round(p * 1e6)
