"""Library entry points of ``raynas search robot`` (and the pool/oracle plumbing shared with HNAS).

A search directory (:class:`raynas.store.SearchDir`) holds the resolved config, the versioned trace (saved
after every query) and the result. A search killed at any moment continues with ``resume=True``. The pool is
read with :func:`raynas.store.read_scores_wide` (one run, or several joined on the architecture).

A pool is only searched from *complete* score runs (:meth:`raynas.store.Store.completeness` planned by
:func:`raynas.parallel.plan_run`: a usable config, no missing, corrupt or failed shard). An incomplete run is an
:class:`IncompleteRunError` naming what is wrong unless ``allow_incomplete`` is set; either way the result's
``pool`` entry states the pool size used and every problem of every run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import pyarrow as pa

from raynas.config import from_dict, to_dict
from raynas.errors import ConfigError, SearchError
from raynas.oracles.base import Oracle, benchmark_answer, create_oracle
from raynas.parallel import plan_run
from raynas.search.pool import CandidatePool

# run_space and split_runs stay importable from here: hnas_run looks run_space up here, tests and scripts import both
from raynas.store import check_runs, prepare_search, read_scores_wide, run_space, split_runs  # noqa: F401

if TYPE_CHECKING:
    from raynas.store import RunCompleteness

log = logging.getLogger(__name__)


class IncompleteRunError(SearchError):
    """A score run to search is incomplete (config, shards) and ``allow_incomplete`` was not given."""

ROBOT_METRICS = ("grad_norm", "snip", "grasp", "fisher", "synflow", "jacob_cov")
#: non-metric columns of a wide score table
_KEYS = ("space", "arch_index", "arch", "seed")


def require_complete(checks: Sequence["RunCompleteness"], allow_incomplete: bool = False,
                     pool_size: int | None = None) -> None:
    """Raise :class:`IncompleteRunError` naming every problem of every incomplete run, unless
    ``allow_incomplete`` (then each run's problems are logged as warnings)."""
    bad = [c for c in checks if not c.complete]
    if not bad:
        return
    detail = _problems(bad)
    if not allow_incomplete:
        using = f" the {pool_size} archs that were read" if pool_size is not None else " what was read"
        # a resume re-scores missing, corrupt and failed shards, but refuses a run without its config
        fix = ("Resume the scoring run (raynas score --resume) to complete it"
               if all(c.config_present and c.config_error is None for c in bad)
               else "Restore config.json, then resume the scoring run (raynas score --resume) to complete it")
        raise IncompleteRunError(f"incomplete score run: {detail}. {fix}, or allow incomplete runs (search robot|hnas "
                                 f"--allow-incomplete; pipeline: --set search.allow_incomplete=true) to search{using}")
    log.warning("searching an incomplete score run (allow_incomplete): %s", detail)


def _problems(checks: Sequence["RunCompleteness"]) -> str:
    """Every problem of every run in one line: ``RUN: p1; p2 | RUN2: ...``."""
    return " | ".join(f"{c.run_dir}: {'; '.join(c.problems())}" for c in checks)


def pool_summary(pool: CandidatePool, checks: Sequence["RunCompleteness"]) -> dict[str, Any]:
    """The result's ``pool`` entry: the size used, whether every run was complete, and each run's state."""
    runs = [{"run": str(c.run_dir), "complete": c.complete, "summary": c.summary(), "problems": c.problems(),
             "planned_archs": c.planned_archs, "missing_shards": list(c.missing_shards),
             "corrupt_shards": [name for name, _ in c.corrupt_shards], "failed_shards": list(c.failed_shards),
             "config_present": c.config_present} for c in checks]
    return {"size": len(pool), "complete": all(c.complete for c in checks), "runs": runs}


@dataclass(frozen=True)
class LoadedPool:
    """What :func:`load_checked_pool` read: the pool, its wide table, the first run's config, the runs' state."""

    pool: CandidatePool
    wide: pa.Table
    config: dict[str, Any]
    checks: tuple["RunCompleteness", ...]

    def summary(self) -> dict[str, Any]:
        return pool_summary(self.pool, self.checks)


def load_checked_pool(scores: str | Path | Sequence[str | Path], metrics: Sequence[str], transform: str = "none",
                      *, allow_incomplete: bool = False) -> LoadedPool:
    """Candidate pool over ``metrics`` from one or several runs (:func:`read_scores_wide`), refused with
    :class:`IncompleteRunError` when a run is incomplete unless ``allow_incomplete``; a metric missing from the
    scores is a :class:`SearchError`."""
    checks = tuple(check_runs(scores, planner=plan_run))
    try:
        wide, cfg = read_scores_wide(scores)
    except SearchError as e:
        bad = [c for c in checks if not c.complete]
        if not bad:
            raise
        raise IncompleteRunError(f"{e}; the score run is incomplete: {_problems(bad)}") from None
    missing = [m for m in metrics if m not in wide.column_names]
    if missing:
        have = sorted(c for c in wide.column_names if c not in _KEYS)
        raise SearchError(f"scores in {scores} lack metric(s) {missing}; stored metrics: {have}")
    pool = CandidatePool.from_table(wide, metrics, transform)
    require_complete(checks, allow_incomplete, len(pool))
    return LoadedPool(pool, wide, cfg, checks)


def load_pool(scores: str | Path | Sequence[str | Path], metrics: list[str], transform: str = "none", *,
              allow_incomplete: bool = False) -> tuple[CandidatePool, pa.Table, dict]:
    """``(pool, wide table, config)`` of :func:`load_checked_pool` (incomplete runs refused by default)."""
    got = load_checked_pool(scores, metrics, transform, allow_incomplete=allow_incomplete)
    return got.pool, got.wide, got.config


def make_oracle(name: str, score_cfg: dict[str, Any], seed: int, options: dict[str, Any] | None = None) -> Oracle:
    """``nb201``: the benchmark table; ``train``: real short training of the arch (space taken from the scores)."""
    options = dict(options or {})
    if name == "train":
        from raynas.oracles.training import TrainingOracle

        train_cfg = dict(options.pop("train_cfg", None) or {})
        train_cfg.setdefault("seed", seed)
        return TrainingOracle(space=score_cfg.get("space", "nb201"), train_cfg=train_cfg, **options)
    if options:
        raise ConfigError(f"oracle {name!r} takes no options, got {sorted(options)}")
    if name == "nb201" and score_cfg.get("space", "nb201") != "nb201":
        raise ConfigError(f"the nb201 table oracle cannot answer for space {score_cfg.get('space')!r}; use --oracle train")
    return create_oracle(name)


@dataclass(frozen=True)
class RobotSearchConfig:
    scores: str
    out: str
    oracle: str = "nb201"
    budget: int = 20
    metrics: str = ",".join(ROBOT_METRICS)
    seed: int = 0
    bo_iters: int | None = None
    transform: str = "none"
    resume: bool = False
    oracle_options: dict | None = None
    kernel: str = "rbf_ard"
    allow_incomplete: bool = False


def run_robot_search(cfg: dict[str, Any], progress_callback: Callable[..., None] | None = None) -> dict[str, Any]:
    """Run (or resume) RoBoT over the pool scored in ``cfg["scores"]``; returns the result dict with the trace.

    Beyond :meth:`RoBoT.result` (effective ``budget``, ``budget_requested``, ``bo_iters``) the result holds ``pool``
    (:func:`pool_summary`), ``space`` and ``benchmark`` (the NB201 ground truth of the answer,
    :func:`raynas.oracles.base.benchmark_answer`; None for other spaces).
    """
    from raynas.search.robot import RoBoT

    c = from_dict(RobotSearchConfig, cfg)
    metrics = [m.strip() for m in c.metrics.split(",") if m.strip()]
    loaded = load_checked_pool(c.scores, metrics, c.transform, allow_incomplete=c.allow_incomplete)
    pool, wide, score_cfg = loaded.pool, loaded.wide, loaded.config
    oracle = make_oracle(c.oracle, score_cfg, c.seed, c.oracle_options)
    out = prepare_search(c.out, {k: v for k, v in to_dict(c).items()}, c.resume)
    state = out.state_path
    if c.resume and state.exists():
        search = RoBoT.from_state(state, pool, oracle)
        log.info("resumed RoBoT at step %d", len(search.trace))
    else:
        search = RoBoT(pool, oracle, budget=c.budget, bo_iters=c.bo_iters, seed=c.seed, state_path=state,
                       kernel=c.kernel)  # type: ignore[arg-type]  # RoBoTConfig validates it

    def on_step(row: dict[str, Any]) -> None:
        log.info("step %d %s arch %d value %.3f cost %.1f", row["step"], row["kind"], row["arch_index"],
                 row["value"], row["cumulative_cost"])
        if progress_callback is not None:
            progress_callback(search.queries, search.budget)

    result = search.run(on_step=on_step)
    arch_of = dict(zip(wide.column("arch_index").to_pylist(), wide.column("arch").to_pylist()))
    result["arch"] = arch_of.get(result["arch_index"])
    result["metrics"] = metrics
    result["space"] = space = str(score_cfg.get("space", "nb201"))
    result["pool"] = loaded.summary()
    answer = benchmark_answer(space, result["arch_index"])
    result["benchmark"] = answer.as_dict() if answer is not None else None
    result["trace"] = search.trace
    out.write_result({k: v for k, v in result.items()})
    return result
