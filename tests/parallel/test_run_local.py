"""The in-process pipeline (``workers=0``): store rules, resume, corrupt shards, config mismatch (no Ray)."""

from __future__ import annotations

from pathlib import Path

import pytest

from raynas.errors import StoreError
from raynas.parallel import ScoreConfig, run_scoring, run_scoring_from_dict
from raynas.parallel.shards import select_ids
from raynas.spaces import create_space
from raynas.store import ScoreStore
from raynas.testing import TINY_METRICS, assert_complete, score_rows, tiny_score_config


def _ids(cfg: dict) -> list[int]:
    return select_ids(create_space("nb201"), ScoreConfig.from_dict(cfg))


def test_fresh_run_writes_all_shards_and_reports_progress(tmp_path: Path) -> None:
    cfg = tiny_score_config(tmp_path / "r", shard_size=4)
    calls: list[tuple] = []
    summary = run_scoring_from_dict(cfg, progress_callback=lambda *a: calls.append(a))
    assert summary["archs"] == summary["scored"] == 6 and summary["shards_written"] == 2
    assert summary["error_rows"] == 0 and summary["failed_shards"] == [] and summary["retries"] == 0
    assert [c[:2] for c in calls] == [(k, 6) for k in range(7)]  # one call per arch, not per shard (issue 13)
    assert calls[0][2:] == (None, None) and calls[-1][3] == 0.0 and calls[-1][2] > 0
    assert sorted(ScoreStore(tmp_path / "r").shard_ids()) == [0, 1]
    assert_complete(tmp_path / "r", _ids(cfg))
    rows = score_rows(tmp_path / "r")
    assert {r[4] for r in rows} <= {"ok", "nan"}  # nan: e.g. naswot of a cell with no path (all codes equal)
    assert rows[0][0] == 640  # the first arch of the seed-0 sample; its params pinned as a regression value
    assert dict(((a, m), v) for a, m, _s, v, _st in rows)[(640, "params")] == 4894.0


def test_refuses_dir_with_data_without_resume(tmp_path: Path) -> None:
    cfg = tiny_score_config(tmp_path, sample=2)
    run_scoring_from_dict(cfg)
    with pytest.raises(StoreError, match="--resume"):
        run_scoring_from_dict(cfg)
    again = run_scoring_from_dict({**cfg, "resume": True})
    assert again["scored"] == 0 and again["already_done"] == 2 and again["shards_written"] == 0


def test_resume_rescores_missing_and_corrupt_shards_only(tmp_path: Path) -> None:
    cfg = tiny_score_config(tmp_path)
    run_scoring_from_dict(cfg)
    reference = score_rows(tmp_path)
    store = ScoreStore(tmp_path)
    files = store.shard_files()
    good_mtime = files[0].stat().st_mtime_ns
    files[1].write_bytes(files[1].read_bytes()[:100])  # truncated by a crash
    files[2].unlink()  # lost
    (files[2].parent / ".shard-000002.parquet.abc.tmp").write_bytes(b"partial")  # an interrupted write
    summary = run_scoring_from_dict({**cfg, "resume": True, "workers": 0})
    assert summary["corrupt_shards"] == ["shard-000001.parquet"]
    assert summary["scored"] == 2 and summary["already_done"] == 4
    assert (tmp_path / "scores" / "corrupt" / "shard-000001.parquet").exists()
    assert files[0].stat().st_mtime_ns == good_mtime  # good shards are never rewritten
    assert score_rows(tmp_path) == reference  # same seeds -> identical values, row for row


def test_resume_with_other_identity_needs_force(tmp_path: Path) -> None:
    cfg = tiny_score_config(tmp_path, sample=2, metrics=["params"])
    run_scoring_from_dict(cfg)
    with pytest.raises(StoreError, match="seed"):
        run_scoring_from_dict({**cfg, "resume": True, "seed": 1})
    # volatile keys may change freely
    assert run_scoring_from_dict({**cfg, "resume": True, "max_retries": 0, "cpus_per_worker": 2.0})["scored"] == 0
    # force with an added metric scores only the new (arch, metric) pairs, in new shard files
    summary = run_scoring(ScoreConfig.from_dict({**cfg, "resume": True, "force": True,
                                                 "metrics": ["params", "naswot"]}))
    assert summary["scored"] == 2 and summary["shards_written"] == 2
    assert sorted(ScoreStore(tmp_path).shard_ids()) == [0, 1, 2, 3]
    assert_complete(tmp_path, _ids(cfg), metrics=("params", "naswot"))
    assert ScoreStore(tmp_path).load_config()["identity"]["metrics"] == ["params", "naswot"]


def test_tiny_metrics_constant() -> None:
    assert TINY_METRICS == ("params", "grad_norm", "naswot")


def test_resume_scores_failed_rows_again_without_duplicates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A transient failure (here: the whole engine raising for one arch) is recorded as error rows; --resume
    scores exactly those again, replaces them, and every key stays stored once."""
    import raynas.metrics.engine as engine

    cfg = tiny_score_config(tmp_path, shard_size=3)
    ids = _ids(cfg)
    victim = ids[1]
    real = engine.compute_metrics
    calls: list[int] = []

    def flaky(factory, batch, names, **kw):  # type: ignore[no-untyped-def]
        model = factory()
        calls.append(sum(p.numel() for p in model.parameters()))
        if len(calls) == 2:  # the second arch of the run
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        return real(factory, batch, names, **kw)

    monkeypatch.setattr(engine, "compute_metrics", flaky)
    first = run_scoring_from_dict(cfg)
    assert first["error_rows"] == len(TINY_METRICS)
    failed = [r for r in score_rows(tmp_path) if r[4] == "error"]
    assert {r[0] for r in failed} == {victim}
    monkeypatch.setattr(engine, "compute_metrics", real)
    again = run_scoring_from_dict({**cfg, "resume": True})
    assert again["scored"] == 1
    rows = score_rows(tmp_path)
    assert_complete(tmp_path, ids)
    assert all(r[4] in ("ok", "nan") for r in rows if r[0] == victim)
    # a third resume has nothing left to do
    assert run_scoring_from_dict({**cfg, "resume": True})["scored"] == 0
