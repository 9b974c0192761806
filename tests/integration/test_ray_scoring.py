"""The Ray driver on a real local Ray: GPU-pinned actors, same rows as the in-process loop, killed actors."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest
import torch

ray = pytest.importorskip("ray")

from raynas.parallel import ScoreConfig, run_scoring_from_dict  # noqa: E402
from raynas.parallel import driver as driver_mod  # noqa: E402
from raynas.parallel.shards import select_ids  # noqa: E402
from raynas.spaces import create_space  # noqa: E402
from raynas.testing import assert_complete, assert_same_rows, score_rows, tiny_score_config  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """2 CPUs and 2 *logical* GPUs (none physical here): actors with num_gpus=1 get distinct ids."""
    if ray.is_initialized():
        ray.shutdown()
    ray.init(num_cpus=2, num_gpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _ids(cfg: dict) -> list[int]:
    return select_ids(create_space("nb201"), ScoreConfig.from_dict(cfg))


def _record_actors(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    handles: list[Any] = []
    real = driver_mod.create_actor

    def create(*a: Any, **kw: Any) -> Any:
        handles.append(real(*a, **kw))
        return handles[-1]

    monkeypatch.setattr(driver_mod, "create_actor", create)
    return handles


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
    handles = _record_actors(monkeypatch)
    kills = []

    def progress(done: int, total: int, rate: Any, eta: Any) -> None:
        if done == 1 and not kills:  # mid-run: kill one actor for good, let Ray restart the other
            ray.kill(handles[0], no_restart=True)
            ray.kill(handles[1], no_restart=False)
            kills.append(done)

    cfg = tiny_score_config(tmp_path, workers=2, max_retries=3)
    summary = run_scoring_from_dict(cfg, progress_callback=progress)
    assert kills == [1]
    assert summary["retries"] >= 1 and summary["failed_shards"] == [] and summary["error_rows"] == 0
    assert len(handles) >= 3  # the permanently killed actor was replaced
    assert_complete(tmp_path, _ids(cfg))


def test_shard_given_up_after_max_retries_becomes_error_rows(
    local_ray: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    handles = _record_actors(monkeypatch)

    def progress(done: int, total: int, rate: Any, eta: Any) -> None:
        if done == 1:
            for h in handles[:2]:
                ray.kill(h, no_restart=True)

    cfg = tiny_score_config(tmp_path, workers=2, max_retries=0)
    summary = run_scoring_from_dict(cfg, progress_callback=progress)
    assert summary["failed_shards"] and summary["error_rows"] == 3 * len(summary["failed_shards"])
    assert_complete(tmp_path, _ids(cfg))  # failed archs still have one (error) row per metric
    errors = [r for r in score_rows(tmp_path) if r[4] == "error"]
    assert len(errors) == summary["error_rows"] and all(r[3] is None for r in errors)
    from raynas.store import ScoreStore

    text = ScoreStore(tmp_path).read(["error"]).column("error").to_pylist()
    assert any("shard failed 1 times" in t and "Actor" in t for t in text)


def test_hung_shard_is_killed_at_its_deadline_and_retried(
    local_ray: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from raynas.testing import hang_once_actor_factory

    marker = tmp_path / "hung"
    monkeypatch.setattr(driver_mod, "create_actor", hang_once_actor_factory(str(marker)))
    cfg = tiny_score_config(tmp_path / "run", workers=2, max_retries=2, shard_timeout_s=4.0)
    summary = run_scoring_from_dict(cfg)
    assert marker.exists()  # one shard really hung
    assert summary["retries"] == 1 and summary["failed_shards"] == [] and summary["error_rows"] == 0
    assert_complete(tmp_path / "run", _ids(cfg))
    local = tiny_score_config(tmp_path / "local")
    run_scoring_from_dict(local)
    assert_same_rows(score_rows(tmp_path / "run"), score_rows(tmp_path / "local"))
