"""Book-keeping shared by the Ray driver and the in-process loop: store checks, resume, plan, progress.

A fresh run refuses a directory that already holds scores; ``resume`` checks the stored config (identity
keys only, unless ``force``), verifies every shard file (a corrupt or truncated one is reported by name,
moved to ``scores/corrupt/`` and its archs re-scored; good shards are never touched), then plans only the
missing ``(arch, metric, seed)`` work.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping

import pyarrow as pa

from raynas.errors import ConfigError, StoreError
from raynas.parallel.scoring import count_errors, drop_done_rows, status_counts
from raynas.parallel.shards import Shard, missing_work, plan_shards, select_ids
from raynas.store import STATUSES, RowKey, config_differences, config_identity, open_store, row_keys
from raynas.store.plan import RunPlan

if TYPE_CHECKING:
    from raynas.data.batch import Batch
    from raynas.spaces.costs import MetricCosts
    from raynas.parallel.config import ScoreConfig
    from raynas.spaces.base import SearchSpace

log = logging.getLogger(__name__)

#: ``(done_archs, total_archs, archs_per_s, eta_s)``
ProgressCallback = Callable[[int, int, float | None, float | None], None]
#: called with the projected cost of the run: before the first arch (from the space's measured metric costs, when it
#: has them) and once more after the run's first scored arch (measured)
EstimateCallback = Callable[["CostEstimate"], None]

#: a run projected to take longer than this gets a warning saying how to cut it (it is never blocked)
LONG_RUN_S = 3600.0


def format_seconds(s: float) -> str:
    """A duration for people: ``0.01 s``, ``4 s``, ``12.5 s``, ``3.2 min``, ``5.1 h``, ``5.2 days`` (never ``0 s``
    for a positive duration: small values keep their significant digits; days from 48 h)."""
    if s < 60:
        return f"{s:.3g} s"
    if s < 3600:
        return f"{s / 60:.3g} min"
    if s < 48 * 3600:
        return f"{s / 3600:.3g} h"
    return f"{s / 86400:.3g} days"


@dataclass(frozen=True)
class CostEstimate:
    """What (the rest of) a run will cost.

    ``per_metric_s``: seconds per arch of each metric; ``archs_left``: archs still to score; ``workers``: how many
    score in parallel. ``source``: where ``per_metric_s`` comes from, when not measured by this run: a space's
    stored metric costs (:func:`prior_estimate`, before any arch is scored); empty: the seconds each metric took
    on the run's first scored arch (the ``seconds`` column of its rows). ``unknown``: metrics without a stored
    cost (not counted in a prior estimate).
    """

    per_metric_s: dict[str, float]
    archs_left: int
    workers: int
    source: str = ""
    unknown: tuple[str, ...] = ()

    @property
    def measured(self) -> bool:
        """True for the estimate measured on this run's first arch, False for one made before scoring."""
        return not self.source

    @property
    def s_per_arch(self) -> float:
        return float(sum(self.per_metric_s.values()))

    @property
    def projected_s(self) -> float:
        return self.s_per_arch * self.archs_left / max(1, self.workers)

    def slowest(self, n: int = 3) -> list[tuple[str, float]]:
        """The ``n`` most expensive metrics, slowest first."""
        return sorted(self.per_metric_s.items(), key=lambda kv: (-kv[1], kv[0]))[:n]

    def _workers(self) -> str:
        return f"{self.workers} worker{'s' if self.workers != 1 else ''}"

    def describe(self) -> str:
        """Measured: ``estimated s/arch per metric: ntk_cond 81.2, ... (total 308 s/arch); projected ...``, slowest
        first. Before scoring: ``estimated 431 s per arch x 3 archs / 1 worker = ~21.6 min (from SOURCE);
        slowest: vkdnw 53 s, ...``."""
        if self.measured:
            per = ", ".join(f"{m} {v:.3g}" for m, v in self.slowest(len(self.per_metric_s)))
            return (f"estimated s/arch per metric: {per} (total {self.s_per_arch:.3g} s/arch); projected "
                    f"{format_seconds(self.projected_s)} for the {self.archs_left} archs left on {self._workers()}")
        text = (f"estimated {self.s_per_arch:.3g} s per arch x {self.archs_left} arch"
                f"{'s' if self.archs_left != 1 else ''} / {self._workers()} = ~{format_seconds(self.projected_s)} "
                f"(from {self.source})")
        if self.per_metric_s:
            text += "; slowest: " + ", ".join(f"{m} {format_seconds(v)}" for m, v in self.slowest())
        if self.unknown:
            text += f"; not counted (no stored cost): {', '.join(self.unknown)}"
        return text

    def warning(self, limit_s: float = LONG_RUN_S) -> str | None:
        """A warning when the run is projected past ``limit_s`` (default an hour), saying how to cut it; None
        otherwise. Only a warning: the run goes on (scripts and CI have no one to answer a prompt)."""
        if self.projected_s <= limit_s:
            return None
        slow = ", ".join(f"{m} {format_seconds(v)}/arch" for m, v in self.slowest())
        return (f"this run is projected to take ~{format_seconds(self.projected_s)} ({self.archs_left} archs at "
                f"{format_seconds(self.s_per_arch)} each on {self._workers()}), more than "
                f"{format_seconds(limit_s)}; it goes on. To cut it: fewer metrics (--metrics a,b,...; the slowest "
                f"here: {slow}), a smaller --sample, or more workers (--workers N on more cores, --gpus-per-worker "
                "with GPUs, --address of a Ray cluster)")


def prior_estimate(costs: "MetricCosts | None", metrics: list[str], archs: int, workers: int,
                   sizes: Mapping[str, float]) -> CostEstimate | None:
    """The cost of scoring ``archs`` archs with ``metrics`` on ``workers`` workers, from a space's measured metric
    costs (:class:`raynas.spaces.costs.MetricCosts`) scaled to the run's ``sizes`` (``batch_size``,
    ``image_size``, ``C``, ``N``, ...); None when there is nothing to estimate (no table, no arch to score, or no
    metric of ``metrics`` in the table). Pure: no clock, no model."""
    if costs is None or archs <= 0:
        return None
    per = costs.per_metric(metrics, sizes)
    if not per:
        return None
    unknown = tuple(m for m in metrics if m not in per)
    source = f"{costs.source}, {costs.sizes_note(sizes)}"
    return CostEstimate(per, archs, max(1, workers), source=source, unknown=unknown)


def announce(estimate: CostEstimate | None, callback: EstimateCallback | None) -> None:
    """Report an estimate made before scoring (:meth:`RunState.prior_estimate`): logged, and given to
    ``callback``; None: nothing to report."""
    if estimate is None:
        return
    log.info("%s", estimate.describe())
    if callback is not None:
        callback(estimate)


class Tracker:
    """Counts finished archs and reports rate / ETA (rate counts only what this run scored); the first scored
    arch's rows also give the run's :class:`CostEstimate`."""

    def __init__(self, total: int, done: int, callback: ProgressCallback | None,
                 estimate_callback: EstimateCallback | None = None, workers: int = 1):
        self.total, self.done, self.scored = total, done, 0
        self.callback = callback
        self.estimate_callback = estimate_callback
        self.workers = workers
        self.estimate: CostEstimate | None = None
        self.t0 = time.perf_counter()
        self._emit()

    def add(self, n: int, table: pa.Table | None = None) -> None:
        """``n`` more archs finished (``table``: their rows, when they were scored rather than given up on)."""
        self.done += n
        self.scored += n
        self._emit()
        if self.estimate is None and table is not None and table.num_rows:
            self._estimate(table)

    def _estimate(self, table: pa.Table) -> None:
        per: dict[str, float] = {}
        for m, sec in zip(table.column("metric").to_pylist(), table.column("seconds").to_pylist()):
            per[str(m)] = per.get(str(m), 0.0) + float(sec or 0.0)
        self.estimate = CostEstimate(per, self.total - self.done, self.workers)
        log.info("%s", self.estimate.describe())
        if self.estimate_callback is not None:
            self.estimate_callback(self.estimate)

    def restart_clock(self) -> None:
        """Measure the rate from now (called once the first actor is up, so start-up does not skew the ETA)."""
        if self.scored == 0:
            self.t0 = time.perf_counter()

    def rate(self) -> float | None:
        dt = time.perf_counter() - self.t0
        return self.scored / dt if self.scored and dt > 0 else None

    def _emit(self) -> None:
        if self.callback is None:
            return
        rate = self.rate()
        eta = (self.total - self.done) / rate if rate else None
        self.callback(self.done, self.total, rate, eta)


@dataclass
class RunState:
    """Everything a scoring loop needs; :meth:`write` is the only way rows reach the store."""

    cfg: "ScoreConfig"
    store: Any
    space: "SearchSpace"
    metrics: list[str]
    batch: "Batch"
    ids: list[int]
    todo: list[Shard]
    done_keys: set[RowKey]
    corrupt: list[str] = field(default_factory=list)
    #: key -> shard id of stored failed rows being scored again; dropped once their replacement is written
    superseded: dict[RowKey, int] = field(default_factory=dict)
    written: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    error_rows: int = 0
    retries: int = 0
    #: rows written by this run, per status
    rows: Counter = field(default_factory=Counter)

    @property
    def data_name(self) -> str:
        return self.batch.name

    @property
    def todo_archs(self) -> int:
        return sum(len(s) for s in self.todo)

    def tracker(self, callback: ProgressCallback | None, estimate_callback: EstimateCallback | None = None,
                workers: int = 1) -> Tracker:
        return Tracker(len(self.ids), len(self.ids) - self.todo_archs, callback, estimate_callback, workers)

    def prior_estimate(self, workers: int) -> CostEstimate | None:
        """What scoring the missing archs on ``workers`` workers will cost, from the space's measured metric costs
        (:func:`prior_estimate`), before anything is scored; None when the space has no such table."""
        from raynas.spaces.costs import metric_costs

        sizes = {"batch_size": self.cfg.batch_size, "image_size": self.cfg.image_size, **{
            k: v for k, v in self.cfg.space_kwargs.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}}
        metrics = sorted({m for s in self.todo for m in (s.metrics or self.metrics)}, key=self.metrics.index)
        task = self.batch.task.name if self.batch.task is not None else None  # the task the run's batch is for
        return prior_estimate(metric_costs(self.space.name, task), metrics, self.todo_archs, workers, sizes)

    def write(self, shard: Shard, table: pa.Table, failed: bool = False) -> None:
        """Atomically write ``shard``'s rows, minus any already stored key (so keys never duplicate)."""
        table = drop_done_rows(table, self.done_keys)
        self.store.write_shard(shard.shard_id, table)
        keys = row_keys(table)
        self.done_keys.update(keys)
        replaced = {k: self.superseded.pop(k) for k in keys if k in self.superseded}
        for sid, old in _by_shard(replaced).items():
            self.store.drop_keys(sid, old)
        self.written.append(shard.shard_id)
        self.error_rows += count_errors(table)
        self.rows.update(status_counts(table))
        if failed:
            self.failed.append(shard.shard_id)

    def summary(self, seconds: float, workers: int) -> dict[str, Any]:
        """The run's summary; ``outcome`` is ``ok``, ``partial`` (some rows are errors / ooms) or ``failed`` (a
        shard was given up on, or the run scored archs but stored no ``ok`` row); when not ``ok``, ``problem`` says
        why."""
        scored = self.todo_archs
        rows = {st: int(self.rows.get(st, 0)) for st in STATUSES}
        outcome, problem = "ok", ""
        if self.failed:
            outcome = "failed"
            problem = (f"{len(self.failed)} shard(s) failed after every retry (their {rows['error']} error rows "
                       f"are stored; rerun with --resume to score them again)")
        elif scored and not rows["ok"]:
            outcome = "failed"
            problem = f"no successful row: all {sum(rows.values())} rows scored are " + ", ".join(
                f"{n} {st}" for st, n in rows.items() if n)
            if self.cfg.resume:  # say what the run holds besides the rows this call scored
                held = status_counts(self.store.read(["status"]))
                problem = (f"this resume stored no successful row: all {sum(rows.values())} rows it scored are "
                           + ", ".join(f"{n} {st}" for st, n in rows.items() if n)
                           + f"; the run holds {int(held.get('ok', 0))} ok rows in all")
        elif rows["error"] or rows["oom"]:
            outcome = "partial"
            problem = f"{rows['error']} error and {rows['oom']} oom rows (of {sum(rows.values())})"
        summary: dict[str, Any] = {
            "out": self.cfg.out,
            "archs": len(self.ids),
            "already_done": len(self.ids) - scored,
            "scored": scored,
            "shards_written": len(self.written),
            "failed_shards": list(self.failed),
            "retries": self.retries,
            "rows": rows,
            "error_rows": self.error_rows,
            "corrupt_shards": list(self.corrupt),
            "workers": workers,
            "seconds": round(seconds, 3),
            "archs_per_s": round(scored / seconds, 3) if seconds > 0 and scored else 0.0,
            "outcome": outcome,
        }
        if problem:
            summary["problem"] = problem
        return summary


@contextmanager
def scoring_run(cfg: "ScoreConfig") -> Iterator[RunState]:
    """The run of ``cfg``, ready to score, for the duration of the ``with`` block: the config checked, the store
    opened and claimed (one writer per run: a second process is refused, :class:`raynas.store.DirClaim`), the
    fresh/resume rules enforced, duplicate keys dropped, the missing shards planned.

    Everything that can reject the config runs before the store is touched, and a block that ends with an
    exception before any shard was written (a Ray cluster that cannot be reached, a resource request no node meets,
    an interrupt) puts the run directory back as it found it: no ``config.json`` is left behind to refuse the
    next try."""
    from raynas.data import create_batch
    from raynas.parallel.planner import open_run
    from raynas.spaces import create_space

    space = create_space(cfg.space)
    metrics = cfg.metric_names()
    # the selection, the batch, and one network build with the given space options (a bad option would otherwise
    # turn every arch into error rows)
    ids = select_ids(space, cfg)
    batch = create_batch(cfg.data, batch_size=cfg.batch_size, seed=cfg.seed, size=cfg.image_size,
                         task=_space_task(space, cfg))
    if ids:
        space.to_module(space.index_to_arch(ids[0]), batch.num_classes, **cfg.space_kwargs)
    check_some_metric_applies(metrics, batch.task)
    store = open_run(cfg.out)
    with store.claim():
        yield _prepare(cfg, store, space, metrics, ids, batch)


def check_some_metric_applies(metrics: list[str], task: Any) -> None:
    """Refuse a run none of whose ``metrics`` can apply to ``task`` (every row would be ``not_applicable``, and
    the run would fail after building its store): :class:`ConfigError` with each metric's reason, before any work.
    A run where some apply goes on and stores the others as ``not_applicable``.

    Args:
        metrics: the run's resolved metric names.
        task: the batch's :class:`raynas.tasks.Task`, None for plain classification (every metric applies).
    """
    if task is None or not metrics:
        return
    from raynas.metrics import not_applicable_reasons

    whys = not_applicable_reasons(metrics, task)
    if len(whys) == len(metrics):
        raise ConfigError(f"none of the metrics applies to task {task.name!r}: {'; '.join(whys.values())}; "
                          "choose metrics that need no class labels (`raynas list metrics`)")


def _space_task(space: "SearchSpace", cfg: "ScoreConfig") -> Any:
    """The task the run's batch is drawn for: None (classification with the dataset's classes, the batch every
    image-classification space always got) for a space whose only task is classification, else the space's task
    named by the network option ``task`` (``raynas score --task``; default: the space's first), shaped for the
    run's image size. A space without tasks given ``task`` is refused by its own option check (``to_module``)."""
    if tuple(space.task_names()) == ("classification",):
        return None
    return space.task(cfg.space_kwargs.get("task"), image_size=cfg.image_size)


def _prepare(cfg: "ScoreConfig", store: Any, space: "SearchSpace", metrics: list[str], ids: list[int],
             batch: "Batch") -> RunState:
    """:func:`scoring_run`'s work on the claimed store."""
    resolved = cfg.resolved()
    # stored with the config, so ScoreStore(run).completeness() knows what the run should hold without a planner
    plan = RunPlan(tuple(ids), tuple((s.shard_id, s.ids) for s in plan_shards(ids, cfg.shard_size)),
                   tuple(metrics), cfg.seed)
    stored_cfg = store.load_config()  # None when absent; unreadable JSON is a StoreError
    existing = list(store.shard_ids())
    corrupt: list[str] = []
    if not cfg.resume:
        if existing or stored_cfg is not None:
            raise StoreError(
                f"{cfg.out} already holds a scoring run; pass --resume to continue it or choose another --out"
            )
        store.save_config(resolved, plan)
    elif stored_cfg is None:
        if existing and not cfg.adopt:
            raise StoreError(f"{cfg.out} holds shard files but no run config (config.json); pass --adopt with "
                             "--resume to rebuild the config from the shards and continue the run")
        if existing:
            check_adoption(store, cfg, ids, metrics, batch.name)
        store.save_config(resolved, plan)
    else:
        if cfg.adopt:
            raise ConfigError(f"{cfg.out} has its run config; --adopt is only for a run whose config.json is lost")
        if cfg.force:
            check_forced_resume(cfg.out, stored_cfg, resolved)
        store.check_config(resolved, force=cfg.force)
        if cfg.force or store.stored_plan() != plan:  # forced, or a run written before plans were stored
            store.save_config({k: v for k, v in stored_cfg.items() if k != "plan"} if not cfg.force else resolved,
                              plan)
    if existing:
        _good, bad = store.verify()
        for path, reason in bad:
            log.warning("corrupt shard %s (%s): moved aside and re-scored", path, reason)
            store.quarantine(path)
            corrupt.append(str(getattr(path, "name", path)))
        # one row per key: rows stored twice (two writers, or a resume killed between writing a failed row's
        # replacement and dropping the row) are dropped, the ok / later one kept
        dropped = store.repair_duplicates()
        if dropped:
            log.warning("%s: dropped %d duplicate row(s), one row per (arch, metric, seed) kept", cfg.out, dropped)
        existing = list(store.shard_ids())
    done = set(store.done_keys()) if existing else set()
    retry = store.failed_rows() if existing else {}
    if retry:  # failed rows are scored again; each replacement supersedes its row (RunState.write)
        done -= set(retry)
        log.info("%s: %d failed rows will be scored again", cfg.out, len(retry))
    todo = missing_work(plan_shards(ids, cfg.shard_size), done, metrics, cfg.seed, existing_ids=existing)
    log.info("%s: %d archs, %d shards to score (%d corrupt moved aside)", cfg.out, len(ids), len(todo), len(corrupt))
    return RunState(cfg, store, space, metrics, batch, ids, todo, done, corrupt, superseded=retry)


def stored_facts(store: Any) -> dict[str, list[Any]]:
    """What the shards of ``store`` say about the run that wrote them, each list in first-seen order: ``space``,
    ``seed``, ``data`` (batch names), ``metric`` and ``arch_index``."""
    t = store.read(["space", "arch_index", "metric", "seed", "data"])
    return {c: list(dict.fromkeys(t.column(c).to_pylist())) for c in ("space", "seed", "data", "metric", "arch_index")}


def adopted_defaults(given: Mapping[str, Any], facts: Mapping[str, list[Any]]) -> dict[str, Any]:
    """The config of a run whose ``config.json`` is lost (``--resume --adopt``): the keys ``given``, completed from
    what its shards hold (``facts``, :func:`stored_facts`): space, seed, data, batch size and image size (from the
    rows' batch name), metrics and, unless ``given`` selects archs, ``ids`` = the stored archs. The network options
    (``C``, ``N``, ``network``) and the shard size are not in the rows: given, or the defaults.

    Raises:
        ConfigError: the shards hold no rows, or rows of several spaces, seeds or batches (not one run).
    """
    from raynas.data import parse_batch_name

    if not facts.get("arch_index"):
        raise ConfigError(f"cannot adopt {given.get('out')}: its shards hold no rows; start a new run there instead")
    out: dict[str, Any] = {}
    for key, label in (("space", "spaces"), ("seed", "seeds"), ("data", "batches")):
        values = [v for v in facts.get(key, []) if v is not None]
        if len(values) > 1:
            raise ConfigError(f"cannot adopt {given.get('out')}: its shards hold rows of several {label} {values}, "
                              "not of one run")
        if values:
            out[key] = values[0]
    batch = parse_batch_name(str(out.pop("data"))) if "data" in out else None
    if batch is not None:
        out.update(batch)  # data spec, seed, batch size, image size
    out["metrics"] = tuple(facts["metric"])
    if not any(k in given for k in SELECTION_KEYS):
        out["ids"] = tuple(int(i) for i in facts["arch_index"])
    return {**out, **given}


def check_adoption(store: Any, cfg: "ScoreConfig", ids: list[int], metrics: list[str], batch_name: str) -> None:
    """The adopted config ``cfg`` describes the rows its shards hold: same space, seed and batch, their archs among
    the selected ``ids`` and their metrics among ``metrics``.

    Raises:
        ConfigError: a difference, named with both sides (a flag given that contradicts the shards).
    """
    facts = stored_facts(store)
    problems = []
    for key, want in (("space", cfg.space), ("seed", cfg.seed), ("data", batch_name)):
        other = [v for v in facts[key] if v != want]
        if other:
            problems.append(f"{key}: the shards hold {other}, the config {want!r}")
    outside = [a for a in facts["arch_index"] if a not in set(ids)]
    if outside:
        problems.append(f"{len(outside)} stored arch(s) are not in the selection (e.g. {outside[:5]})")
    extra = [m for m in facts["metric"] if m not in metrics]
    if extra:
        problems.append(f"metrics: the shards hold {extra}, not in the config's {metrics}")
    if problems:
        raise ConfigError(f"cannot adopt the shards of {cfg.out} into this config: {'; '.join(problems)}. Leave out "
                          "the flags that differ (the shards' values are the defaults of an adopted run)")
    log.warning("%s: config.json rebuilt from the shards (space %s, seed %d, data %s, %d archs, metrics %s); the "
                "network options and shard size are the ones given or the defaults", cfg.out, cfg.space, cfg.seed,
                batch_name, len(ids), ",".join(metrics))


def check_forced_resume(out: str, stored: Mapping[str, Any], resolved: Mapping[str, Any]) -> None:
    """A ``force``d resume may add metrics (and change the shard plan), never what the stored rows are.

    Raises:
        ConfigError: the new config differs from the stored one in a key outside
            :data:`~raynas.parallel.config.FORCE_MAY_CHANGE` (space, selection, seed, data, batch, network
            options) or drops a stored metric; the message names every such key with both values.
    """
    from raynas.parallel.config import FORCE_MAY_CHANGE

    a = config_identity(stored)
    b = json.loads(json.dumps(dict(resolved["identity"])))  # tuples -> lists, as the stored copy went through JSON
    diff = config_differences(a, b)
    problems = [f"{k}: {change}" for k, change in diff.items() if k not in FORCE_MAY_CHANGE]
    if "metrics" in diff:
        new = set(b.get("metrics") or [])
        dropped = [m for m in (a.get("metrics") or []) if m not in new]
        if dropped:
            problems.append(f"metrics: the given list drops stored metric(s) {dropped}")
    if problems:
        raise ConfigError(
            f"{out}: force may only add metrics (or change shard_size) to a stored run, never change which rows "
            f"it holds; the config differs in {'; '.join(problems)}. Score these settings into another --out"
        )


#: the keys that select a run's architectures (exactly one is set)
SELECTION_KEYS = ("sample", "all", "ids")
#: keys never taken from a stored config: how this invocation runs, and where
_NOT_INHERITED = ("out", "resume", "force", "adopt")


def resume_defaults(given: Mapping[str, Any]) -> dict[str, Any]:
    """``given`` completed from the stored config when it resumes a run: the stored config (``OUT/config.json``)
    is the default of every key ``given`` leaves out, so ``raynas score --resume RUN`` needs no other flag.

    Keys ``given`` sets override the stored ones (identity keys are then checked against the stored config by
    :func:`prepare_run`); giving any selection key (``sample``/``all``/``ids``) replaces the stored selection;
    ``space_kwargs`` merge key by key. Not resuming, or nothing stored: ``given`` unchanged.

    Raises:
        ConfigError: resuming a directory without a stored config, and ``given`` selects no architectures.
    """
    import dataclasses

    from raynas.parallel.config import ScoreConfig

    given = dict(given)
    if given.get("adopt") and not given.get("resume"):
        raise ConfigError("--adopt rebuilds the lost config of a run to resume: give it with --resume RUN")
    if not given.get("resume") or not isinstance(given.get("out"), str):
        return given
    store = open_store(given["out"])
    stored = store.flat_config()
    if stored is None:
        if given.get("adopt") and store.shard_ids():
            return adopted_defaults(given, stored_facts(store))
        if store.shard_ids():
            raise ConfigError(
                f"{given['out']} holds shard files but no run config (config.json): pass --adopt to rebuild it from "
                "the shards (space, seed, data, batch size, metrics and archs are read from them; give --C / --N / "
                "--network / --shard-size if the run did not use the defaults) and continue the run"
            )
        if not any(k in given for k in SELECTION_KEYS):
            raise ConfigError(
                f"nothing to resume in {given['out']}: it holds no run config (config.json); start a run there "
                "with a selection (sample=N / --sample N, all / --all, or ids / --ids)"
            )
        return given
    fields = {f.name for f in dataclasses.fields(ScoreConfig)}
    base = {k: v for k, v in stored.items() if k in fields and k not in _NOT_INHERITED}
    if any(k in given for k in SELECTION_KEYS):
        for k in SELECTION_KEYS:
            base.pop(k, None)
    merged = {**base, **given}
    if isinstance(base.get("space_kwargs"), Mapping) and isinstance(given.get("space_kwargs"), Mapping):
        merged["space_kwargs"] = {**base["space_kwargs"], **given["space_kwargs"]}
    return merged


def _by_shard(keys: dict[RowKey, int]) -> dict[int, set[RowKey]]:
    """Group ``key -> shard id`` by shard id."""
    out: dict[int, set[RowKey]] = {}
    for k, sid in keys.items():
        out.setdefault(sid, set()).add(k)
    return out
