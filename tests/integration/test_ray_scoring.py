"""The Ray driver on a real local Ray: GPU-pinned actors, same rows as the in-process loop, killed actors.

Nothing here assumes how fast the machine is (a busy 2-core box starts an actor in tens of seconds): actors are
killed while they provably hold a shard (:func:`raynas_tests.actors.hanging_actor_factory` makes that shard hang
until then), a shard passes its deadline because it hangs, and a deadline that normal shards must meet is a
multiple of a step measured on this machine, now."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Iterator

import pytest
import torch

ray = pytest.importorskip("ray")

from raynas.parallel import ScoreConfig, run_scoring_from_dict  # noqa: E402
from raynas.parallel import driver as driver_mod  # noqa: E402
from raynas.parallel.shards import select_ids  # noqa: E402
from raynas.spaces import create_space  # noqa: E402
from raynas.testing import assert_complete, score_rows, tiny_score_config  # noqa: E402
from raynas_tests.actors import hang_once_actor_factory, hanging_actor_factory  # noqa: E402
from raynas_tests.rows import assert_same_rows  # noqa: E402
from raynas_tests.waits import TEST_LIMIT_S, WAIT_S  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.timeout(TEST_LIMIT_S)]


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """2 CPUs and 2 *logical* GPUs (none physical here): actors with num_gpus=1 get distinct ids."""
    if ray.is_initialized():
        ray.shutdown()
    ray.init(num_cpus=2, num_gpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(autouse=True)
def slow_actors_are_awaited(monkeypatch: pytest.MonkeyPatch) -> None:
    """The driver lists an actor that became ready only after the work ran out if it answers within
    ``PING_GRACE_S`` (10 s, met on an idle machine only): on a busy machine one actor may start that much later
    than the other, and these tests count actors, so the bound is lifted to a wait only a broken run reaches (it
    still ends as soon as the actor answers). A restarting actor is awaited by time in the driver itself
    (``RESTART_TIMEOUT_S``, 300 s)."""
    monkeypatch.setattr(driver_mod, "PING_GRACE_S", WAIT_S)


def _ids(cfg: dict) -> list[int]:
    return select_ids(create_space("nb201"), ScoreConfig.from_dict(cfg))


def _record_actors(monkeypatch: pytest.MonkeyPatch, create_actor: Any = None) -> list[Any]:
    """Keep the handle of every actor the driver creates (with ``create_actor``, default the real one)."""
    handles: list[Any] = []
    real = create_actor or driver_mod.create_actor

    def create(*a: Any, **kw: Any) -> Any:
        handles.append(real(*a, **kw))
        return handles[-1]

    monkeypatch.setattr(driver_mod, "create_actor", create)
    return handles


def _hold_first_shards(tmp_path: Path, n: int) -> tuple[list[Path], Any]:
    """Markers and a ``create_actor`` whose actors hang in the first ``n`` shards after streaming one arch each:
    once ``n`` archs have arrived, each of ``n`` actors is known to hold an unfinished shard."""
    markers = [tmp_path / f"held-{k}" for k in range(n)]
    return markers, hanging_actor_factory([str(m) for m in markers], after_archs=1)


def test_gpu_pinned_actors_match_the_local_loop(local_ray: None, tmp_path: Path) -> None:
    local = tiny_score_config(tmp_path / "local")
    run_scoring_from_dict(local)
    cfg = tiny_score_config(tmp_path / "ray", workers=2, gpus_per_worker=1.0)
    summary = run_scoring_from_dict(cfg)
    actors = summary["actors"]
    assert len(actors) == 2
    assert sorted(g for a in actors for g in a["gpu_ids"]) == ["0", "1"]  # one distinct GPU each
    if not torch.cuda.is_available():
        assert {a["device"] for a in actors} == {"cpu"}  # logical GPUs: torch sees no CUDA
    assert summary["scored"] == 6 and summary["retries"] == 0
    assert_complete(tmp_path / "ray", _ids(cfg))
    assert_same_rows(score_rows(tmp_path / "ray"), score_rows(tmp_path / "local"))  # identical values


def test_killed_actors_are_retried_and_nothing_is_lost(
    local_ray: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    markers, create = _hold_first_shards(tmp_path, 2)
    handles = _record_actors(monkeypatch, create)
    kills = []

    def progress(done: int, total: int, rate: Any, eta: Any) -> None:
        # both actors hold a half-scored shard: kill one for good, let Ray restart the other
        if done == 2 and not kills:
            ray.kill(handles[0], no_restart=True)
            ray.kill(handles[1], no_restart=False)
            kills.append(done)

    run = tmp_path / "run"
    cfg = tiny_score_config(run, workers=2, max_retries=3, shard_size=2)  # 3 shards of 2 archs
    summary = run_scoring_from_dict(cfg, progress_callback=progress)
    assert kills == [2] and all(m.exists() for m in markers)
    # both held shards failed once and were finished elsewhere (their scored arch kept, the other rescored)
    assert summary["retries"] >= 2 and summary["failed_shards"] == [] and summary["error_rows"] == 0
    assert len(handles) >= 3  # the permanently killed actor was replaced
    assert_complete(run, _ids(cfg))


def test_shard_given_up_after_max_retries_becomes_error_rows(
    local_ray: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    markers, create = _hold_first_shards(tmp_path, 2)
    handles = _record_actors(monkeypatch, create)
    kills = []

    def progress(done: int, total: int, rate: Any, eta: Any) -> None:
        if done == 2 and not kills:  # both actors hold a half-scored shard: kill both for good
            for h in handles[:2]:
                ray.kill(h, no_restart=True)
            kills.append(done)

    run = tmp_path / "run"
    cfg = tiny_score_config(run, workers=2, max_retries=0, shard_size=2)  # 3 shards of 2 archs
    summary = run_scoring_from_dict(cfg, progress_callback=progress)
    assert kills == [2] and all(m.exists() for m in markers)
    # the two held shards are given up: their streamed arch is kept, the unscored one becomes 3 error rows
    assert len(summary["failed_shards"]) == 2 and summary["error_rows"] == 3 * 2
    assert summary["outcome"] == "failed"
    assert_complete(run, _ids(cfg))  # failed archs still have one (error) row per metric
    errors = [r for r in score_rows(run) if r[4] == "error"]
    assert len(errors) == summary["error_rows"] and all(r[3] is None for r in errors)
    from raynas.store import ScoreStore

    text = ScoreStore(run).read(["error"]).column("error").to_pylist()
    assert any("shard failed 1 times" in t and "Actor" in t for t in text)


def test_hung_shard_is_killed_at_its_deadline_and_retried(
    local_ray: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The deadline must be met by every normal shard (one arch) and missed by the hung one, which never ends.
    # One step of this machine, now: the whole in-process run of the 6 archs (also the reference rows). An actor
    # scores one arch slower than the in-process loop (it shares the cores with the driver and Ray), so the
    # deadline is many such steps; the actors warm up before they take work, so a first shard is no slower.
    t0 = time.perf_counter()
    run_scoring_from_dict(tiny_score_config(tmp_path / "local"))
    deadline = max(10.0, 30 * (time.perf_counter() - t0))

    marker = tmp_path / "hung"
    monkeypatch.setattr(driver_mod, "create_actor", hang_once_actor_factory(str(marker), warm_up=True))
    cfg = tiny_score_config(tmp_path / "run", workers=2, max_retries=2, shard_timeout_s=deadline)
    summary = run_scoring_from_dict(cfg)
    assert marker.exists()  # one shard really hung
    # only the hung shard was killed and retried: no normal shard came near the deadline
    assert summary["retries"] == 1 and summary["failed_shards"] == [] and summary["error_rows"] == 0, summary
    assert_complete(tmp_path / "run", _ids(cfg))
    assert_same_rows(score_rows(tmp_path / "run"), score_rows(tmp_path / "local"))


# --- issue 13 ---------------------------------------------------------------------------------------------


def _user_metric_module(tmp_path: Path, module: str, name: str) -> None:
    (tmp_path / f"{module}.py").write_text(
        "from raynas.metrics.registry import register_metric\n\n"
        f"@register_metric({name!r}, needs_data=False, needs_labels=False)\n"
        "def twice_params(model, batch):\n"
        '    """Twice the parameter count."""\n'
        "    return 2.0 * sum(p.numel() for p in model.parameters())\n"
    )


@pytest.fixture
def user_metric(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, str]]:
    """A metric registered with ``@register_metric`` in a module of ``tmp_path``, imported by the test (as a user
    script would) after Ray started, so Ray's workers do not have that directory on their path."""
    import importlib
    import sys

    from raynas.metrics.registry import METRICS

    module, name = f"issue13_user_metrics_{tmp_path.name}", "issue13_twice_params"
    (tmp_path / "code").mkdir()
    _user_metric_module(tmp_path / "code", module, name)
    monkeypatch.syspath_prepend(str(tmp_path / "code"))
    monkeypatch.setattr(METRICS, "_entries", dict(METRICS._entries))  # the registration ends with the test
    importlib.import_module(module)
    try:
        yield module, name
    finally:
        sys.modules.pop(module, None)


def test_user_registered_metric_is_scored_by_the_actors(
    local_ray: None, tmp_path: Path, user_metric: tuple[str, str]
) -> None:
    module, name = user_metric
    cfg = tiny_score_config(tmp_path / "run", workers=2, metrics=["params", name])
    summary = run_scoring_from_dict(cfg)
    assert summary["outcome"] == "ok" and summary["retries"] == 0
    assert summary["rows"] == {"ok": 12, "nan": 0, "error": 0, "oom": 0, "not_applicable": 0}
    rows = score_rows(tmp_path / "run")
    values = {(a, m): v for a, m, _s, v, _st in rows}
    assert all(values[(a, name)] == 2 * values[(a, "params")] for a in _ids(cfg))
    from raynas.store import ScoreStore

    assert ScoreStore(tmp_path / "run").load_config()["volatile"]["metric_modules"] == [module]


def test_unknown_metric_fails_before_any_actor_starts(
    local_ray: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from raynas.errors import UnknownNameError

    handles = _record_actors(monkeypatch)
    with pytest.raises(UnknownNameError, match="issue13_nope"):
        run_scoring_from_dict(tiny_score_config(tmp_path / "run", workers=2, metrics=["params", "issue13_nope"]))
    assert handles == [] and not (tmp_path / "run" / "config.json").exists()


def test_metric_the_actors_cannot_load_stops_the_run_with_a_config_error(
    local_ray: None, tmp_path: Path, user_metric: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without its code shipped (as before the fix) the actor cannot import the module: the run stops at once
    with a typed error naming it, instead of retrying and storing every row as an error."""
    from raynas.errors import ConfigError
    from raynas.parallel import actor as actor_mod

    module, name = user_metric
    monkeypatch.setattr(actor_mod, "_module_code", lambda module: None, raising=False)  # ship nothing
    handles = _record_actors(monkeypatch)
    with pytest.raises(ConfigError, match=f"cannot import metric module '{module}'"):
        run_scoring_from_dict(tiny_score_config(tmp_path / "run", workers=1, metrics=["params", name]))
    assert len(handles) == 1  # not replaced or retried
    from raynas.store import ScoreStore

    assert ScoreStore(tmp_path / "run").shard_ids() == set()


def test_run_whose_shards_all_time_out_is_failed_and_exits_1(
    local_ray: None, tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import logging

    from raynas.cli.main import main

    # every shard hangs, so each misses its 0.01 s deadline however fast the machine (a sub-second deadline is
    # what the log's wording is checked on)
    monkeypatch.setattr(driver_mod, "create_actor", hanging_actor_factory(None))
    caplog.set_level(logging.WARNING, logger="raynas.parallel.driver")
    cfg = tiny_score_config(tmp_path / "run", sample=2, workers=1, shard_timeout_s=0.01, max_retries=1)
    summary = run_scoring_from_dict(cfg)
    assert summary["outcome"] == "failed" and summary["failed_shards"]
    assert "failed after every retry" in summary["problem"]
    assert "exceeded its 0.01 s deadline" in caplog.text and "0 s deadline" not in caplog.text
    rc = main(["score", "--space", "nb201", "--C", "4", "--N", "1", "--batch-size", "8", "--image-size", "8",
               "--metrics", "params,naswot", "--sample", "2", "--workers", "1", "--shard-timeout", "0.01",
               "--max-retries", "1", "--no-progress", "--out", str(tmp_path / "cli")])
    out, err = capsys.readouterr()
    assert rc == 1 and "raynas: failure:" in err and "outcome: failed" in out


def test_progress_per_arch_and_an_interrupt_keeps_finished_archs(local_ray: None, tmp_path: Path) -> None:
    reference = tmp_path / "local"
    run_scoring_from_dict(tiny_score_config(reference))
    cfg = tiny_score_config(tmp_path / "run", workers=1, shard_size=6)  # one shard: 6 archs on one actor
    seen: list[int] = []

    def progress(done: int, total: int, rate: Any, eta: Any) -> None:
        seen.append(done)
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_scoring_from_dict(cfg, progress_callback=progress)
    assert seen == [0, 1, 2]  # counted per arch while the shard was still running
    stored = score_rows(tmp_path / "run")
    archs = {r[0] for r in stored}
    assert len(archs) >= 2 and len(stored) == 3 * len(archs)  # every finished arch, each with all its metrics
    summary = run_scoring_from_dict({"out": str(tmp_path / "run"), "resume": True})
    assert summary["already_done"] == len(archs) and summary["outcome"] == "ok"
    assert_complete(tmp_path / "run", _ids(cfg))
    assert_same_rows(score_rows(tmp_path / "run"), score_rows(reference))


def test_more_workers_than_the_cluster_runs_are_capped_and_reported(
    local_ray: None, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    caplog.set_level(logging.WARNING, logger="raynas.parallel.driver")
    summary = run_scoring_from_dict(tiny_score_config(tmp_path / "run", workers=100000))
    assert summary["workers"] == 2 and summary["workers_requested"] == 100000 and len(summary["actors"]) == 2
    assert "workers=100000 is more than this Ray cluster can run at once (2 CPUs at 1 per worker)" in caplog.text
    assert_complete(tmp_path / "run", _ids(tiny_score_config(tmp_path / "run")))


def test_actors_stream_each_metric_pass_as_the_local_loop_reports_it(local_ray: None, tmp_path: Path) -> None:
    """Progress inside an arch through Ray (issue #29 item 4): an actor streams a report as each metric pass of an
    arch starts, between its archs, and the driver hands them to ``metric_callback`` as the in-process loop does."""
    from raynas.parallel import run_scoring

    seen: dict[str, list[tuple[tuple[str, ...], int, int]]] = {"local": [], "ray": []}
    for where, workers in (("local", 0), ("ray", 1)):
        cfg = ScoreConfig.from_dict(tiny_score_config(tmp_path / where, workers=workers))
        run_scoring(cfg, metric_callback=lambda names, done, total, w=where: seen[w].append((tuple(names), done, total)))
    assert seen["ray"] and seen["ray"] == seen["local"]  # one actor takes the shards in order: the same reports
    assert_same_rows(score_rows(tmp_path / "ray"), score_rows(tmp_path / "local"))
