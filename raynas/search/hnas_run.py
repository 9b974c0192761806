"""``run_hnas_search``: HNAS from its typed config (``raynas search hnas`` and the pipeline).

The pool is the ``metric`` and ``ntk_cond`` columns of a ``raynas score`` run (read by the query-search
session, :mod:`raynas.search.session`: several seeds are averaged). Oracles (:func:`raynas.search.runner.make_oracle`):

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

import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Mapping

from raynas.config import from_dict
from raynas.errors import ConfigError, UnknownNameError
from raynas.search.bo import GP_MAX_POINTS
from raynas.search.hnas import HNAS, HNAS_METRICS, KAPPA_METRIC, HNASConfig
from raynas.search.session import LoadedPool, QuerySearchConfig, SearchSpec
from raynas.store import SearchDir

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HNASSearchConfig(QuerySearchConfig):
    """``raynas search hnas``: the pool (``scores``), the search directory ``out``, the HNAS settings
    (:class:`raynas.search.hnas.HNASConfig`, :meth:`search_kwargs`) and those of the hybrid ASHA stage."""

    metric: str = field(default="ntk_trace", metadata={"help": "M: ntk_trace | grad_norm | snip | grasp"})
    max_iters: int | None = field(default=None, metadata={"help": "BO steps at most (default 3 x budget)", "min": 1})
    n_init: int = field(default=3, metadata={"help": "Sobol points before the GP", "min": 1})
    acquisition: Literal["ucb", "logei"] = field(default="ucb", metadata={"help": "BO acquisition"})
    exclude_queried: bool = field(default=True, metadata={
        "help": "the next query is the best arch not yet queried (the HNAS paper's rule); --no-exclude-queried: a "
                "repeated arch is answered from the cache (searches made before this default resume only with it)"})
    t_bounds: tuple[float, float] = field(default=(0.0, 1.0), metadata={"cli": False})
    c_bounds: tuple[float, float] = field(default=(-4.0, 0.0), metadata={"cli": False})
    scale: Literal["max", "median"] = field(default="max", metadata={
        "help": "how the measures are scaled in the objective"})
    #: BO steps in a row that re-propose a queried arch before the search ends (None: never; HNASConfig.patience)
    patience: int | None = field(default=10, metadata={
        "help": "end after this many BO steps in a row re-proposed a queried arch (none: never)", "min": 1})
    #: the most observations one GP step is fitted on (None: all; raynas.search.bo.gp_window)
    gp_max_points: int | None = field(default=GP_MAX_POINTS, metadata={
        "help": "the most observations one GP step is fitted on (none: all of them, each step slower than the last)",
        "min": 2})
    # hybrid stage (oracle "train"): no CLI flags (pipeline YAML and the Python API)
    top_k: int = field(default=4, metadata={"cli": False})
    asha_epochs: int | None = field(default=None, metadata={"cli": False})
    grace_period: int = field(default=1, metadata={"cli": False})
    reduction_factor: int = field(default=2, metadata={"cli": False})
    cpus_per_trial: float = field(default=1.0, metadata={"cli": False})
    gpus_per_trial: float = field(default=0.0, metadata={"cli": False})

    def __post_init__(self) -> None:
        super().__post_init__()
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
                          results_path=out.trials_path, address=c.address,  # the queries' cluster
                          check_resources=lambda: require_trial_resources(c))  # once Ray is up, before any trial
    best = best_trial(trials)
    return {"arch_index": dict(zip(archs, top))[best.arch], "arch": best.arch, "value": best.val_acc,
            "epochs": best.epochs, "max_epochs": epochs, "checkpoint": best.checkpoint,
            "trials": [t.as_dict() for t in trials]}


def _after(c: HNASSearchConfig, search: HNAS, out: SearchDir, loaded: LoadedPool,
           result: dict[str, Any]) -> dict[str, Any]:
    """With the ``train`` oracle and ``top_k > 0``: the hybrid ASHA stage, whose best trial is the answer (the BO
    pick stays in ``bo_arch_index`` / ``bo_value``)."""
    if c.oracle == "train" and c.top_k > 0:
        hybrid = _asha_stage(c, search, out, loaded.space, loaded.arch_of())
        result.update(bo_arch_index=result["arch_index"], bo_value=result["value"], asha=hybrid,
                      arch_index=hybrid["arch_index"], arch=hybrid["arch"], value=hybrid["value"],
                      final=hybrid["value"])
    return result


def _step_line(row: Mapping[str, Any]) -> str:
    return (f"step {row['step']} t={row['weights'][0]:.3f} c={row['weights'][1]:.2f} arch {row['arch_index']} "
            f"value {row['value']:.3f} cost {row['cumulative_cost']:.1f}")


SPEC = SearchSpec(HNASSearchConfig, HNAS, lambda c, pool, oracle: HNAS(pool, oracle, **c.search_kwargs()),
                  metrics=lambda c: (c.metric, KAPPA_METRIC), check=require_trial_resources, after=_after,
                  step_line=_step_line)


def run_hnas_search(cfg: HNASSearchConfig | Mapping[str, Any],
                    progress_callback: Callable[..., None] | None = None) -> dict[str, Any]:
    """Run (or resume) HNAS as configured by ``cfg`` (:func:`raynas.search.session.run_query_session`); returns the
    result. ``cfg`` is an :class:`HNASSearchConfig` (a mapping is converted strictly, :func:`raynas.config.from_dict`)."""
    return SPEC.run(cfg, progress_callback)
