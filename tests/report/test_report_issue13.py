"""``raynas report``: --out DIR, unwritable destinations (issue 13, defect 6), completeness stated in the
report itself (defect 7)."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from raynas.cli.main import main
from raynas.parallel import open_run
from raynas.report import write_report
from raynas.store import results_to_table
from raynas.testing import metric_results, planned_score_run

IDS = tuple(range(8))


def make_run(root: Path, ids=IDS, shard_size: int = 2) -> Path:
    """A score run of ``ids`` (params and snip, ok) in shards of ``shard_size``, plus a ground-truth table."""
    run = planned_score_run(root / "run", ids, lambda a: {"params": float(a), "snip": float((a * 5) % 7)},
                            shard_size=shard_size, data="digits:seed=0")
    truth = root / "truth.parquet"
    pq.write_table(pa.table({"arch_index": list(ids), "cifar10_test_acc_200ep": [80.0 + a for a in ids]}), truth)
    return run


def test_report_out_dir_receives_markdown_and_pngs(tmp_path, capsys):
    run = make_run(tmp_path)
    dest = tmp_path / "elsewhere" / "rep"
    assert main(["report", str(run), "--truth", str(tmp_path / "truth.parquet"), "--out", str(dest)]) == 0
    written = [Path(p) for p in capsys.readouterr().out.split()]
    assert written == [dest / "report.md", dest / "metrics_vs_accuracy.png"]
    assert all(p.is_file() for p in written)
    assert not (run / "report").exists()  # nothing written into the run
    assert "![metrics vs accuracy](metrics_vs_accuracy.png)" in (dest / "report.md").read_text()


def test_report_library_out_argument(tmp_path):
    run = make_run(tmp_path)
    paths = write_report(run, truth=str(tmp_path / "missing.parquet"), out=tmp_path / "r")
    assert paths == [tmp_path / "r" / "report.md"]


def test_unwritable_out_exit_2_one_line(tmp_path, capsys):
    run = make_run(tmp_path)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    rc = main(["report", str(run), "--out", str(blocker / "rep")])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and err.startswith("raynas: error: ")
    assert str(blocker / "rep") in err


def test_unwritable_default_destination_suggests_out(tmp_path, capsys):
    run = make_run(tmp_path)
    (run / "report").write_text("a file where the report dir would go")
    rc = main(["report", str(run)])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and str(run / "report") in err and "--out" in err


def test_unwritable_png_is_a_typed_error(tmp_path, capsys):
    run = make_run(tmp_path)
    dest = tmp_path / "rep"
    (dest / "metrics_vs_accuracy.png").mkdir(parents=True)  # a directory where the PNG goes
    rc = main(["report", str(run), "--truth", str(tmp_path / "truth.parquet"), "--out", str(dest)])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "metrics_vs_accuracy.png" in err


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root ignores file permissions")
def test_read_only_run(tmp_path, capsys):
    run = make_run(tmp_path)
    os.chmod(run, 0o555)
    try:
        assert main(["report", str(run)]) == 2
        assert "--out" in capsys.readouterr().err
        assert main(["report", str(run), "--out", str(tmp_path / "rep")]) == 0
    finally:
        os.chmod(run, 0o755)


def _report_text(run: Path, tmp_path: Path) -> str:
    assert main(["report", str(run), "--truth", str(tmp_path / "truth.parquet"), "--out", str(tmp_path / "rep")]) == 0
    return (tmp_path / "rep" / "report.md").read_text()


def test_report_states_config_missing_and_corrupt_shards(tmp_path, capsys):
    run = make_run(tmp_path)
    (run / "config.json").unlink()
    for sid in (1, 2):
        (run / "scores" / f"shard-00000{sid}.parquet").write_bytes(b"garbage")
    md = _report_text(run, tmp_path)
    assert "config.json missing" in md
    assert "corrupt shard shard-000001.parquet" in md and "corrupt shard shard-000002.parquet" in md
    assert "archs 4 of ? planned" in md
    # space, data and seed come from the stored rows instead of '?'
    assert "space `nb201`" in md and "data `digits:seed=0`" in md and "seed 0" in md
    assert "space `?`" not in md


def test_report_states_missing_and_failed_shards_against_plan(tmp_path, capsys):
    run = make_run(tmp_path)
    store = open_run(run)  # planned as the report plans it
    (run / "scores" / "shard-000003.parquet").unlink()
    store.write_shard(1, results_to_table("nb201", 2, "arch2", 0, "d", metric_results(
        {"params": 2.0, "snip": None}, {"snip": "error"}), "h"))
    md = _report_text(run, tmp_path)
    assert "archs 5 of 8 planned" in md
    assert "1 of 4 planned shards missing (3)" in md
    assert "failed rows (error/oom) in shard 1" in md
    assert store.completeness().summary() in md


def test_complete_run_says_complete(tmp_path, capsys):
    run = make_run(tmp_path)
    md = _report_text(run, tmp_path)
    assert "complete: archs 8 of 8 planned" in md
    assert "missing" not in md and "corrupt" not in md


def test_unreadable_config_is_stated_not_fatal(tmp_path, capsys):
    run = make_run(tmp_path)
    (run / "config.json").write_text("{not json")
    md = _report_text(run, tmp_path)
    assert "config unusable" in md and "not valid JSON" in md and "archs 8 of ? planned" in md
    assert "space `nb201`" in md  # taken from the rows


def test_report_trace_axis_says_what_the_query_value_is(tmp_path, monkeypatch, nb201_table_path):
    # a real RoBoT search with the NB201 table oracle; the report's trace gets the oracle's query label
    import raynas.report.plots as plots
    from raynas.search.runner import run_robot_search

    run = make_run(tmp_path)
    run_robot_search({"scores": str(run), "out": str(run / "robot"), "metrics": "params", "budget": 2, "seed": 0})
    seen: list[str] = []
    real = plots.search_trace_figure

    def spy(*args, **kwargs):
        fig = real(*args, **kwargs)
        seen.append(fig.axes[0].get_ylabel().replace("\n", " "))  # wrapped to the panel
        return fig

    monkeypatch.setattr(plots, "search_trace_figure", spy)
    write_report(run)
    assert seen == ["query value: 12-epoch validation accuracy (%) on CIFAR-10"]
