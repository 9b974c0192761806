"""Issue 13, defect 13: the chosen arch's NB201 answer (200-epoch test accuracy and rank) after every search.

Expected numbers are computed here from the table itself (pyarrow + numpy), never copied from a run.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import raynas.search.runner as runner
import raynas.search.session as session
from raynas.cli.main import main
from raynas.parallel.config import ScoreConfig
from raynas.store import ScoreStore, results_to_table
from raynas.testing import FakeOracle, metric_results


def benchmark_answer(*args):  # type: ignore[no-untyped-def]
    from raynas.oracles.base import benchmark_answer as answer

    return answer(*args)


def expected_line(table_path: Path, arch_index: int) -> str:
    t = pq.read_table(table_path, columns=["arch_index", "cifar10_test_acc_200ep"])
    idx, acc = t.column(0).to_numpy(), t.column(1).to_numpy()
    mine = float(acc[idx == arch_index][0])
    rank = 1 + int((acc > mine).sum())
    return (f"NB201 index {arch_index}: {mine:.2f} % test accuracy after 200 epochs, "
            f"rank {rank:,} of {len(idx):,}")


def make_run(tmp_path: Path, values, ids=tuple(range(0, 40, 3)), metrics=("params", "snip")) -> Path:
    """A complete one-shard run of ``ids``; ``values(arch) -> {metric: value}``."""
    run = tmp_path / "run"
    store = ScoreStore(run)
    store.save_config(ScoreConfig(out=str(run), space="nb201", metrics=metrics, ids=ids, shard_size=len(ids),
                                  workers=0).resolved())
    store.write_shard(0, pa.concat_tables([results_to_table("nb201", a, f"arch{a}", 0, "digits",
                                                            metric_results(values(a)), "h") for a in ids]))
    return run


def test_answer_from_the_table(nb201_table_path):
    t = pq.read_table(nb201_table_path, columns=["arch_index", "cifar10_test_acc_200ep"])
    acc = t.column(1).to_numpy()
    best = int(t.column(0).to_numpy()[np.argmax(acc)])
    a = benchmark_answer("nb201", best, nb201_table_path)
    assert a.rank == 1 and a.total == t.num_rows and a.test_acc == pytest.approx(acc.max())
    for i in (0, 4796, 15624):
        assert benchmark_answer("nb201", i, nb201_table_path).line == expected_line(nb201_table_path, i)


def test_absent_or_unreadable_table_is_one_line_not_a_failure(tmp_path):
    a = benchmark_answer("nb201", 12, tmp_path / "nope.parquet")
    assert a.test_acc is None and a.rank is None and "\n" not in a.line
    assert a.line.startswith("NB201 index 12: no benchmark answer") and "absent" in a.line
    bad = tmp_path / "bad.parquet"
    bad.write_text("not parquet")
    b = benchmark_answer("nb201", 12, bad)
    assert b.test_acc is None and "cannot read" in b.line and "\n" not in b.line
    assert benchmark_answer("darts_cifar", 12, tmp_path / "nope.parquet") is None  # no benchmark for that space


def test_robot_cli_prints_the_answer(tmp_path, capsys, nb201_table_path):
    run = make_run(tmp_path, lambda a: {"params": 1.0 + a, "snip": float((a * 7) % 5)})
    out = tmp_path / "s"
    assert main(["search", "robot", "--scores", str(run), "--metrics", "params,snip", "--budget", "4",
                 "--out", str(out), "--no-progress"]) == 0
    stdout = capsys.readouterr().out
    result = json.loads((out / "result.json").read_text())
    line = expected_line(nb201_table_path, result["arch_index"])
    assert result["benchmark"]["line"] == line and stdout.rstrip().endswith(line)


def test_robot_search_without_the_table_says_so(tmp_path, monkeypatch):
    run = make_run(tmp_path, lambda a: {"params": 1.0 + a, "snip": float(a % 4)})
    ids = list(range(0, 40, 3))
    monkeypatch.setattr(session, "make_oracle", lambda *a, **k: FakeOracle(ids, [float(i % 7) for i in ids]))
    monkeypatch.setenv("RAYNAS_DATA", str(tmp_path / "no_data"))
    r = runner.run_robot_search({"scores": str(run), "out": str(tmp_path / "s"), "metrics": "params,snip",
                                 "budget": 3})
    assert r["benchmark"]["test_acc"] is None and "absent" in r["benchmark"]["line"]
    assert str(tmp_path / "no_data") in r["benchmark"]["line"]


def test_hnas_cli_prints_the_answer(tmp_path, capsys, nb201_table_path):
    run = make_run(tmp_path, lambda a: {"ntk_trace": 1.0 + (a * 13) % 17, "ntk_cond": 10.0 + a},
                   metrics=("ntk_trace", "ntk_cond"))
    out = tmp_path / "h"
    assert main(["search", "hnas", "--scores", str(run), "--budget", "3", "--out", str(out), "--no-progress"]) == 0
    stdout = capsys.readouterr().out
    result = json.loads((out / "result.json").read_text())
    assert stdout.rstrip().endswith(expected_line(nb201_table_path, result["arch_index"]))


def test_tenas_cli_prints_the_answer(tmp_path, capsys, monkeypatch, nb201_table_path):
    import raynas.pruning.run as tenas

    def fake(cfg, progress_callback=None):  # type: ignore[no-untyped-def]
        return {"method": "tenas", "space": cfg.space, "arch": "|...|", "arch_index": 4796}

    monkeypatch.setattr(tenas, "run_tenas_search", fake)  # the CLI looks the entry point up at call time
    assert main(["search", "tenas", "--out", str(tmp_path / "t"), "--no-progress"]) == 0
    assert capsys.readouterr().out.rstrip().endswith(expected_line(nb201_table_path, 4796))
    # DARTS has no benchmark table: nothing is claimed
    monkeypatch.setattr(tenas, "run_tenas_search", lambda cfg, progress_callback=None: {
        "method": "tenas", "space": "darts_cifar", "arch": "g"})
    assert main(["search", "tenas", "--space", "darts_cifar", "--out", str(tmp_path / "d"), "--no-progress"]) == 0
    assert "NB201" not in capsys.readouterr().out


def test_pipeline_prints_the_answer_of_each_search(tmp_path, capsys, monkeypatch, nb201_table_path):
    import raynas.parallel
    import raynas.report
    import raynas.search.hnas_run as hnas

    seen = {}

    def fake_robot(cfg, progress_callback=None):  # type: ignore[no-untyped-def]
        seen.update(dataclasses.asdict(cfg))  # the pipeline hands over the typed config
        answer = benchmark_answer("nb201", 4796)
        return {"arch_index": 4796, "arch": "|a|", "value": 50.0, "queries": 3, "cost": 1.0, "weights": [0.1],
                "budget": 3, "budget_requested": 3, "pool": {"size": 6}, "benchmark": answer.as_dict()}

    # no real scoring: the pipeline calls run_scoring (patching only run_scoring_from_dict let it score 48 full-size
    # archs on a local Ray: minutes, and past the time limit on a busy machine)
    for name in ("run_scoring", "run_scoring_from_dict"):
        monkeypatch.setattr(raynas.parallel, name, lambda cfg, progress_callback=None: {})
    monkeypatch.setattr(runner, "run_robot_search", fake_robot)
    monkeypatch.setattr(hnas, "run_hnas_search", lambda cfg, progress_callback=None: {  # stores its answer
        "arch_index": 0, "arch": "|b|", "value": 40.0, "queries": 3, "cost": 1.0,
        "benchmark": benchmark_answer("nb201", 0).as_dict()})
    monkeypatch.setattr(raynas.report, "write_report", lambda out: [])
    assert main(["search", "pipeline", "--out", str(tmp_path / "p"), "--no-progress", "--set", "search.hnas=true"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert expected_line(nb201_table_path, 4796) in lines
    assert "HNAS: " + expected_line(nb201_table_path, 0) in lines
    assert seen["allow_incomplete"] is False  # the pipeline's own scoring must be complete unless configured
    assert not (tmp_path / "p" / "scores").exists()  # nothing was scored
