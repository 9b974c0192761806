"""One query-search session: pool -> oracle -> search directory -> new or resumed search -> executor -> result.

Every query search (a :class:`~raynas.search.base.QuerySearch` over a :class:`~raynas.search.pool.CandidatePool`
answered by an oracle) is run the same way, by :func:`run_query_session`; a search contributes only its typed
config (a :class:`QuerySearchConfig` subclass: the settings every query search shares are spelled once, here) and
how to build itself from a pool and an oracle (:class:`SearchSpec`). The session owns the rest, in this order, so
bad input is refused before any work: the config's own checks, the query tasks' resources, the pool read once and
checked for completeness (:func:`load_checked_pool`; the open table travels down, nothing reopens the runs), the
oracle built, the search directory claimed (one writer; a refused run leaves it as it was), its stored config
compared (resume) or written, the search resumed from its state or started, run where its queries go (this
process or Ray tasks, :func:`run_with_executor`), an optional stage after the queries (HNAS's ASHA), and the
result written with the pool, the space and the benchmark's answer.

A pool is only searched from *complete* score runs (:meth:`raynas.store.Store.completeness` planned by
:func:`raynas.parallel.plan_run`: a usable config, no missing, corrupt or failed shard). An incomplete run is an
:class:`IncompleteRunError` naming what is wrong unless ``allow_incomplete`` is set; either way the result's
``pool`` entry states the pool size used and every problem of every run.

Where a new query search goes: its module (the :class:`QuerySearch` subclass and its own settings), a config class
deriving :class:`QuerySearchConfig` and a :class:`SearchSpec` beside it, and one line in
:mod:`raynas.search.registry`; the CLI's flags are generated from the config (:mod:`raynas.cli.search_cmd`).
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
from raynas.search.base import QuerySearch
from raynas.search.defaults import (  # noqa: F401  (re-exported: searches import them from here)
    DEFAULT_SEARCH_METRICS, ROBOT_METRICS, DefaultMetrics,
)
from raynas.search.pool import CandidatePool
from raynas.spaces import DEFAULT_SPACE, benchmark_for_space, create_benchmark, create_space, list_benchmarks
from raynas.store import SearchDir
from raynas.store.published import PublishedScores, is_published
from raynas.store.runs import open_runs, read_stores_wide

if TYPE_CHECKING:
    from raynas.oracles.base import BenchmarkAnswer
    from raynas.tasks import Task
    from raynas.store import RunCompleteness

log = logging.getLogger(__name__)


class IncompleteRunError(SearchError):
    """A score run to search is incomplete (config, shards) and ``allow_incomplete`` was not given."""

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
    """What :func:`load_checked_pool` read: the pool, its wide table, the first run's config, the runs' state, and
    the optional (default) metrics it left out, each with why (``dropped``)."""

    pool: CandidatePool
    wide: pa.Table
    config: dict[str, Any]
    checks: tuple["RunCompleteness", ...]
    dropped: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        out = pool_summary(self.pool, self.checks)
        if self.published:  # no run to check: the table somebody else scored, named by its spec
            out["published"] = str(self.config.get("source"))
        return out

    @property
    def space(self) -> str:
        """The space of the scores: the (first) run's config, else its rows' ``space``, else ``DEFAULT_SPACE``."""
        if self.config.get("space"):
            return str(self.config["space"])
        if "space" in self.wide.column_names and self.wide.num_rows:
            return str(self.wide.column("space")[0].as_py())
        return DEFAULT_SPACE

    @property
    def published(self) -> bool:
        """Whether the pool is a published table (no score run behind it)."""
        return bool(self.config.get("published"))

    def arch_of(self) -> dict[int, str]:
        """``arch_index`` -> the arch's string, for every arch of the pool's table."""
        return dict(zip(self.wide.column("arch_index").to_pylist(), self.wide.column("arch").to_pylist()))


def pool_answer(loaded: LoadedPool, arch_index: int | None) -> "BenchmarkAnswer | None":
    """The benchmark's answer for a search's answer: the benchmark a published pool names (a sample table answers
    only for its archs, and says so for others), else the scored space's (None without one)."""
    name = loaded.config.get("benchmark") if loaded.published else None
    if not name:
        return benchmark_answer(loaded.space, arch_index)
    if arch_index is None:
        return None
    from raynas.oracles.base import BenchmarkAnswer

    a = create_benchmark(str(name)).answer(int(arch_index))  # never raises: one line says what is unknown
    return BenchmarkAnswer(loaded.space, a.arch_index, a.line, a.value, a.rank, a.total, a.table)


def load_checked_pool(scores: str | Path | Sequence[str | Path], metrics: Sequence[str], transform: str = "none",
                      *, allow_incomplete: bool = False, optional: Sequence[str] = ()) -> LoadedPool:
    """Candidate pool over ``metrics`` from one or several runs (:func:`raynas.store.read_scores_wide`) or a
    published table.

    Args:
        scores: a run directory, several (a sequence or joined with ``:``), or a published table's spec.
        metrics: the pool's columns.
        transform: the pool's score transform.
        allow_incomplete: search an incomplete run (else :class:`IncompleteRunError`).
        optional: those of ``metrics`` that are left out (with one log line naming them and why) when the scores
            lack them or they do not apply to the scored task: a search's defaults, which the user did not ask
            for (``--metrics`` not given). Every other metric must be there.
    Returns:
        the :class:`LoadedPool`; its ``dropped`` names the optional metrics left out.
    Raises:
        SearchError: a metric that is not optional is missing from the scores (the message lists the stored ones)
            or does not apply to the task the run scored (its rows are ``not_applicable``: the reason), or no
            metric is left.
        IncompleteRunError: an incomplete run without ``allow_incomplete``.
    """
    if is_published(scores):  # a published table (SOURCE:SPACE:DATASET): read-only, complete by definition
        source = PublishedScores(str(scores))
        wide, cfg = source.read_wide(), source.load_config()
        return _checked(scores, wide, cfg, metrics, transform, (), allow_incomplete, optional)
    stores = open_runs(scores, planner=plan_run)  # each run opened once; its store is handed down
    checks = tuple(store.completeness() for store in stores)
    try:
        wide, cfg = read_stores_wide(stores)
    except SearchError as e:
        bad = [c for c in checks if not c.complete]
        if not bad:
            raise
        raise IncompleteRunError(f"{e}; the score run is incomplete: {_problems(bad)}") from None
    return _checked(scores, wide, cfg, metrics, transform, checks, allow_incomplete, optional)


def scored_task(cfg: Mapping[str, Any]) -> "Task | None":
    """The task a score run's rows were scored on (its space's task named by ``space_kwargs['task']``, shaped for
    its image size), or None: classification (a space whose only task it is), a published table (its columns are
    all it has), or a space this process cannot build (a user's space whose module is not imported).

    Args:
        cfg: the run's (flat) config, as :class:`LoadedPool` holds it.
    """
    if cfg.get("published") or not cfg.get("space"):
        return None
    kwargs = cfg.get("space_kwargs") if isinstance(cfg.get("space_kwargs"), Mapping) else {}
    try:
        space = create_space(str(cfg["space"]))
        if tuple(space.task_names()) == ("classification",):
            return None
        return space.task(kwargs.get("task"), image_size=cfg.get("image_size"))
    except RaynasError:  # not buildable here: the stored values are all there is to go by
        return None


def _checked(scores: Any, wide: pa.Table, cfg: dict[str, Any], metrics: Sequence[str], transform: str,
             checks: tuple["RunCompleteness", ...], allow_incomplete: bool, optional: Sequence[str] = ()
             ) -> LoadedPool:
    have = sorted(c for c in wide.column_names if c not in _KEYS)
    missing = [m for m in metrics if m not in wide.column_names]
    # metrics whose rows are not_applicable to the run's task: a column of nothing but nulls, which a search must
    # not read as a score (a metric this process does not know, a plugin not imported, is left to its column)
    from raynas.metrics import not_applicable_reasons

    task = scored_task(cfg)
    na = {} if task is None else not_applicable_reasons([m for m in metrics if m in wide.column_names], task,
                                                         skip_unknown=True)
    dropped = {m: "not stored" for m in missing if m in optional}
    dropped.update({m: f"not applicable to task {task.name!r}" for m in na if m in optional})  # type: ignore[union-attr]
    missing = [m for m in missing if m not in dropped]
    if missing:
        raise SearchError(f"scores in {scores} lack metric(s) {missing}; stored metrics: {have}")
    na = {m: why for m, why in na.items() if m not in dropped}
    if na:
        whys = dict.fromkeys(why.removeprefix(f"{m} ") for m, why in na.items())  # one line, each reason once
        raise SearchError(f"cannot search {scores} over {', '.join(na)}: not applicable to the scored task (its rows "
                          f"are not_applicable): {'; '.join(whys)}")
    kept = [m for m in metrics if m not in dropped]
    if dropped:
        if not kept:
            raise SearchError(f"scores in {scores} hold none of the default metrics ({', '.join(metrics)}; "
                              f"{', '.join(f'{m}: {why}' for m, why in dropped.items())}); name the metrics to "
                              f"search with --metrics (stored: {have})")
        log.warning("searching the default metrics %s holds: %s; left out %s (name them with --metrics to require "
                    "them)", scores, ", ".join(kept), ", ".join(f"{m} ({why})" for m, why in dropped.items()))
    pool = CandidatePool.from_table(wide, kept, transform, allow_no_metrics=not kept)
    require_complete(checks, allow_incomplete, len(pool))
    return LoadedPool(pool, wide, cfg, checks, dropped)


def load_pool(scores: str | Path | Sequence[str | Path], metrics: list[str], transform: str = "none", *,
              allow_incomplete: bool = False) -> tuple[CandidatePool, pa.Table, dict]:
    """``(pool, wide table, config)`` of :func:`load_checked_pool` (incomplete runs refused by default)."""
    got = load_checked_pool(scores, metrics, transform, allow_incomplete=allow_incomplete)
    return got.pool, got.wide, got.config


def oracle_name(name: str | None, score_cfg: Mapping[str, Any]) -> str | None:
    """The oracle a search uses: ``name``, or (None) the name of the scored space's benchmark table (None when
    the space has none). The resolved name is what a search directory's config records, so a search saved
    before the default was spelled None still resumes."""
    if name is not None:
        return name
    if score_cfg.get("benchmark"):  # a published table names the benchmark that answers for its archs
        return str(score_cfg["benchmark"])
    bench = benchmark_for_space(str(score_cfg.get("space", DEFAULT_SPACE)))
    return bench.name if bench is not None else None


def make_oracle(name: str | None, score_cfg: Mapping[str, Any], seed: int,
                options: dict[str, Any] | None = None) -> Oracle:
    """``train``: real short training of the arch (space taken from the scores); a benchmark's name (``raynas list
    benchmarks``): its table, which must be the scored space's; None: the scored space's benchmark table."""
    options = dict(options or {})
    space = str(score_cfg.get("space", DEFAULT_SPACE))
    name = oracle_name(name, score_cfg)
    task = scored_task(score_cfg)  # None unless the space has several tasks (its tables are per task)
    if name is None:
        samples = [b for b in list_benchmarks() if task is not None and create_benchmark(b).space == space
                   and create_benchmark(b).default_dataset == task.name]
        hint = (f"; a sample table of its task {task.name!r} answers for the archs it holds: --oracle {samples[0]}"
                if samples and task is not None else "")
        raise ConfigError(f"the default table oracle cannot answer for space {space!r}: it has no benchmark "
                          f"table{hint}; or use --oracle train")
    if name == "train":
        return training_oracle_factory(space, seed, options)().check_network()  # before any query
    if options:
        raise ConfigError(f"oracle {name!r} takes no options, got {sorted(options)}")
    if name in list_benchmarks():
        bench = create_benchmark(name)
        if bench.space != space:  # indices of another space
            raise ConfigError(f"the {name} table oracle cannot answer for space {space!r}; use --oracle train")
        # a multi-task space's tables are per task: another task's table would rank the archs by the wrong metric
        if task is not None and bench.default_dataset != task.name \
                and bench.default_dataset in create_space(space).task_names():
            raise ConfigError(f"the {name} table answers task {bench.default_dataset!r}, the scores are of task "
                              f"{task.name!r}; use that task's table or --oracle train")
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

    query_backend: str = dataclasses.field(default="local", metadata={
        "help": "where --oracle train queries run: this process (local) or one Ray task each", "choices": QUERY_BACKENDS})
    address: str | None = dataclasses.field(default=None, metadata={
        "help": "Ray cluster of the query tasks with --query-backend ray (auto: the running one; default: a local Ray)"})
    gpus_per_query: float = dataclasses.field(default=0.0, metadata={"help": "GPUs of one query task"})
    cpus_per_query: float = dataclasses.field(default=1.0, metadata={"help": "CPUs of one query task"})
    query_retries: int = dataclasses.field(default=2, metadata={"help": "re-runs of a query whose worker died"})

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
                      state: "SearchDir") -> dict[str, Any]:
    """``search.run(...)`` with its queries where ``c`` (a config with :class:`QueryPlacement`'s fields,
    ``oracle``, ``oracle_options`` and ``seed``) puts them: Ray tasks for the ``train`` oracle with
    ``query_backend="ray"`` (Ray attached or started here, and shut down again if started here; a request no node
    can meet is refused before the first task, :class:`raynas.parallel.queries.RayQueryExecutor`), else this
    process."""
    placement = QueryPlacement.of(c)
    if placement.query_backend != "ray" or c.oracle != "train":
        if placement.query_backend == "ray":
            log.info("oracle %s answers from a table: its queries run in this process", c.oracle)
        return search.run(on_step=on_step, store=state)
    from raynas.parallel.queries import RayQueryExecutor, attach_ray

    extra = {"device": "auto"} if placement.gpus_per_query > 0 else {}
    factory = training_oracle_factory(space, c.seed, c.oracle_options, **extra)
    started = attach_ray(placement.address)
    try:
        ex = RayQueryExecutor(factory, num_cpus=placement.cpus_per_query, num_gpus=placement.gpus_per_query,
                              max_retries=placement.query_retries)
        log.info("%s: up to %d queries in flight as Ray tasks (%.2g GPU, %.2g CPU each)", search.label, search.q,
                 placement.gpus_per_query, placement.cpus_per_query)
        return search.run(on_step=on_step, store=state, executor=ex)
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



@dataclass(frozen=True)
class _PoolAndOut:
    """The two settings every query search requires, first (so ``RobotSearchConfig("runs/pool", "s")`` reads as
    it always did): the pool and the search directory."""

    scores: str = dataclasses.field(metadata={
        "help": "the pool: a run directory written by `raynas score`, several joined with ':' (the archs scored in "
                "all of them), or a published table SOURCE:SPACE:DATASET (NAS-Bench-Suite-Zero: nbsz:<space>:cifar10; "
                "docs/commands.md)"})
    out: str = dataclasses.field(metadata={"help": "search directory (config, state, trace, result)"})


@dataclass(frozen=True)
class QuerySearchConfig(QueryPlacement, _PoolAndOut):
    """The settings every query search shares, spelled once; a search's config derives from it and adds its own
    (``raynas search METHOD --help`` lists them, generated from the fields, :mod:`raynas.cli.search_cmd`).

    The pool (``scores``: a score run, several joined with ``:``, or a published table such as
    ``nbsz:<space>:cifar10``), the search directory ``out``, the oracle (None: the scored space's benchmark table;
    ``train``: real short training with ``oracle_options``), the budget ``T`` of distinct queries, the ``seed``,
    whether to ``resume`` the search stored in ``out`` or ``restart`` it, whether an incomplete score run may be
    searched, ``q`` proposals in flight at once, and where the queries run (:class:`QueryPlacement`'s fields)."""

    oracle: str | None = dataclasses.field(default=None, metadata={
        "help": "a benchmark table (`raynas list benchmarks`; default: the scored space's) or train (real short "
                "training)"})
    budget: int = dataclasses.field(default=20, metadata={"help": "T: distinct architectures queried"})
    seed: int = dataclasses.field(default=0, metadata={"help": "the search's seed (and the training oracle's)"})
    resume: bool = dataclasses.field(default=False, metadata={
        "help": "continue a killed search exactly where it stopped"})
    restart: bool = dataclasses.field(default=False, metadata={
        "help": "start the search over in --out, replacing what is stored there (its config, state and result): the "
                "way out when a resume finds the state missing or damaged"})
    oracle_options: dict | None = dataclasses.field(default=None, metadata={"cli": "training"})
    allow_incomplete: bool = dataclasses.field(default=False, metadata={
        "help": "search a score run with a missing config or missing, corrupt or failed shards (the result lists "
                "them); without it such a run is refused"})
    q: int = dataclasses.field(default=1, metadata={"help": "proposals in flight at once (1: sequential)"})

    def __post_init__(self) -> None:
        check_q(self.q)
        QueryPlacement.of(self)


def normalise_metrics(c: Any, who: str) -> None:
    """``c.metrics`` (a comma string, the CLI's and YAML's form, or a sequence) as a tuple of stripped names, set on
    the frozen config ``c``; an empty list is a :class:`ConfigError` naming the search ``who``. The search's
    default (a :class:`DefaultMetrics`, the user named none) is kept as it is, marked, for the session."""
    if isinstance(c.metrics, DefaultMetrics):
        return
    names = c.metrics.split(",") if isinstance(c.metrics, str) else c.metrics
    object.__setattr__(c, "metrics", tuple(m.strip() for m in names if m.strip()))
    if not c.metrics:
        raise ConfigError(f"{who}: metrics must name at least one metric")


def _step_line(row: Mapping[str, Any]) -> str:
    return (f"step {row['step']} {row['kind']} arch {row['arch_index']} value {row['value']:.3f} "
            f"cost {row['cumulative_cost']:.1f}")


@dataclass(frozen=True)
class SearchSpec:
    """What a query search brings to :func:`run_query_session`.

    Attributes:
        config_cls: its typed config (a :class:`QuerySearchConfig` subclass).
        search_cls: the :class:`QuerySearch` subclass (its ``from_state`` resumes a saved search).
        build: ``build(config, pool, oracle)`` -> a new search.
        metrics: ``metrics(config)`` -> the pool's columns (default: the config's ``metrics``).
        transform: ``transform(config)`` -> the pool's score transform (``"none"`` unless the search has one).
        check: ``check(config)``: more checks before any work (e.g. the resources of a later stage).
        after: ``after(config, search, out, loaded, result)`` -> the result, after the queries (e.g. HNAS's ASHA
            stage), before the benchmark's answer is looked up and the result written.
        step_line: ``step_line(trace row)`` -> the log line of a step.
    """

    config_cls: type
    search_cls: type[QuerySearch[Any]]
    build: Callable[[Any, CandidatePool, Oracle], QuerySearch[Any]]
    metrics: Callable[[Any], Sequence[str]] = lambda c: c.metrics
    transform: Callable[[Any], str] = lambda c: "none"
    check: Callable[[Any], None] = lambda c: None
    after: Callable[[Any, QuerySearch[Any], SearchDir, "LoadedPool", dict[str, Any]], dict[str, Any]] | None = None
    step_line: Callable[[Mapping[str, Any]], str] = _step_line

    def run(self, cfg: Any, progress_callback: Callable[..., None] | None = None) -> dict[str, Any]:
        """:func:`run_query_session` of this search."""
        return run_query_session(self, cfg, progress_callback)


def run_query_session(spec: SearchSpec, cfg: Any, progress_callback: Callable[..., None] | None = None
                      ) -> dict[str, Any]:
    """Run (or resume) the search ``spec`` configured by ``cfg`` (typed, or a mapping converted strictly).

    Args:
        spec: the search (:class:`SearchSpec`).
        cfg: its config, an instance of ``spec.config_cls`` or a mapping (:func:`raynas.config.from_dict`: unknown
            keys and wrong types are :class:`ConfigError`).
        progress_callback: called with ``(queries, budget)`` as the search starts and after every step (and with
            ``detail=`` during a training query when it takes that keyword).

    Returns:
        The search's :meth:`~raynas.search.base.QuerySearch.result` plus ``arch`` (the answer's string), ``metrics``,
        ``space``, ``pool`` (what was searched, with its completeness), ``benchmark`` (the space's benchmark answer,
        None without one) and ``trace``; the same is written to the directory's ``result.json``.
    """
    c = cfg if isinstance(cfg, spec.config_cls) else from_dict(spec.config_cls, cfg)
    check_query_resources(c)  # before any work (a named cluster: once attached)
    spec.check(c)
    # metrics the user did not name (the search's defaults) are searched where the pool holds them and they apply
    defaults = tuple(c.metrics) if isinstance(getattr(c, "metrics", None), DefaultMetrics) else ()
    loaded = load_checked_pool(c.scores, spec.metrics(c), spec.transform(c), allow_incomplete=c.allow_incomplete,
                               optional=defaults)
    if loaded.dropped:  # the config (search.json, result, resume) records the metrics searched
        c = dataclasses.replace(c, metrics=tuple(m for m in c.metrics if m not in loaded.dropped))
    c = dataclasses.replace(c, oracle=oracle_name(c.oracle, loaded.config))  # the config records the oracle used
    oracle = make_oracle(c.oracle, loaded.config, c.seed, c.oracle_options)
    where = SearchDir(Path(c.out))
    with where.claim():  # one writer; refused before the first state save, the directory is left as it was
        started = where.resumable()
        out = where.prepare(to_dict(c), c.resume, normalise=typed_config_dict(spec.config_cls), restart=c.restart)

        def load(path: Path) -> QuerySearch[Any]:
            s = spec.search_cls.from_state(path, loaded.pool, oracle)
            log.info("resumed %s at step %d", spec.search_cls.label, len(s.trace))
            return s

        search = resume_or_start(out, c, started, load, lambda: spec.build(c, loaded.pool, oracle))

        def on_step(row: Mapping[str, Any]) -> None:
            log.info("%s", spec.step_line(row))
            if progress_callback is not None:
                progress_callback(search.queries, search.budget)

        start_progress(progress_callback, search, oracle)
        result = run_with_executor(search, c, loaded.space, on_step, out)  # out saves the state after every tell
        result["arch"] = loaded.arch_of().get(result["arch_index"])
        result["metrics"] = list(spec.metrics(c))
        result["trace"] = search.trace
        if spec.after is not None:
            result = spec.after(c, search, out, loaded, result)
        result["space"] = loaded.space
        result["pool"] = loaded.summary()
        answer = pool_answer(loaded, result["arch_index"])
        result["benchmark"] = answer.as_dict() if answer is not None else None
        out.write_result(dict(result))
        return result
