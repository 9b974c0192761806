"""The plan of a stored ``raynas score`` config, for the store's completeness report.

The store sits below the search spaces and the shard rules, so it cannot recompute a plan itself; it takes a
:data:`raynas.store.plan.Planner`. :func:`plan_run` is that planner for scoring runs (it plans exactly as
``raynas score`` did) and :func:`open_run` opens a run directory with it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from raynas.config import from_dict
from raynas.parallel.config import DERIVED_KEYS, ScoreConfig
from raynas.parallel.shards import plan_shards, select_ids
from raynas.store import DEFAULT_BACKEND, RunPlan, Store, open_store


def plan_run(cfg: Mapping[str, Any], run_dir: Path) -> RunPlan:
    """The plan of the stored (flat) scoring config ``cfg`` of ``run_dir``, recomputed as ``raynas score`` does.

    Raises:
        RaynasError: ``cfg`` is not a scoring config (unknown keys, no selection, unknown space or metric).
    """
    from raynas.spaces import create_space

    fields = {k: v for k, v in cfg.items() if k not in DERIVED_KEYS}  # e.g. task_loss: recomputed, not given
    sc = from_dict(ScoreConfig, {**fields, "out": str(run_dir)})
    ids = select_ids(create_space(sc.space), sc)
    return RunPlan(tuple(ids), tuple((s.shard_id, s.ids) for s in plan_shards(ids, sc.shard_size)),
                   tuple(sc.metric_names()), sc.seed)


def open_run(run_dir: str | Path, backend: str = DEFAULT_BACKEND) -> Store:
    """The score run ``run_dir`` opened with :func:`plan_run` as its planner, so ``completeness()`` knows the
    planned totals."""
    return open_store(run_dir, backend, planner=plan_run)
