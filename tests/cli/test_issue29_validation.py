"""Issue 29 (2, 4c): every input is checked before any work, a run that never started leaves its directory as it
found it, and an interrupted command says truly what it stored."""

from __future__ import annotations

from pathlib import Path

import pytest

from raynas.cli.main import main

TINY = ["--space", "nb201", "--C", "4", "--N", "1", "--batch-size", "8", "--image-size", "8", "--no-progress"]


@pytest.fixture
def no_stages(monkeypatch: pytest.MonkeyPatch) -> list:
    """The pipeline's stages replaced by recorders (scoring, RoBoT, report)."""
    import raynas.parallel
    import raynas.report
    import raynas.search.runner as runner

    seen: list = []
    monkeypatch.setattr(raynas.parallel, "run_scoring", lambda cfg, progress_callback=None: seen.append(cfg) or {})
    monkeypatch.setattr(runner, "run_robot_search", lambda cfg, progress_callback=None: seen.append(cfg) or {
        "arch_index": 3, "arch": "a", "value": 1.0, "queries": 1, "cost": 1.0})
    monkeypatch.setattr(raynas.report, "write_report", lambda out: [])
    return seen


@pytest.mark.parametrize("setting, says", [
    ("search.budget=0", "budget"),
    ("search.bo_iters=-1", "bo_iters"),
    ("oracle.epochs=0", "epochs"),
])
def test_pipeline_refuses_a_bad_search_setting_before_scoring(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                               no_stages: list, setting: str, says: str) -> None:
    rc = main(["search", "pipeline", "--out", str(tmp_path / "p"), "--set", setting, "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("raynas: error: ") and says in err, err
    assert no_stages == [] and not (tmp_path / "p").exists()  # nothing scored, nothing written


def test_pipeline_all_metrics_are_the_names_the_run_stores(tmp_path: Path, no_stages: list) -> None:
    from raynas.metrics import resolve_metric_names
    from raynas.search.runner import searched_metrics

    assert main(["search", "pipeline", "--out", str(tmp_path / "p"), "--set", "scoring.metrics=[all]",
                 "--no-progress"]) == 0
    score_cfg, robot_cfg = no_stages
    assert score_cfg.metrics == ("all",)
    assert robot_cfg.metrics == searched_metrics(resolve_metric_names("all")) and "all" not in robot_cfg.metrics


def test_score_on_a_cluster_that_cannot_be_reached_leaves_no_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                    capsys: pytest.CaptureFixture) -> None:
    import ray

    def no_cluster(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise ConnectionError("Could not find any running Ray instance. Please specify the one to connect to.")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", no_cluster)
    out = tmp_path / "run"
    argv = ["score", *TINY, "--metrics", "params", "--sample", "2", "--workers", "1", "--address", "auto",
            "--out", str(out)]
    for _ in range(2):  # the same command again: the same clear error, not "already holds a scoring run"
        rc = main(argv)
        err = capsys.readouterr().err
        assert rc == 2 and "cannot connect to the Ray cluster at 'auto': Could not find any running Ray" in err
        assert "already holds" not in err and not out.exists()
    existing = tmp_path / "mine"
    existing.mkdir()
    (existing / "notes.txt").write_text("kept")
    assert main([*argv[:-1], str(existing)]) == 2
    assert sorted(p.name for p in existing.iterdir()) == ["notes.txt"]  # what existed before stays, nothing else


def _interrupt_engine(monkeypatch: pytest.MonkeyPatch, after: int) -> None:
    """The metric engine raises KeyboardInterrupt (Ctrl-C) on its call number ``after + 1``."""
    import raynas.metrics.engine as engine

    real, calls = engine.compute_metrics, []

    def interrupted(*args, **kw):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) > after:
            raise KeyboardInterrupt
        return real(*args, **kw)

    monkeypatch.setattr(engine, "compute_metrics", interrupted)


def test_score_interrupted_before_any_arch_says_nothing_was_stored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "run"
    _interrupt_engine(monkeypatch, after=0)
    argv = ["score", *TINY, "--workers", "0", "--metrics", "params", "--sample", "2", "--shard-size", "1",
            "--out", str(out)]
    assert main(argv) == 130
    err = capsys.readouterr().err
    assert f"raynas: interrupted; nothing was stored in {out} (re-run the same command to start again)" in err
    assert not out.exists()
    monkeypatch.undo()
    assert main(argv) == 0  # the same command starts it, no --resume needed


def test_score_interrupted_after_a_shard_says_what_it_keeps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "run"
    _interrupt_engine(monkeypatch, after=1)
    assert main(["score", *TINY, "--workers", "0", "--metrics", "params", "--sample", "3", "--shard-size", "1",
                 "--out", str(out)]) == 130
    err = capsys.readouterr().err
    assert f"raynas: interrupted; {out} keeps 1 score shard file (re-run with --resume to continue)" in err


def test_tenas_interrupted_says_nothing_was_stored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture) -> None:
    import raynas.pruning.run as tenas_run

    def interrupted(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise KeyboardInterrupt

    monkeypatch.setattr(tenas_run, "tenas_prune", interrupted)
    out = tmp_path / "tenas"
    assert main(["search", "tenas", "--out", str(out), "--batch-size", "4", "--input-size", "8",
                 "--no-progress"]) == 130
    err = capsys.readouterr().err
    assert f"raynas: interrupted; nothing was stored in {out} (re-run the same command to start again)" in err
    assert "stored results are kept" not in err and not out.exists()
