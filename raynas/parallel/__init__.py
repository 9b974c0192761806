"""Scale-out scoring: shard planning, the scoring loop, and its Ray driver with GPU-pinned actors.

``run_scoring(cfg)`` is the one entry point (``raynas score`` calls it through ``run_scoring_from_dict``);
``open_run(run_dir)`` opens a score run whose store can judge completeness against the run's plan
(:func:`plan_run`).
Ray is imported only when a run actually uses it, so the pure parts load fast.
"""

from __future__ import annotations

from typing import Any

from raynas.parallel.config import VOLATILE_KEYS, ScoreConfig
from raynas.parallel.planner import open_run, plan_run
from raynas.parallel.shards import Shard, missing_work, plan_shards, select_ids


def run_scoring(cfg: ScoreConfig, progress_callback: Any = None, estimate_callback: Any = None,
                metric_callback: Any = None) -> dict[str, Any]:
    """See :func:`raynas.parallel.driver.run_scoring` (``workers=0`` never imports Ray)."""
    if cfg.workers == 0:
        from raynas.parallel.local import run_local

        return run_local(cfg, progress_callback, estimate_callback, metric_callback)
    from raynas.parallel.driver import run_scoring as _run

    return _run(cfg, progress_callback, estimate_callback, metric_callback)


def run_scoring_from_dict(data: dict[str, Any], progress_callback: Any = None,
                          estimate_callback: Any = None, metric_callback: Any = None) -> dict[str, Any]:
    """:func:`run_scoring` on a plain dict (strict: unknown keys are a ConfigError).

    A resume (``resume=True``) takes every key ``data`` leaves out from the stored config of ``data["out"]``
    (:func:`raynas.parallel.run.resume_defaults`), so ``{"out": RUN, "resume": True}`` continues RUN as it was.
    """
    from raynas.parallel.run import resume_defaults

    return run_scoring(ScoreConfig.from_dict(resume_defaults(data)), progress_callback, estimate_callback,
                       metric_callback)


__all__ = [
    "VOLATILE_KEYS",
    "ScoreConfig",
    "Shard",
    "missing_work",
    "open_run",
    "plan_run",
    "plan_shards",
    "run_scoring",
    "run_scoring_from_dict",
    "select_ids",
]
