"""Issue 13, the in-process parts (no Ray): run outcome, sample larger than the space, per-arch progress and
interrupts, cost estimate, what a forced resume may change, stored config as the resume default, durations and
the worker cap."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from raynas.errors import ConfigError, StoreError
from raynas.parallel import ScoreConfig, run_scoring_from_dict
from raynas.parallel.shards import select_ids
from raynas.spaces import create_space
from raynas.store import ScoreStore
from raynas.testing import TINY_METRICS, assert_complete, score_rows, tiny_score_config


def _ids(cfg: dict) -> list[int]:
    return select_ids(create_space("nb201"), ScoreConfig.from_dict(cfg))


def _break_engine(monkeypatch: pytest.MonkeyPatch, which: set[int] | None = None) -> list[int]:
    """compute_metrics raises for the archs counted in ``which`` (1-based call numbers; None: every call)."""
    import raynas.metrics.engine as engine

    real = engine.compute_metrics
    calls: list[int] = []

    def broken(factory, batch, names, **kw):  # type: ignore[no-untyped-def]
        calls.append(len(calls) + 1)
        if which is None or calls[-1] in which:
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        return real(factory, batch, names, **kw)

    monkeypatch.setattr(engine, "compute_metrics", broken)
    return calls


# --- (3) a run that stored nothing useful says so ---------------------------------------------------------


def test_run_with_only_error_rows_is_failed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _break_engine(monkeypatch)
    summary = run_scoring_from_dict(tiny_score_config(tmp_path, sample=3))
    assert summary["outcome"] == "failed"
    assert summary["rows"] == {"ok": 0, "nan": 0, "error": 9, "oom": 0, "not_applicable": 0}
    assert "no successful row" in summary["problem"] and "9 error" in summary["problem"]


def test_partial_failure_is_counted_in_the_summary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _break_engine(monkeypatch, which={2})
    summary = run_scoring_from_dict(tiny_score_config(tmp_path, sample=3))
    rows = summary["rows"]
    assert summary["outcome"] == "partial" and summary["failed_shards"] == []
    assert rows["error"] == 3 and rows["oom"] == 0 and rows["ok"] + rows["nan"] == 6
    assert "3 error and 0 oom rows (of 9)" in summary["problem"]


def test_clean_run_outcome_ok_and_resume_with_nothing_left_is_ok(tmp_path: Path) -> None:
    cfg = tiny_score_config(tmp_path, sample=2, metrics=["params"])
    first = run_scoring_from_dict(cfg)
    assert first["outcome"] == "ok" and first["rows"] == {"ok": 2, "nan": 0, "error": 0, "oom": 0, "not_applicable": 0}
    again = run_scoring_from_dict({**cfg, "resume": True})
    assert again["scored"] == 0 and again["outcome"] == "ok"


# --- (5) a sample larger than the space -----------------------------------------------------------------


class _Space:
    name = "fake"
    size = 100

    def sample_indices(self, n: int, seed: int) -> list[int]:
        return list(range(min(n, self.size)))


def test_sample_larger_than_the_space_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"sample=101 is more than the 100 archs of fake.*--all"):
        select_ids(_Space(), ScoreConfig(out="x", sample=101))
    assert select_ids(_Space(), ScoreConfig(out="x", sample=100)) == list(range(100))  # the whole space is fine


def test_sample_larger_than_nb201_refused_before_anything_is_stored(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="more than the 15625 archs of nb201"):
        run_scoring_from_dict(tiny_score_config(tmp_path / "r", sample=20000))
    assert not (tmp_path / "r" / "config.json").exists()


# --- (8) progress per arch, interrupts keep finished archs, cost estimate --------------------------------


def test_progress_counts_archs_inside_one_shard(tmp_path: Path) -> None:
    calls: list[tuple] = []
    run_scoring_from_dict(tiny_score_config(tmp_path, sample=4, shard_size=4),
                          progress_callback=lambda *a: calls.append(a))
    assert [c[:2] for c in calls] == [(0, 4), (1, 4), (2, 4), (3, 4), (4, 4)]


def test_interrupt_stores_the_finished_archs_and_resume_scores_the_rest(tmp_path: Path) -> None:
    reference = tmp_path / "ref"
    run_scoring_from_dict(tiny_score_config(reference, shard_size=6))
    cfg = tiny_score_config(tmp_path / "r", shard_size=6)  # one shard of six archs

    def interrupt(done: int, total: int, rate: Any, eta: Any) -> None:
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_scoring_from_dict(cfg, progress_callback=interrupt)
    ids = _ids(cfg)
    stored = score_rows(tmp_path / "r")
    assert sorted({r[0] for r in stored}) == sorted(ids)[:2]  # the two finished archs, every metric
    assert len(stored) == 2 * len(TINY_METRICS)
    summary = run_scoring_from_dict({"out": str(tmp_path / "r"), "resume": True})  # the stored config is the rest
    assert summary["already_done"] == 2 and summary["scored"] == 4
    assert_complete(tmp_path / "r", ids)
    assert score_rows(tmp_path / "r") == score_rows(reference)


def test_cost_estimate_after_the_first_arch(tmp_path: Path) -> None:
    seen: list[tuple[Any, list[int]]] = []
    progress: list[int] = []
    run_scoring_from_dict(tiny_score_config(tmp_path, sample=3),
                          progress_callback=lambda done, *a: progress.append(done),
                          estimate_callback=lambda est: seen.append((est, list(progress))))
    # the measured one, once (nb201's stored metric costs give another before the first arch: test_cost_estimate.py)
    ((est, progress_then),) = [(e, p) for e, p in seen if e.measured]
    assert progress_then == [0, 1]  # right after the first arch
    assert set(est.per_metric_s) == set(TINY_METRICS) and all(v >= 0 for v in est.per_metric_s.values())
    assert est.archs_left == 2 and est.workers == 1
    t = ScoreStore(tmp_path).read(["arch_index", "metric", "seconds"])
    first = _ids(tiny_score_config(tmp_path, sample=3))[0]  # shard 0 is scored first
    stored = {m: s for a, m, s in zip(*(t.column(c).to_pylist() for c in t.column_names)) if a == first}
    assert est.per_metric_s == stored  # the measured seconds of the first arch's rows
    assert est.s_per_arch == pytest.approx(sum(stored.values())) and est.s_per_arch > 0


def test_cost_estimate_text() -> None:
    from raynas.parallel.run import CostEstimate

    est = CostEstimate({"ntk_cond": 121.0, "ntk_trace": 121.0, "params": 0.002, "synflow": 66.0}, 19, 1)
    text = est.describe()
    assert text.startswith("estimated s/arch per metric: ntk_cond 121, ntk_trace 121, synflow 66, params 0.002")
    assert "total 308 s/arch" in text and "projected 1.63 h for the 19 archs left on 1 worker" in text
    assert CostEstimate({"a": 10.0}, 8, 4).projected_s == 20.0


# --- (10) force may add metrics, never change the sample ------------------------------------------------


def test_force_refuses_another_seed_and_keeps_the_stored_config(tmp_path: Path) -> None:
    cfg = tiny_score_config(tmp_path, sample=2, metrics=["params"])
    run_scoring_from_dict(cfg)
    before_cfg = (tmp_path / "config.json").read_text()
    before_rows = score_rows(tmp_path)
    with pytest.raises(ConfigError, match=r"seed: stored 0, given 1") as ei:
        run_scoring_from_dict({**cfg, "resume": True, "force": True, "seed": 1})
    assert "force may only add metrics" in str(ei.value)
    with pytest.raises(ConfigError, match=r"data: stored .*space_kwargs: stored"):
        run_scoring_from_dict({**cfg, "resume": True, "force": True, "data": "noise", "space_kwargs": {"C": 8}})
    with pytest.raises(ConfigError, match=r"sample: stored 2, given 3"):
        run_scoring_from_dict({**cfg, "resume": True, "force": True, "sample": 3})
    assert (tmp_path / "config.json").read_text() == before_cfg
    assert score_rows(tmp_path) == before_rows


def test_force_refuses_dropping_a_stored_metric(tmp_path: Path) -> None:
    cfg = tiny_score_config(tmp_path, sample=2, metrics=["params", "naswot"])
    run_scoring_from_dict(cfg)
    with pytest.raises(ConfigError, match=r"drops stored metric\(s\) \['naswot'\]"):
        run_scoring_from_dict({**cfg, "resume": True, "force": True, "metrics": ["params", "grad_norm"]})
    # adding metrics is what force is for
    summary = run_scoring_from_dict({**cfg, "resume": True, "force": True,
                                     "metrics": ["params", "naswot", "grad_norm"]})
    assert summary["scored"] == 2
    assert_complete(tmp_path, _ids(cfg), metrics=("params", "naswot", "grad_norm"))


def test_without_force_a_changed_seed_is_still_a_store_error(tmp_path: Path) -> None:
    cfg = tiny_score_config(tmp_path, sample=2, metrics=["params"])
    run_scoring_from_dict(cfg)
    with pytest.raises(StoreError, match="seed"):
        run_scoring_from_dict({**cfg, "resume": True, "seed": 1})


# --- (12) the stored config is the default of a resume ---------------------------------------------------


def test_resume_defaults_take_every_missing_key_from_the_stored_config(tmp_path: Path) -> None:
    from raynas.parallel.run import resume_defaults

    cfg = tiny_score_config(tmp_path, sample=3, shard_size=2, max_retries=1)
    run_scoring_from_dict(cfg)
    merged = resume_defaults({"out": str(tmp_path), "resume": True})
    assert ScoreConfig.from_dict(merged).identity() == ScoreConfig.from_dict(cfg).identity()
    assert merged["max_retries"] == 1 and merged["workers"] == 0 and merged["resume"] is True
    # explicit keys win; a given selection replaces the stored one; space options merge key by key
    over = resume_defaults({"out": str(tmp_path), "resume": True, "ids": [1, 2], "workers": 2,
                            "space_kwargs": {"C": 8}})
    assert over["ids"] == [1, 2] and "sample" not in over and over["workers"] == 2
    assert over["space_kwargs"] == {"C": 8, "N": 1}
    # not resuming: unchanged
    assert resume_defaults({"out": str(tmp_path), "sample": 1}) == {"out": str(tmp_path), "sample": 1}


def test_resume_of_a_directory_without_config_needs_a_selection(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="nothing to resume"):
        run_scoring_from_dict({"out": str(tmp_path / "empty"), "resume": True})


def test_resume_with_only_the_run_dir_completes_a_killed_run(tmp_path: Path) -> None:
    cfg = tiny_score_config(tmp_path, sample=4, shard_size=1)
    run_scoring_from_dict(cfg)
    store = ScoreStore(tmp_path)
    store.shard_files()[2].unlink()
    saved = json.loads((tmp_path / "config.json").read_text())
    summary = run_scoring_from_dict({"out": str(tmp_path), "resume": True})
    assert summary["scored"] == 1 and summary["already_done"] == 3
    assert_complete(tmp_path, _ids(cfg))
    assert json.loads((tmp_path / "config.json").read_text()) == saved


# --- (11) durations -------------------------------------------------------------------------------------


@pytest.mark.parametrize("s, text", [(0.01, "0.01 s"), (0.5, "0.5 s"), (4.0, "4 s"), (12.5, "12.5 s"),
                                     (900.0, "15 min"), (5400.0, "1.5 h")])
def test_format_seconds(s: float, text: str) -> None:
    from raynas.parallel.run import format_seconds

    assert format_seconds(s) == text


# --- (11) more workers than a local Ray can run ------------------------------------------------------------


@pytest.mark.parametrize("workers, cpus, gpus, res, want", [
    (100000, 1.0, 0.0, {"CPU": 2.0}, 2),
    (3, 1.0, 0.0, {"CPU": 16.0}, 3),
    (8, 4.0, 0.0, {"CPU": 2.0}, 1),  # never below one
    (8, 1.0, 0.5, {"CPU": 16.0, "GPU": 2.0}, 4),  # real GPUs cap too
    (8, 1.0, 0.5, {"CPU": 16.0}, 8),  # logical GPUs (none listed) do not
])
def test_cap_workers(workers: int, cpus: float, gpus: float, res: dict, want: int) -> None:
    from raynas.parallel.driver import _cap_workers

    cfg = ScoreConfig(out="x", sample=1, workers=workers, cpus_per_worker=cpus, gpus_per_worker=gpus)
    assert _cap_workers(cfg, res) == want


def test_cap_is_said(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    from raynas.parallel.driver import _cap_workers

    caplog.set_level(logging.WARNING, logger="raynas.parallel.driver")
    assert _cap_workers(ScoreConfig(out="x", sample=1, workers=100000, gpus_per_worker=0.5),
                        {"CPU": 2.0, "GPU": 4.0}) == 2
    assert ("workers=100000 is more than this Ray cluster can run at once (2 CPUs at 1 per worker, 4 GPUs at 0.5 "
            "per worker): starting 2") in caplog.text


def test_local_ray_is_started_for_the_workers_the_machine_can_run(monkeypatch: pytest.MonkeyPatch) -> None:
    from raynas.parallel import driver

    calls: list[dict] = []
    monkeypatch.setattr(driver.ray, "is_initialized", lambda: False)
    monkeypatch.setattr(driver.ray, "init", lambda **kw: calls.append(kw))
    monkeypatch.setattr(driver, "_machine_resources", lambda cfg: {"CPU": 2.0})
    assert driver._init_ray(ScoreConfig(out="x", sample=1, workers=100000)) is True
    (kw,) = calls
    assert kw["num_cpus"] == 2 and kw["num_gpus"] is None


def test_a_failed_resume_says_what_the_run_holds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 29 item 9: a resume whose rows all fail said "no successful row" while the run held ok rows."""
    _break_engine(monkeypatch, which={2})
    first = run_scoring_from_dict(tiny_score_config(tmp_path, sample=3))
    assert first["outcome"] == "partial" and first["rows"]["ok"] == 6
    monkeypatch.undo()
    _break_engine(monkeypatch)  # the failed arch fails again on resume
    again = run_scoring_from_dict(tiny_score_config(tmp_path, sample=3, resume=True))
    assert again["outcome"] == "failed"
    assert again["problem"] == ("this resume stored no successful row: all 3 rows it scored are 3 error; "
                                "the run holds 6 ok rows in all")
