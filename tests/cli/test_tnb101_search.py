"""Searches on TransNAS-Bench-101 through the CLI (issue 31 item 6): HNAS on a raynas-scored run of the task whose
NTK applies (jigsaw: 1,000 permutation labels), refused before any work where it does not (room_layout: the NTK rows
are ``not_applicable``), and RoBoT / LinUCB on a published pool that lacks synflow when no ``--metrics`` is named
(the defaults the pool holds are searched, the others named in one log line; a named missing metric exits 2)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from raynas.cli.main import main
from raynas.oracles.base import create_oracle
from raynas.spaces import create_space
from raynas.spaces.benchmarks import data_root
from raynas_tests.nbsz_tables import write_tnb101

#: small networks in-process: C=4, 16 px jigsaw tiles (64 px images), batch 4
SMALL = ["--C", "4", "--image-size", "16", "--batch-size", "4", "--data", "noise", "--workers", "0", "--no-progress"]
#: macro indices NAS-Bench-Suite-Zero's jigsaw / room_layout samples hold (their oracles answer only for those)
HELD = [0, 1, 2, 4]
HNAS_FAST = ["--budget", "3", "--max-iters", "4", "--no-progress"]
#: RoBoT's default metrics without synflow, which NAS-Bench-Suite-Zero's TransNAS-Bench-101 tables lack
FIVE = ["grad_norm", "snip", "grasp", "fisher", "jacob_cov"]


def _score(run: Path, task: str, metrics: str) -> None:
    ids = ",".join(map(str, HELD))
    assert main(["score", "--space", "tnb101_macro", "--task", task, "--metrics", metrics, "--ids", ids,
                 "--out", str(run), *SMALL]) == 0


def _rows(run: Path) -> list[dict]:
    return pq.read_table(run / "scores").to_pylist()


def test_hnas_searches_a_scored_jigsaw_run(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    if not (data_root() / "tnb101" / "tnb101_macro_jigsaw.parquet").exists():
        pytest.skip("NAS-Bench-Suite-Zero's TransNAS-Bench-101 tables are not here (set RAYNAS_DATA)")
    run, out = tmp_path / "J", tmp_path / "H"
    _score(run, "jigsaw", "ntk_trace,ntk_cond")
    assert {r["status"] for r in _rows(run)} == {"ok"}  # jigsaw has class labels: HNAS's NTK applies
    rc = main(["search", "hnas", "--scores", str(run), "--out", str(out), "--oracle", "tnb101_macro_jigsaw",
               *HNAS_FAST])
    capsys.readouterr()
    assert rc == 0
    r = json.loads((out / "result.json").read_text())
    oracle = create_oracle("tnb101_macro_jigsaw")
    space = create_space("tnb101_macro")
    assert r["space"] == "tnb101_macro" and r["metrics"] == ["ntk_trace", "ntk_cond"]
    assert len(set(r["queried"])) == 3 and set(r["queried"]) <= set(HELD)
    # the answer is the best queried arch by the sample's validation accuracy, named by TNB101's string
    assert r["arch_index"] == max(r["queried"], key=lambda i: (oracle.query(i).value, -i))
    assert r["value"] == pytest.approx(oracle.query(r["arch_index"]).value)
    assert r["arch"] == space.format(space.index_to_arch(r["arch_index"]))
    # the space has no one benchmark (its tables are per task): no default oracle, but the refusal names the
    # task's table; another task's table would rank by another metric: refused too, both before any work
    for oracle_flag, message in (([], "--oracle tnb101_macro_jigsaw"),
                                 (["--oracle", "tnb101_macro_room_layout"], "the scores are of task 'jigsaw'")):
        assert main(["search", "hnas", "--scores", str(run), "--out", str(tmp_path / "H2"), *HNAS_FAST,
                     *oracle_flag]) == 2
        assert message in capsys.readouterr().err and not (tmp_path / "H2").exists()


def test_hnas_refuses_a_task_without_class_labels_before_any_work(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture) -> None:
    """room_layout regresses 9 values: the NTK rows are not_applicable (the run is complete), and a search over
    them exits 2 with one line saying why, before it makes its directory; so does an explicit --metrics naming
    them."""
    run = tmp_path / "R"
    _score(run, "room_layout", "ntk_trace,ntk_cond,params")  # a run of nothing but not_applicable rows fails
    assert {r["metric"] for r in _rows(run) if r["status"] == "not_applicable"} == {"ntk_trace", "ntk_cond"}
    capsys.readouterr()
    for argv in (["search", "hnas", "--scores", str(run), "--out", str(tmp_path / "H"), *HNAS_FAST],
                 ["search", "robot", "--scores", str(run), "--out", str(tmp_path / "B"), "--budget", "2",
                  "--metrics", "ntk_trace", "--no-progress"]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("raynas: error:"), err
        assert "not_applicable" in err[0] and "'room_layout'" in err[0] and "ntk_trace" in err[0]
        assert not Path(argv[argv.index("--out") + 1]).exists()


# --- default metrics on a published pool without synflow --------------------------------------------------------
def _write_table(root: Path, space: str, task: str, indices: list[int], values: list[float]) -> None:
    """A table in NAS-Bench-Suite-Zero's layout without synflow (:func:`raynas_tests.nbsz_tables.write_tnb101`)."""
    write_tnb101(root, space, task, tuple(indices), values)


@pytest.fixture
def published(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("RAYNAS_DATA", str(tmp_path / "data"))
    _write_table(tmp_path / "data", "micro", "class_scene", [0, 1060, 4095, 2000, 17, 300], [50, 61, 55, 58, 52, 60])
    return "tnb101:micro:class_scene"


@pytest.mark.parametrize("method", ["robot", "linucb"])
def test_default_metrics_are_those_the_published_pool_holds(tmp_path: Path, published: str, method: str,
                                                            capsys: pytest.CaptureFixture,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    out = tmp_path / method
    argv = ["search", method, "--scores", published, "--out", str(out), "--budget", "3"]
    with caplog.at_level(logging.WARNING, logger="raynas.search.session"):
        assert main(argv) == 0
    capsys.readouterr()
    lines = [m for m in caplog.messages if "left out" in m]
    assert len(lines) == 1 and "synflow (not stored)" in lines[0] and "--metrics" in lines[0]
    r = json.loads((out / "result.json").read_text())
    assert r["metrics"] == FIVE and r["benchmark"]["total"] == 6
    assert json.loads((out / "search.json").read_text())["metrics"] == FIVE  # what was searched is recorded
    # a resume without --metrics resolves the same list: its config equals the stored one
    assert main([*argv, "--resume"]) == 0
    assert json.loads((out / "result.json").read_text())["arch_index"] == r["arch_index"]
    capsys.readouterr()


@pytest.mark.parametrize("method", ["robot", "linucb"])
def test_a_named_missing_metric_still_exits_2(tmp_path: Path, published: str, method: str,
                                             capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / method
    assert main(["search", method, "--scores", published, "--out", str(out), "--budget", "3",
                 "--metrics", "synflow,snip"]) == 2
    err = capsys.readouterr().err
    assert "lack metric(s) ['synflow']" in err and "stored metrics: [" in err and "'grad_norm'" in err
    assert not out.exists()
