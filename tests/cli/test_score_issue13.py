"""``raynas score`` behaviour from issue 13 (in-process runs, no Ray): exit codes of failed runs, a sample larger
than the space, the cost estimate, forced resumes, ``--resume RUN`` with the stored config, empty ``--ids``,
user metric modules."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from raynas.cli.main import main

TINY = ["--space", "nb201", "--C", "4", "--N", "1", "--batch-size", "8", "--image-size", "8", "--workers", "0",
        "--no-progress"]


def _break_engine(monkeypatch: pytest.MonkeyPatch, which: set[int] | None = None) -> None:
    import raynas.metrics.engine as engine

    real = engine.compute_metrics
    calls: list[int] = []

    def broken(factory, batch, names, **kw):  # type: ignore[no-untyped-def]
        calls.append(1)
        if which is None or len(calls) in which:
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        return real(factory, batch, names, **kw)

    monkeypatch.setattr(engine, "compute_metrics", broken)


def test_run_storing_only_errors_exits_1_and_says_so(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    _break_engine(monkeypatch)
    rc = main(["score", *TINY, "--metrics", "params,naswot", "--sample", "2", "--out", str(tmp_path / "r")])
    out, err = capsys.readouterr()
    assert rc == 1
    assert "raynas: failure: no successful row: all 4 rows scored are 4 error" in err
    assert "outcome: failed" in out and "rows: {'ok': 0, 'nan': 0, 'error': 4, 'oom': 0, 'not_applicable': 0}" in out


def test_partial_failure_exits_0_with_counts(tmp_path: Path, capsys: pytest.CaptureFixture,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    _break_engine(monkeypatch, which={1})
    rc = main(["score", *TINY, "--metrics", "params", "--sample", "3", "--out", str(tmp_path / "r")])
    out, err = capsys.readouterr()
    assert rc == 0
    assert "outcome: partial" in out and "rows: {'ok': 2, 'nan': 0, 'error': 1, 'oom': 0, 'not_applicable': 0}" in out
    assert "raynas: warning: 1 error and 0 oom rows (of 3)" in err


@pytest.mark.timeout(120)  # before the fix this scored the whole space
def test_sample_larger_than_the_space_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    rc = main(["score", *TINY, "--metrics", "params", "--sample", "20000", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert rc == 2 and "sample=20000 is more than the 15625 archs of nb201" in err
    assert not (tmp_path / "r").exists()


def test_cost_estimate_is_printed_before_the_rest_of_the_run(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    rc = main(["score", *TINY, "--metrics", "params,naswot", "--sample", "3", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert rc == 0
    (line,) = [ln for ln in err.splitlines() if ln.startswith("estimated s/arch per metric: ")]
    assert "naswot" in line and "params" in line and "for the 2 archs left on 1 worker" in line


def test_forced_resume_with_another_seed_exits_2_and_keeps_the_run(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "r"
    assert main(["score", *TINY, "--metrics", "params", "--sample", "2", "--out", str(out)]) == 0
    saved = (out / "config.json").read_text()
    files = sorted((out / "scores").glob("shard-*.parquet"))
    capsys.readouterr()
    rc = main(["score", *TINY, "--metrics", "params", "--sample", "2", "--seed", "1", "--resume", "--force",
               "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and "seed: stored 0, given 1" in err and "force may only add metrics" in err
    assert (out / "config.json").read_text() == saved
    assert sorted((out / "scores").glob("shard-*.parquet")) == files


def test_resume_run_takes_the_stored_config(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "r"
    assert main(["score", *TINY, "--metrics", "params,naswot", "--sample", "3", "--shard-size", "1",
                 "--out", str(out)]) == 0
    files = sorted((out / "scores").glob("shard-*.parquet"))
    before = pq.read_table(files[1]).sort_by("metric").select(["arch_index", "metric", "value"])
    files[1].unlink()  # lost in a crash
    capsys.readouterr()
    assert main(["score", "--resume", str(out), "--no-progress"]) == 0  # no other flag
    printed = capsys.readouterr().out
    assert "scored: 1" in printed and "already_done: 2" in printed
    after = pq.read_table(files[1]).sort_by("metric").select(["arch_index", "metric", "value"])
    assert after.equals(before)  # same space options, batch, seed: the same rows
    # explicit flags override volatile keys and are checked against identity keys
    assert main(["score", "--resume", str(out), "--no-progress", "--max-retries", "0"]) == 0
    capsys.readouterr()
    assert main(["score", "--resume", str(out), "--no-progress", "--seed", "3"]) == 2
    assert "seed: stored 0, given 3" in capsys.readouterr().err
    assert main(["score", "--resume", str(out), "--out", str(tmp_path / "other")]) == 2
    assert "two run directories" in capsys.readouterr().err


def test_resume_without_a_stored_run_or_out_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["score", "--resume", str(tmp_path / "none"), "--no-progress"]) == 2
    assert "nothing to resume" in capsys.readouterr().err
    assert main(["score", "--sample", "2", "--no-progress"]) == 2
    assert "--out is required" in capsys.readouterr().err


@pytest.mark.parametrize("ids", ["--ids=", "--ids=,", "--ids= , "])
def test_empty_ids_exit_2_with_a_clear_message(tmp_path: Path, capsys: pytest.CaptureFixture, ids: str) -> None:
    rc = main(["score", *TINY, "--metrics", "params", ids, "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert rc == 2 and "--ids got no index" in err and "choose exactly one" not in err


def test_shard_timeout_none_means_no_deadline(tmp_path: Path) -> None:
    from raynas.cli.main import build_parser
    from raynas.cli.score_cmd import config_from_args

    args = build_parser().parse_args(["score", "--sample", "2", "--out", "x", "--shard-timeout", "none"])
    assert config_from_args(args) == {"sample": 2, "out": "x", "shard_timeout_s": None}
    with pytest.raises(SystemExit):
        build_parser().parse_args(["score", "--sample", "2", "--out", "x", "--shard-timeout", "0"])


def test_metric_module_registers_a_user_metric(tmp_path: Path, capsys: pytest.CaptureFixture,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from raynas.metrics.registry import METRICS

    name = "issue13_cli_user_metric"
    (tmp_path / "issue13_cli_metrics.py").write_text(
        "from raynas.metrics.registry import register_metric\n\n"
        f"@register_metric({name!r}, needs_data=False, needs_labels=False)\n"
        "def twice_params(model, batch):\n"
        "    return 2.0 * sum(p.numel() for p in model.parameters())\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(METRICS, "_entries", dict(METRICS._entries))  # the registration ends with the test
    monkeypatch.delitem(sys.modules, "issue13_cli_metrics", raising=False)
    out = tmp_path / "r"
    rc = main(["score", *TINY, "--metric-module", "issue13_cli_metrics", "--metrics", f"params,{name}",
               "--ids", "0,6111", "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    t = pq.read_table(sorted((out / "scores").glob("shard-*.parquet"))[0])
    values = dict(zip(t.column("metric").to_pylist(), t.column("value").to_pylist()))
    assert values[name] == 2 * values["params"]
    assert json.loads((out / "config.json").read_text())["volatile"]["metric_modules"] == ["issue13_cli_metrics"]
    capsys.readouterr()
    rc = main(["score", *TINY, "--metric-module", "no_such_module_13", "--metrics", "params", "--ids", "0",
               "--out", str(tmp_path / "r2")])
    assert rc == 2 and "metric module 'no_such_module_13' cannot be imported" in capsys.readouterr().err
