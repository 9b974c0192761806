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

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import pyarrow as pa

from raynas.config import from_dict, to_dict
from raynas.errors import ConfigError, RaynasError, SearchError, StoreError
from raynas.oracles.base import Oracle, benchmark_answer, create_oracle
from raynas.parallel import plan_run
from raynas.search.bo import GP_MAX_POINTS
from raynas.search.pool import CandidatePool
from raynas.spaces import DEFAULT_SPACE, benchmark_for_space, create_benchmark, list_benchmarks

# split_runs stays importable from here: tests and scripts import it
from raynas.store import SearchDir, check_runs, read_scores_wide, split_runs, stored_space  # noqa: F401

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


def run_space(scores: str | Path | Sequence[str | Path]) -> str:
    """The space of the (first) score run (:func:`raynas.store.stored_space`), ``DEFAULT_SPACE`` when neither
    its config nor its rows say."""
    return stored_space(scores) or DEFAULT_SPACE


def oracle_name(name: str | None, score_cfg: Mapping[str, Any]) -> str | None:
    """The oracle a search uses: ``name``, or (None) the name of the scored space's benchmark table (None when
    the space has none). The resolved name is what a search directory's config records, so a search saved
    before the default was spelled None still resumes."""
    if name is not None:
        return name
    bench = benchmark_for_space(str(score_cfg.get("space", DEFAULT_SPACE)))
    return bench.name if bench is not None else None


def make_oracle(name: str | None, score_cfg: Mapping[str, Any], seed: int,
                options: dict[str, Any] | None = None) -> Oracle:
    """``train``: real short training of the arch (space taken from the scores); a benchmark's name (``raynas list
    benchmarks``): its table, which must be the scored space's; None: the scored space's benchmark table."""
    options = dict(options or {})
    space = str(score_cfg.get("space", DEFAULT_SPACE))
    name = oracle_name(name, score_cfg)
    if name is None:
        raise ConfigError(f"the default table oracle cannot answer for space {space!r}: it has no benchmark "
                          "table; use --oracle train")
    if name == "train":
        return training_oracle_factory(space, seed, options)().check_network()  # before any query
    if options:
        raise ConfigError(f"oracle {name!r} takes no options, got {sorted(options)}")
    if name in list_benchmarks() and create_benchmark(name).space != space:  # indices of another space
        raise ConfigError(f"the {name} table oracle cannot answer for space {space!r}; use --oracle train")
    return create_oracle(name)


def training_oracle_factory(space: str, seed: int, options: Mapping[str, Any] | None = None,
                            **overrides: Any) -> Callable[[], Oracle]:
    """A picklable zero-argument factory of the ``train`` oracle :func:`make_oracle` builds (what each Ray query
    worker calls to build its own copy); ``overrides`` replace options (e.g. ``device="auto"`` on GPU workers)."""
    import functools

    from raynas.oracles.training import TrainingOracle

    opts = {**dict(options or {}), **overrides}
    train_cfg = dict(opts.pop("train_cfg", None) or {})
    train_cfg.setdefault("seed", seed)
    return functools.partial(TrainingOracle, space=space, train_cfg=train_cfg, **opts)


def start_progress(progress_callback: Callable[..., None] | None, search: Any, oracle: Oracle) -> None:
    """Report ``(queries, budget)`` as ``search`` starts (so a progress bar's clock and rate start here, not
    at the first answer, minutes later) and, when ``oracle`` trains in this process (its ``on_epoch`` hook,
    :class:`raynas.oracles.training.TrainingOracle`) and the callback takes a ``detail`` keyword, every epoch of
    a training query: ``progress_callback(queries, budget, detail="arch 13714 epoch 2/3, val acc 41.2%")``."""
    if progress_callback is None:
        return
    progress_callback(search.queries, search.budget)
    if not hasattr(oracle, "on_epoch") or not _takes_detail(progress_callback):
        return

    def on_epoch(index: int, epoch: int, epochs: int, acc: float) -> None:
        detail = f"arch {index} epoch {epoch}/{epochs}" + (f", val acc {acc:.1f}%" if epoch else "")
        progress_callback(search.queries, search.budget, detail=detail)

    oracle.on_epoch = on_epoch  # type: ignore[attr-defined]


def _takes_detail(callback: Callable[..., None]) -> bool:
    """Whether ``callback`` accepts a ``detail`` keyword (the CLI's progress bar does; a plain
    ``(done, total)`` callback is not sent it)."""
    import inspect

    try:
        params = inspect.signature(callback).parameters.values()
    except (TypeError, ValueError):  # a builtin or C callable without a signature: send it nothing new
        return False
    return any(p.name == "detail" or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


#: where a search's queries run: ``local`` (this process, one at a time) or ``ray`` (one Ray task per query)
QUERY_BACKENDS = ("local", "ray")


@dataclass(frozen=True)
class QueryPlacement:
    """Where the queries of a real-training search run (the same fields in RoBoT's and HNAS's configs).
    ``query_backend="ray"`` runs each ``train`` query as a Ray task with ``gpus_per_query`` GPUs and
    ``cpus_per_query`` CPUs, on the cluster at ``address`` (None: a local Ray), retried ``query_retries`` times
    when its worker dies. A table oracle always answers in this process."""

    query_backend: str = "local"
    address: str | None = None
    gpus_per_query: float = 0.0
    cpus_per_query: float = 1.0
    query_retries: int = 2

    @classmethod
    def of(cls, c: Any) -> "QueryPlacement":
        p = cls(**{f.name: getattr(c, f.name) for f in dataclasses.fields(cls)})
        if p.query_backend not in QUERY_BACKENDS:
            raise ConfigError(f"query_backend must be one of {QUERY_BACKENDS}, got {p.query_backend!r}")
        if p.gpus_per_query < 0 or p.cpus_per_query < 0 or p.query_retries < 0:
            raise ConfigError("gpus_per_query, cpus_per_query and query_retries must be >= 0")
        return p


def check_q(q: Any) -> None:
    if not isinstance(q, int) or isinstance(q, bool) or q < 1:
        raise ConfigError(f"q must be an integer >= 1, got {q!r}")


def check_query_resources(c: Any) -> None:
    """Refuse, before any work, query tasks that could never run: ``c`` (a config with :class:`QueryPlacement`'s
    fields and ``oracle``) puts ``train`` queries on Ray tasks that ask more than any node has. A local Ray is judged
    without starting it; a named cluster once :func:`run_with_executor` has attached to it."""
    placement = QueryPlacement.of(c)
    if placement.query_backend == "ray" and c.oracle == "train":
        from raynas.parallel.queries import require_query_resources

        require_query_resources(placement.cpus_per_query, placement.gpus_per_query, placement.address)


def run_with_executor(search: Any, c: Any, space: str, on_step: Callable[[dict[str, Any]], None],
                      state: Path) -> dict[str, Any]:
    """``search.run(...)`` with its queries where ``c`` (a config with :class:`QueryPlacement`'s fields,
    ``oracle``, ``oracle_options`` and ``seed``) puts them: Ray tasks for the ``train`` oracle with
    ``query_backend="ray"`` (Ray attached or started here, and shut down again if started here; a request no node
    can meet is refused before the first task, :class:`raynas.parallel.queries.RayQueryExecutor`), else this
    process."""
    placement = QueryPlacement.of(c)
    if placement.query_backend != "ray" or c.oracle != "train":
        if placement.query_backend == "ray":
            log.info("oracle %s answers from a table: its queries run in this process", c.oracle)
        return search.run(on_step=on_step, state_path=state)
    from raynas.parallel.queries import RayQueryExecutor, attach_ray

    extra = {"device": "auto"} if placement.gpus_per_query > 0 else {}
    factory = training_oracle_factory(space, c.seed, c.oracle_options, **extra)
    started = attach_ray(placement.address)
    try:
        ex = RayQueryExecutor(factory, num_cpus=placement.cpus_per_query, num_gpus=placement.gpus_per_query,
                              max_retries=placement.query_retries)
        log.info("%s: up to %d queries in flight as Ray tasks (%.2g GPU, %.2g CPU each)", search.label, search.q,
                 placement.gpus_per_query, placement.cpus_per_query)
        return search.run(on_step=on_step, state_path=state, executor=ex)
    finally:
        if started:
            from raynas.parallel.queries import shutdown_ray

            shutdown_ray()


def resume_or_start(out: "SearchDir", c: Any, started: bool, load: Callable[[Path], Any],
                    start: Callable[[], Any]) -> Any:
    """The search to run in ``out``: ``load(state path)`` when ``c`` resumes a search stored there (``started``:
    its config was stored before this call), else ``start()``. A resumed search whose state is missing or cannot
    be loaded is a :class:`StoreError` naming what is left and ``--restart`` (:meth:`SearchDir.cannot_resume`),
    never a silent restart from step 0."""
    if not c.resume or c.restart or not (started or out.has_state()):
        return start()
    if not out.has_state():
        raise out.cannot_resume(f"its search state ({out.state_path.name}) is missing")
    try:
        return load(out.state_path)
    except StoreError as e:
        raise out.cannot_resume(str(e)) from None


def typed_config_dict(cls: type) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    """A normaliser for :func:`raynas.store.prepare_search`: a stored search config read back through ``cls``
    (so an older spelling of the same config, e.g. metrics as a comma string, compares equal to today's)."""

    def normalise(stored: Mapping[str, Any]) -> dict[str, Any]:
        try:
            return to_dict(from_dict(cls, dict(stored)))
        except RaynasError:  # not a config of this search at all: compared as stored, so the keys are named
            return dict(stored)

    return normalise


#: scored metrics RoBoT leaves out when it searches "whatever the scoring run computed" (:func:`searched_metrics`):
#: ``params`` is scored as the report's model-size baseline, not as one of the training-free estimators RoBoT
#: combines. Naming it explicitly (``metrics="params,snip"``) still searches it.
NOT_SEARCHED = ("params",)


def searched_metrics(scored: Sequence[str]) -> tuple[str, ...]:
    """The metrics RoBoT searches over when they are those a scoring run computed: all but :data:`NOT_SEARCHED`,
    in the given order."""
    return tuple(m for m in scored if m not in NOT_SEARCHED)


@dataclass(frozen=True)
class RobotSearchConfig:
    """``raynas search robot``: the pool (``scores``, one run or several joined with ``:``), the search
    directory ``out`` and the search's settings. ``metrics`` is a tuple of names; a comma-separated string
    (the CLI's and YAML's form) is normalised to one here, so every later step sees the tuple.

    The defaults (``transform="none"``, ``kernel="rbf_ard"``, and RoBoTConfig's UCB, ``n_init=3`` Sobol points,
    ``bo_patience=10``) were checked with ``scripts/bench_search_robustness.py`` on 16 pools, not on one (T=20,
    seeds 10-19, NAS-Bench-201 table oracle; README "Search robustness"). They reach the pool's attainable answer in
    10/10 runs on 13: the real NASLib scores of the 725-arch NB-Suite-Zero table, its six seeded sub-pools of
    448-647 archs and four of six of 126-289 archs, and two digits pools of RoBoT's six metrics (150 and 1000
    archs). They miss it on a 189-arch real sub-pool (5/10; the authors' loop 8/10), a 126-arch one (9/10; 10/10)
    and a 1000-arch digits pool of fisher, naswot, ntk_trace, ntk_cond and linear_regions (3/10, regret 0.62; the
    authors' loop 2/10, regret 1.03). What mattered:

    * the GP: the reference's isotropic Matern-5/2 with fixed noise and one random initial point
      (``kernel="matern_iso"``, ``n_init=1``) drops to 9/10 on six of the seven large real pools, with one run at
      86.43 % on the 448-arch sub-pool (regret 0.78 against 0.00);
    * the transform: ``signed_log`` drops 10 of the 11 real pools it ran on to 3/10-8/10 (regret up to 2.31) and
      the digits pools of the six metrics to 9/10 and 8/10, but lifts the 1000-arch digits pool to 9/10 (its
      metrics span no more decades than the real pools' do, so the scores do not say which transform to take).
      No single transform wins on every pool, so the default stays ``none``;
    * the acquisition: ``logei`` is no better than UCB (2/10 against 3/10 on that digits pool), and a larger
      acquisition search (2,048 raw samples, 10 restarts) no better than the default's;
    * ties: several BO points share the best value as a rule, and the one taken as w* decides a run whose top arch
      sits at the edge of the greedy queries, but ``tie_break="latest"`` (the reference code's rule) and the
      default ``"earliest"`` both hold 298 of 320 runs over seeds 0-19 on the 16 pools (and 22 against 23, 29
      against 28, 10 against 9 of 30 on the three pools the default misses), so the default stayed;
    * duplicates: a repeated arch must stay a BO observation (it is what teaches the GP the plateau): left out,
      the BO phase ends after about three distinct queries and the 13 real pools drop to 5/10-8/10;
    * the BO phase's length: a shorter one (``bo_patience`` 3 or 5, or 6 or 8 distinct BO queries) leaves more
      greedy queries but loses runs on the large real pools; 5 Sobol points instead of 3 lose runs on four
      pools, and 1 instead of 3 on each of the six large ones it ran on.

    On 30 seeds the authors' loop is ahead on the two small real pools (27/30 against 22/30 on the 189-arch
    one) and level on the digits pool (9/30 against 10/30); no setting tried, theirs included, holds 95 % there."""

    scores: str
    out: str
    oracle: str | None = None  # None: the scored space's benchmark table (make_oracle)
    budget: int = 20
    metrics: tuple[str, ...] | str = ROBOT_METRICS
    seed: int = 0
    bo_iters: int | None = None
    transform: str = "none"
    resume: bool = False
    #: start over in ``out`` whatever is stored there (its config, state and result are replaced)
    restart: bool = False
    oracle_options: dict | None = None
    kernel: str = "rbf_ard"
    #: Sobol points before the GP, the acquisition, the BO phase's patience (None: never) and the GP window
    #: (None: all observations): RoBoTConfig's fields, same defaults
    n_init: int = 3
    acquisition: str = "ucb"
    bo_patience: int | None = 10
    gp_max_points: int | None = GP_MAX_POINTS
    #: which BO observation of the best value is w* ("latest" or "earliest"): RoBoTConfig's field
    tie_break: str = "earliest"
    allow_incomplete: bool = False
    #: proposals in flight at once (q-batch BO; 1: sequential)
    q: int = 1
    # where the queries run (QueryPlacement)
    query_backend: str = "local"
    address: str | None = None
    gpus_per_query: float = 0.0
    cpus_per_query: float = 1.0
    query_retries: int = 2

    def __post_init__(self) -> None:
        check_q(self.q)
        QueryPlacement.of(self)
        names = self.metrics.split(",") if isinstance(self.metrics, str) else self.metrics
        object.__setattr__(self, "metrics", tuple(m.strip() for m in names if m.strip()))
        if not self.metrics:
            raise ConfigError("robot: metrics must name at least one metric")
        if self.transform not in ("none", "signed_log"):
            raise ConfigError(f"robot: transform must be 'none' or 'signed_log', got {self.transform!r}")
        from raynas.search.robot import RoBoTConfig

        # the search's own checks, before any score is read
        RoBoTConfig(budget=self.budget, bo_iters=self.bo_iters, n_init=self.n_init, seed=self.seed,
                    acquisition=self.acquisition, kernel=self.kernel, bo_patience=self.bo_patience,  # type: ignore[arg-type]
                    q=self.q, gp_max_points=self.gp_max_points, tie_break=self.tie_break)  # type: ignore[arg-type]


def run_robot_search(cfg: RobotSearchConfig | Mapping[str, Any],
                     progress_callback: Callable[..., None] | None = None) -> dict[str, Any]:
    """Run (or resume) RoBoT over the pool scored in ``cfg.scores``; returns the result dict with the trace.

    ``cfg`` is a :class:`RobotSearchConfig` (a mapping is converted strictly, :func:`raynas.config.from_dict`).
    Beyond :meth:`RoBoT.result` (effective ``budget``, ``budget_requested``, ``bo_iters``) the result holds ``pool``
    (:func:`pool_summary`), ``space`` and ``benchmark`` (the space's benchmark's ground truth of the answer,
    :func:`raynas.oracles.base.benchmark_answer`; None for other spaces).
    """
    c = cfg if isinstance(cfg, RobotSearchConfig) else from_dict(RobotSearchConfig, cfg)
    check_query_resources(c)  # before any work (a named cluster: once attached)
    loaded = load_checked_pool(c.scores, c.metrics, c.transform, allow_incomplete=c.allow_incomplete)
    pool, wide, score_cfg = loaded.pool, loaded.wide, loaded.config
    c = dataclasses.replace(c, oracle=oracle_name(c.oracle, score_cfg))  # the config records the oracle used
    oracle = make_oracle(c.oracle, score_cfg, c.seed, c.oracle_options)
    where = SearchDir(Path(c.out))
    with where.claim():  # one writer; refused before the first state save, the directory is left as it was
        return _robot(c, where, pool, wide, score_cfg, oracle, loaded, progress_callback)


def _robot(c: RobotSearchConfig, where: SearchDir, pool: CandidatePool, wide: pa.Table, score_cfg: dict[str, Any],
           oracle: Oracle, loaded: LoadedPool, progress_callback: Callable[..., None] | None) -> dict[str, Any]:
    from raynas.search.robot import RoBoT

    started = where.resumable()
    out = where.prepare(to_dict(c), c.resume, normalise=typed_config_dict(RobotSearchConfig), restart=c.restart)
    state = out.state_path

    def load(path: Path) -> RoBoT:
        s = RoBoT.from_state(path, pool, oracle)
        log.info("resumed RoBoT at step %d", len(s.trace))
        return s

    search = resume_or_start(out, c, started, load, lambda: RoBoT(
        pool, oracle, budget=c.budget, bo_iters=c.bo_iters, seed=c.seed, kernel=c.kernel,  # type: ignore[arg-type]
        n_init=c.n_init, acquisition=c.acquisition, bo_patience=c.bo_patience,  # type: ignore[arg-type]
        gp_max_points=c.gp_max_points, q=c.q, tie_break=c.tie_break))  # type: ignore[arg-type]

    def on_step(row: dict[str, Any]) -> None:
        log.info("step %d %s arch %d value %.3f cost %.1f", row["step"], row["kind"], row["arch_index"],
                 row["value"], row["cumulative_cost"])
        if progress_callback is not None:
            progress_callback(search.queries, search.budget)

    space = str(score_cfg.get("space", DEFAULT_SPACE))
    start_progress(progress_callback, search, oracle)
    result = run_with_executor(search, c, space, on_step, state)  # the state is saved after every tell
    arch_of = dict(zip(wide.column("arch_index").to_pylist(), wide.column("arch").to_pylist()))
    result["arch"] = arch_of.get(result["arch_index"])
    result["metrics"] = list(c.metrics)
    result["space"] = space
    result["pool"] = loaded.summary()
    answer = benchmark_answer(space, result["arch_index"])
    result["benchmark"] = answer.as_dict() if answer is not None else None
    result["trace"] = search.trace
    out.write_result({k: v for k, v in result.items()})
    return result
