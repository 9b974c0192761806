"""CLI behaviour: exit codes, one-line errors, nothing stored lost on bad input."""

from __future__ import annotations


import pyarrow.parquet as pq
import pytest

from raynas.cli.main import main
from raynas.cli.search_cmd import parse_overrides
from raynas.errors import ConfigError

TINY = ["--space", "nb201", "--C", "4", "--N", "1", "--batch-size", "8", "--workers", "0", "--no-progress"]


def test_list_metrics_and_spaces(capsys):
    assert main(["list", "metrics"]) == 0
    out = capsys.readouterr().out
    for name in ("synflow", "naswot", "ntk_cond", "tenas_ntk_cond", "linear_regions", "das"):
        assert name in out
    assert main(["list", "spaces"]) == 0
    assert "nb201            size=15625" in capsys.readouterr().out


def test_unknown_metric_exit_2_with_close_match(tmp_path, capsys):
    rc = main(["score", *TINY, "--metrics", "synflw", "--sample", "2", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.count("\n") == 1 and "unknown metric 'synflw'" in err and "did you mean 'synflow'" in err


def test_unknown_space_exit_2(tmp_path, capsys):
    rc = main(["score", "--space", "nb210", "--metrics", "params", "--sample", "2", "--workers", "0",
               "--no-progress", "--out", str(tmp_path / "r")])
    assert rc == 2 and "did you mean 'nb201'" in capsys.readouterr().err


def test_malformed_ids_exit_2(tmp_path, capsys):
    rc = main(["score", *TINY, "--metrics", "params", "--ids", "1,x", "--out", str(tmp_path / "r")])
    assert rc == 2 and "--ids" in capsys.readouterr().err


def test_argparse_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as ei:
        main(["score", "--nope"])
    assert ei.value.code == 2


def test_score_then_rescore_refused_without_resume_keeps_data(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["score", *TINY, "--metrics", "params,synflow", "--ids", "0,6111", "--out", str(out)]) == 0
    files = sorted((out / "scores").glob("shard-*.parquet"))
    assert files
    before = pq.read_table(files[0])
    assert sorted(before.column("metric").to_pylist()) == ["params", "params", "synflow", "synflow"]
    rc = main(["score", *TINY, "--metrics", "params", "--ids", "0", "--out", str(out)])
    assert rc == 2 and "--resume" in capsys.readouterr().err
    assert pq.read_table(files[0]).equals(before)
    # a resume with a different metric set is a different run: refused, data kept
    rc = main(["score", *TINY, "--metrics", "params", "--ids", "0,6111", "--resume", "--out", str(out)])
    assert rc == 2 and pq.read_table(files[0]).equals(before)


def test_unwritable_out_exit_2(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    rc = main(["score", *TINY, "--metrics", "params", "--ids", "0", "--out", str(blocker / "r")])
    assert rc == 2 and str(blocker) in capsys.readouterr().err


def test_show_and_report_on_score_run(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["score", *TINY, "--metrics", "params,synflow,naswot", "--sample", "6", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["show", str(out)]) == 0
    shown = capsys.readouterr().out
    assert "archs scored: 6" in shown
    assert main(["report", str(out)]) == 0
    written = capsys.readouterr().out.split()
    assert any(p.endswith("report.md") for p in written)
    md = (out / "report" / "report.md").read_text()
    assert "| params |" in md


def test_report_on_missing_dir_exit_2(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nope")]) == 2


def test_parse_overrides():
    assert parse_overrides(["a.b=1", "c=x", "d=[1, 2]"]) == {"a": {"b": 1}, "c": "x", "d": [1, 2]}
    with pytest.raises(ConfigError):
        parse_overrides(["novalue"])


def test_bad_space_option_refused_up_front_and_leaves_no_config(tmp_path, capsys):
    out = tmp_path / "r"
    rc = main(["score", "--space", "darts_cifar", "--N", "2", "--ids", "1", "--workers", "0", "--no-progress",
               "--metrics", "params", "--out", str(out)])
    assert rc == 2 and "unknown option(s) ['N']" in capsys.readouterr().err
    assert not (out / "config.json").exists()
    rc = main(["score", *TINY, "--metrics", "params", "--ids", "99999", "--out", str(out)])
    assert rc == 2 and not (out / "config.json").exists()
    assert main(["score", *TINY, "--metrics", "params", "--ids", "5", "--out", str(out)]) == 0


def test_pipeline_override_errors_exit_2(tmp_path, capsys):
    assert main(["search", "pipeline", "--out", str(tmp_path / "p"), "--set", "scoring=5", "--no-progress"]) == 2
    assert "scoring must be a mapping" in capsys.readouterr().err
    assert main(["search", "pipeline", "--out", str(tmp_path / "p"), "--set", "seed=1", "--set", "seed.x=2"]) == 2


def test_search_and_report_bad_files_exit_2(tmp_path, capsys):
    scores = tmp_path / "s"
    assert main(["score", *TINY, "--metrics", "params,synflow", "--ids", "0,1,2,6111", "--out", str(scores)]) == 0
    out = tmp_path / "robot"
    out.mkdir()
    (out / "search.json").write_text("{")
    rc = main(["search", "robot", "--scores", str(scores), "--metrics", "params,synflow", "--budget", "2",
               "--out", str(out), "--no-progress"])
    assert rc == 2 and "corrupt" in capsys.readouterr().err
    bad_truth = tmp_path / "truth.parquet"
    bad_truth.write_text("not parquet")
    assert main(["report", str(scores), "--truth", str(bad_truth)]) == 2
    assert "cannot read NB201 ground truth" in capsys.readouterr().err


def test_table_oracle_refuses_other_spaces(tmp_path, capsys):
    scores = tmp_path / "d"
    assert main(["score", "--space", "darts_cifar", "--C", "2", "--batch-size", "4", "--image-size", "8",
                 "--workers", "0", "--no-progress", "--metrics", "params", "--ids", "1,2", "--out", str(scores)]) == 0
    rc = main(["search", "robot", "--scores", str(scores), "--metrics", "params", "--budget", "1",
               "--out", str(tmp_path / "r"), "--no-progress"])
    assert rc == 2 and "cannot answer for space 'darts_cifar'" in capsys.readouterr().err
