"""``run_hnas_search``: HNAS from its typed config (``raynas search hnas`` and the pipeline).

The pool is the ``metric`` and ``ntk_cond`` columns of a ``raynas score`` run (read with the RoBoT runner's
plumbing: several seeds are averaged). Oracles (:func:`raynas.search.runner.make_oracle`):

* None (default) or a benchmark's name (``raynas list benchmarks``): the scored space's benchmark table (for
  NAS-Bench-201: query = 12-epoch valid acc, cost = its training seconds, final = 200-epoch test acc); the
  answer is the best queried arch.
* ``train``: the **hybrid** search. Each BO query trains ``A*(t, c)`` for ``train_cfg.epochs`` (real short
  training, ``oracle_options`` as for RoBoT), then Ray Tune's ASHA spreads up to ``asha_epochs`` epochs
  (default 3x the query epochs) over the ``top_k`` archs of the incumbent objective ``F(.; t*, c*)``. The answer
  is the ASHA trial with the best validation accuracy; the BO pick stays in ``bo_arch_index`` / ``bo_value``.
  ``top_k=0`` skips ASHA.

Search directory (same layout as RoBoT's, :class:`raynas.store.SearchDir`): the config, the versioned Arrow
trace (rewritten after every query) and the result; with ASHA also the trial table (one row per trial) and
Tune's own experiment. ``resume=True`` continues a killed search, ASHA stage included.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal, Mapping

from raynas.config import from_dict, to_dict
from raynas.errors import ConfigError, UnknownNameError
from raynas.search.bo import GP_MAX_POINTS
from raynas.search.hnas import HNAS, HNAS_METRICS, KAPPA_METRIC, HNASConfig
from raynas.store import SearchDir

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HNASSearchConfig:
    """``raynas search hnas``: the pool (``scores``), the search directory ``out``, the HNAS settings
    (:class:`raynas.search.hnas.HNASConfig`, :meth:`search_kwargs`) and those of the hybrid ASHA stage."""

    scores: str
    out: str
    oracle: str | None = None  # None: the scored space's benchmark table
    budget: int = 20
    metric: str = "ntk_trace"
    seed: int = 0
    resume: bool = False
    #: start over in ``out`` whatever is stored there (its config, state, result and ASHA stage are replaced)
    restart: bool = False
    oracle_options: dict | None = None
    max_iters: int | None = None
    n_init: int = 3
    acquisition: Literal["ucb", "logei"] = "ucb"
    exclude_queried: bool = True
    t_bounds: tuple[float, float] = (0.0, 1.0)
    c_bounds: tuple[float, float] = (-4.0, 0.0)
    scale: Literal["max", "median"] = "max"
    #: BO steps in a row that re-propose a queried arch before the search ends (None: never; HNASConfig.patience)
    patience: int | None = 10
    #: the most observations one GP step is fitted on (None: all; raynas.search.bo.gp_window)
    gp_max_points: int | None = GP_MAX_POINTS
    # hybrid stage (oracle "train")
    top_k: int = 4
    asha_epochs: int | None = None
    grace_period: int = 1
    reduction_factor: int = 2
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    # search a score run with a missing config or missing, corrupt or failed shards (the result lists them)
    allow_incomplete: bool = False
    #: proposals in flight at once (q-batch BO; 1: sequential)
    q: int = 1
    # where the BO queries run (raynas.search.runner.QueryPlacement)
    query_backend: str = "local"
    address: str | None = None
    gpus_per_query: float = 0.0
    cpus_per_query: float = 1.0
    query_retries: int = 2

    def __post_init__(self) -> None:
        from raynas.search.runner import QueryPlacement, check_q

        check_q(self.q)
        QueryPlacement.of(self)
        if self.metric not in HNAS_METRICS:
            raise UnknownNameError("HNAS measure", self.metric, HNAS_METRICS)  # before any data is read
        HNASConfig(**self.search_kwargs())  # the search's own checks, before any data is read
        if self.top_k < 0 or (self.asha_epochs is not None and self.asha_epochs < 1):
            raise ConfigError(f"top_k must be >= 0 and asha_epochs >= 1, got {self.top_k}, {self.asha_epochs}")
        unknown = sorted(set(self.oracle_options or {}) - ASHA_OPTIONS)
        if self.oracle == "train" and self.top_k > 0 and unknown:  # refused before the BO queries, not after
            raise ConfigError(f"oracle_options {unknown} are not supported by the ASHA stage (top_k=0 skips it)")

    def search_kwargs(self) -> dict[str, Any]:
        keys = ("metric", "budget", "max_iters", "n_init", "seed", "acquisition", "t_bounds", "c_bounds", "scale",
                "exclude_queried", "q", "patience", "gp_max_points")
        return {k: getattr(self, k) for k in keys}


#: the oracle options the hybrid ASHA stage trains with (the rest of :class:`TrainingOracle`'s are refused)
ASHA_OPTIONS = frozenset({"dataset", "device", "input_size", "space_kwargs", "max_train", "max_val", "train_cfg"})


#: how an ASHA trial's resources are set (HNASSearchConfig keys; the CLI has no flag for them)
TRIAL_FLAGS = {"GPU": "gpus_per_trial={}", "CPU": "cpus_per_trial={}"}


def require_trial_resources(c: HNASSearchConfig) -> bool:
    """Refuse ASHA trials no node can run (:func:`raynas.parallel.session.require`): a local Ray is judged without
    starting it; False when a cluster is named and not attached yet (checked again once ``run_asha`` is attached)."""
    from raynas.parallel.session import require

    if c.oracle != "train" or c.top_k <= 0:
        return True
    return require({"CPU": c.cpus_per_trial, "GPU": c.gpus_per_trial}, who="an ASHA trial", flags=TRIAL_FLAGS)


def _asha_stage(c: HNASSearchConfig, search: HNAS, out: SearchDir, space_name: str,
                arch_of: dict[int, str]) -> dict[str, Any]:
    """Ray Tune ASHA over the top-k archs of the incumbent objective; the hybrid part of the result."""
    from raynas.spaces import create_space
    from raynas.training import TrainConfig
    from raynas.tune.asha import best_trial, read_trials, run_asha

    opts = dict(c.oracle_options or {})
    train = from_dict(TrainConfig, {"seed": c.seed, **dict(opts.pop("train_cfg", None) or {})})
    epochs = c.asha_epochs if c.asha_epochs is not None else 3 * train.epochs
    space = create_space(space_name)
    top = search.top_k(c.top_k)
    archs = [arch_of.get(i) or space.format(space.index_to_arch(i)) for i in top]
    if c.resume and out.has_trials():
        trials = read_trials(out.trials_path)  # the stage had finished before the search was interrupted
    else:
        unknown = sorted(set(opts) - ASHA_OPTIONS)
        if unknown:
            raise ConfigError(f"oracle_options {unknown} are not supported by the ASHA stage")
        trials = run_asha(archs, space_name, opts.get("dataset", "digits"), train, max_epochs=epochs,
                          grace_period=min(c.grace_period, epochs), reduction_factor=c.reduction_factor,
                          gpus_per_trial=c.gpus_per_trial, storage_path=out.tune_dir, name="asha", resume=c.resume,
                          cpus_per_trial=c.cpus_per_trial, space_kwargs=opts.get("space_kwargs"),
                          input_size=opts.get("input_size", 32), max_train=opts.get("max_train"),
                          max_val=opts.get("max_val"), device=opts.get("device", "auto"),
                          results_path=out.trials_path,
                          check_resources=lambda: require_trial_resources(c))  # once Ray is up, before any trial
    best = best_trial(trials)
    return {"arch_index": dict(zip(archs, top))[best.arch], "arch": best.arch, "value": best.val_acc,
            "epochs": best.epochs, "max_epochs": epochs, "checkpoint": best.checkpoint,
            "trials": [t.as_dict() for t in trials]}


def run_hnas_search(cfg: HNASSearchConfig | Mapping[str, Any],
                    progress_callback: Callable[..., None] | None = None) -> dict[str, Any]:
    """Run (or resume) HNAS as configured by ``cfg``; returns the result. ``cfg`` is an
    :class:`HNASSearchConfig` (a mapping is converted strictly, :func:`raynas.config.from_dict`)."""
    from raynas.search.runner import (
        check_query_resources,
        load_checked_pool,
        make_oracle,
        oracle_name,
        typed_config_dict,
    )

    c = cfg if isinstance(cfg, HNASSearchConfig) else from_dict(HNASSearchConfig, cfg)
    check_query_resources(c)  # before any work (a named cluster: once attached)
    require_trial_resources(c)
    loaded = load_checked_pool(c.scores, [c.metric, KAPPA_METRIC], allow_incomplete=c.allow_incomplete)
    pool, wide, score_cfg = loaded.pool, loaded.wide, loaded.config
    c = dataclasses.replace(c, oracle=oracle_name(c.oracle, score_cfg))  # the config records the oracle used
    oracle = make_oracle(c.oracle, score_cfg, c.seed, c.oracle_options)
    where = SearchDir(Path(c.out))
    with where.claim():  # one writer; refused before the first state save, the directory is left as it was
        started = where.resumable()
        out = where.prepare(to_dict(c), c.resume, normalise=typed_config_dict(HNASSearchConfig), restart=c.restart)
        return _hnas(c, out, started, pool, wide, oracle, loaded, progress_callback)


def _hnas(c: HNASSearchConfig, out: SearchDir, started: bool, pool: Any, wide: Any, oracle: Any, loaded: Any,
          progress_callback: Callable[..., None] | None) -> dict[str, Any]:
    from raynas.oracles.base import benchmark_answer
    from raynas.search.runner import resume_or_start, run_space, run_with_executor, start_progress

    state = out.state_path

    def load(path: Any) -> HNAS:
        s = HNAS.from_state(path, pool, oracle)
        log.info("resumed HNAS at step %d", len(s.trace))
        return s

    search = resume_or_start(out, c, started, load, lambda: HNAS(pool, oracle, **c.search_kwargs()))

    def on_step(row: dict[str, Any]) -> None:
        log.info("step %d t=%.3f c=%.2f arch %d value %.3f cost %.1f", row["step"], *row["weights"],
                 row["arch_index"], row["value"], row["cumulative_cost"])
        if progress_callback is not None:
            progress_callback(search.queries, search.budget)

    start_progress(progress_callback, search, oracle)
    result = run_with_executor(search, c, run_space(c.scores), on_step, state)  # state saved after every tell
    arch_of = dict(zip(wide.column("arch_index").to_pylist(), wide.column("arch").to_pylist()))
    result.update(arch=arch_of.get(result["arch_index"]), trace=search.trace)
    if c.oracle == "train" and c.top_k > 0:
        hybrid = _asha_stage(c, search, out, run_space(c.scores), arch_of)
        result.update(bo_arch_index=result["arch_index"], bo_value=result["value"], asha=hybrid,
                      arch_index=hybrid["arch_index"], arch=hybrid["arch"], value=hybrid["value"],
                      final=hybrid["value"])
    space = run_space(c.scores)
    answer = benchmark_answer(space, result["arch_index"])
    result.update(pool=loaded.summary(), space=space, benchmark=answer.as_dict() if answer is not None else None)
    out.write_result(result)
    return result
