"""Library entry points of ``raynas search robot`` (and the pool/oracle plumbing shared with HNAS).

A search directory holds ``search.json`` (the resolved config), ``state.parquet`` (the versioned trace, saved
after every query) and ``result.json``. A search killed at any moment continues with ``resume=True``.

A pool is only searched from *complete* score runs (:meth:`raynas.store.ScoreStore.completeness`: a usable
``config.json``, no missing, corrupt or failed shard). An incomplete run is an :class:`IncompleteRunError`
naming what is wrong unless ``allow_incomplete`` is set; either way the result's ``pool`` entry states the
pool size used and every problem of every run.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import pyarrow as pa
import pyarrow.compute as pc

from raynas.config import from_dict, to_dict
from raynas.errors import ConfigError, SearchError, StoreError
from raynas.oracles.base import Oracle, benchmark_answer, create_oracle
from raynas.search.pool import CandidatePool
from raynas.spaces import DEFAULT_SPACE, benchmark_for_space, create_benchmark, list_benchmarks

if TYPE_CHECKING:
    from raynas.store import RunCompleteness

log = logging.getLogger(__name__)


class IncompleteRunError(SearchError):
    """A score run to search is incomplete (config, shards) and ``allow_incomplete`` was not given."""

ROBOT_METRICS = ("grad_norm", "snip", "grasp", "fisher", "synflow", "jacob_cov")
#: non-metric columns of a wide score table
_KEYS = ("space", "arch_index", "arch", "seed")


def split_runs(scores: str | Path | Sequence[str | Path]) -> list[Path]:
    """Run directories named by ``scores``: one path, a sequence, or several joined with ``os.pathsep`` (``:``)
    like ``PATH``, e.g. ``runs/pool:runs/pool_ntk``."""
    parts = [str(scores)] if isinstance(scores, (str, Path)) else [str(s) for s in scores]
    runs = [Path(x) for part in parts for x in part.split(os.pathsep) if x.strip()]
    if not runs:
        raise SearchError("no scores directory given")
    return runs


def _read_one_run(scores_dir: Path) -> tuple[pa.Table, dict[str, Any]]:
    from raynas.store import ScoreStore, to_wide

    if not scores_dir.is_dir():
        raise SearchError(f"scores directory {scores_dir} does not exist")
    store = ScoreStore(scores_dir)
    table = store.read()
    if table.num_rows == 0:
        raise SearchError(f"no scores stored in {scores_dir}")
    wide = to_wide(table)
    spaces = sorted(set(wide.column("space").to_pylist()))
    if len(spaces) > 1:
        raise SearchError(f"{scores_dir} mixes scores of several spaces {spaces}")
    metric_cols = [c for c in wide.column_names if c not in _KEYS]
    if len(set(wide.column("seed").to_pylist())) > 1:
        grouped = wide.group_by(["arch_index", "arch"]).aggregate([(m, "mean") for m in metric_cols])
        wide = grouped.rename_columns([c.removesuffix("_mean") for c in grouped.column_names])
    try:
        cfg = store.load_config() or {}
    except StoreError as e:  # unreadable config: the completeness check names it; the rows still say the space
        log.warning("%s", e)
        cfg = {}
    cfg = dict(cfg.get("identity", cfg))
    # without config.json (an incomplete run searched anyway) the rows are the only record of the space
    cfg.setdefault("space", spaces[0])
    return wide.select(["arch_index", "arch", *metric_cols]), cfg


def read_scores_wide(scores: str | Path | Sequence[str | Path]) -> tuple[pa.Table, dict[str, Any]]:
    """The scored pool as a wide table (one row per arch, one column per metric; several seeds are averaged)
    and the first run's stored config.

    Several runs (see :func:`split_runs`) are joined on the architecture: the pool is the archs scored in
    EVERY run (e.g. cheap metrics over a sample plus NTK metrics over the same sample at another batch size).
    They must score the same space; a metric stored by several runs is taken from the first that has it.
    """
    runs = split_runs(scores)
    wide, cfg = _read_one_run(runs[0])
    for run in runs[1:]:
        other, other_cfg = _read_one_run(run)
        if other_cfg.get("space", DEFAULT_SPACE) != cfg.get("space", DEFAULT_SPACE):
            raise SearchError(f"cannot join {runs[0]} (space {cfg.get('space')!r}) with {run} "
                              f"(space {other_cfg.get('space')!r})")
        new = [c for c in other.column_names if c not in _KEYS and c not in wide.column_names]
        dup = [c for c in other.column_names if c not in _KEYS and c in wide.column_names]
        if dup:
            log.info("metric(s) %s of %s are already in an earlier run; using the earlier values", dup, run)
        joined = wide.join(other.select(["arch_index", "arch", *new]), keys=["arch_index"], right_keys=["arch_index"],
                           join_type="inner", right_suffix="__other")
        mismatch = pc.sum(pc.not_equal(joined.column("arch"), joined.column("arch__other"))).as_py()
        if mismatch:
            raise SearchError(f"{run} names {mismatch} arch indices differently from {runs[0]}: not the same space")
        wide = joined.drop_columns(["arch__other"]).sort_by("arch_index")
        if wide.num_rows == 0:
            raise SearchError(f"the runs {[str(r) for r in runs]} have no scored architecture in common")
    return wide, cfg


def check_runs(scores: str | Path | Sequence[str | Path]) -> list["RunCompleteness"]:
    """:meth:`ScoreStore.completeness` of every run named by ``scores`` (see :func:`split_runs`)."""
    from raynas.store import ScoreStore

    out = []
    for run in split_runs(scores):
        if not run.is_dir():
            raise SearchError(f"scores directory {run} does not exist")
        out.append(ScoreStore(run).completeness())
    return out


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
    checks = tuple(check_runs(scores))
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
    """The space of the (first) score run: its config's, else that of its rows (``DEFAULT_SPACE`` when neither
    says)."""
    from raynas.store import ScoreStore

    store = ScoreStore(split_runs(scores)[0])
    try:
        cfg = store.flat_config() or {}
    except StoreError:
        cfg = {}
    if isinstance(cfg.get("space"), str):
        return cfg["space"]
    spaces = store.read(["space"]).column("space").to_pylist()
    return str(spaces[0]) if spaces else DEFAULT_SPACE


def make_oracle(name: str | None, score_cfg: dict[str, Any], seed: int,
                options: dict[str, Any] | None = None) -> Oracle:
    """``train``: real short training of the arch (space taken from the scores); a benchmark's name (``raynas list
    benchmarks``): its table, which must be the scored space's; None: the scored space's benchmark table."""
    options = dict(options or {})
    space = str(score_cfg.get("space", DEFAULT_SPACE))
    if name == "train":
        from raynas.oracles.training import TrainingOracle

        train_cfg = dict(options.pop("train_cfg", None) or {})
        train_cfg.setdefault("seed", seed)
        return TrainingOracle(space=space, train_cfg=train_cfg, **options)
    if name is None:  # the table of the scored space's benchmark
        bench = benchmark_for_space(space)
        if bench is None:
            raise ConfigError(f"the default table oracle cannot answer for space {space!r}: it has no benchmark "
                              "table; use --oracle train")
        name = bench.name
    if options:
        raise ConfigError(f"oracle {name!r} takes no options, got {sorted(options)}")
    if name in list_benchmarks() and create_benchmark(name).space != space:  # indices of another space
        raise ConfigError(f"the {name} table oracle cannot answer for space {space!r}; use --oracle train")
    return create_oracle(name)


def prepare_out(out: str | Path, config: dict[str, Any], resume: bool) -> Path:
    """Create the search dir; refuse to overwrite a previous search unless resuming with the same config."""
    out = Path(out)
    cfg_path = out / "search.json"
    if cfg_path.exists():
        try:
            stored = json.loads(cfg_path.read_text())
        except (OSError, ValueError) as e:
            raise StoreError(f"{cfg_path} is unreadable or corrupt ({e}); choose another --out") from None
        if not isinstance(stored, dict):
            raise StoreError(f"{cfg_path} is corrupt (not a JSON object); choose another --out")
        if not resume:
            raise StoreError(f"{out} already holds a search; use --resume to continue it or choose another --out")
        volatile = {"resume", "out", "allow_incomplete"}  # allow_incomplete only decides whether to refuse
        diff = sorted(k for k in set(stored) | set(config) if k not in volatile and stored.get(k) != config.get(k))
        if diff:
            raise StoreError(f"cannot resume {out}: config differs in {diff}")
    else:
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(f"cannot create search dir {out}: {e.strerror}") from None
        _write_json(cfg_path, config)
    return out


def _write_json(path: Path, data: dict[str, Any]) -> None:
    """Atomic JSON write; OS errors become :class:`StoreError` naming the path."""
    from raynas.store.store import atomic_write

    text = json.dumps(data, indent=2, sort_keys=True, default=float).encode()
    atomic_write(path, lambda fh: fh.write(text))


def write_result(out: Path, result: dict[str, Any]) -> None:
    _write_json(out / "result.json", result)


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
    (the CLI's and YAML's form) is normalised to one here, so every later step sees the tuple."""

    scores: str
    out: str
    oracle: str | None = None  # None: the scored space's benchmark table (make_oracle)
    budget: int = 20
    metrics: tuple[str, ...] | str = ROBOT_METRICS
    seed: int = 0
    bo_iters: int | None = None
    transform: str = "none"
    resume: bool = False
    oracle_options: dict | None = None
    kernel: str = "rbf_ard"
    allow_incomplete: bool = False

    def __post_init__(self) -> None:
        names = self.metrics.split(",") if isinstance(self.metrics, str) else self.metrics
        object.__setattr__(self, "metrics", tuple(m.strip() for m in names if m.strip()))
        if not self.metrics:
            raise ConfigError("robot: metrics must name at least one metric")


def run_robot_search(cfg: RobotSearchConfig | Mapping[str, Any],
                     progress_callback: Callable[..., None] | None = None) -> dict[str, Any]:
    """Run (or resume) RoBoT over the pool scored in ``cfg.scores``; returns the result dict with the trace.

    ``cfg`` is a :class:`RobotSearchConfig` (a mapping is converted strictly, :func:`raynas.config.from_dict`).
    Beyond :meth:`RoBoT.result` (effective ``budget``, ``budget_requested``, ``bo_iters``) the result holds ``pool``
    (:func:`pool_summary`), ``space`` and ``benchmark`` (the space's benchmark's ground truth of the answer,
    :func:`raynas.oracles.base.benchmark_answer`; None for other spaces).
    """
    from raynas.search.robot import RoBoT

    c = cfg if isinstance(cfg, RobotSearchConfig) else from_dict(RobotSearchConfig, cfg)
    loaded = load_checked_pool(c.scores, c.metrics, c.transform, allow_incomplete=c.allow_incomplete)
    pool, wide, score_cfg = loaded.pool, loaded.wide, loaded.config
    oracle = make_oracle(c.oracle, score_cfg, c.seed, c.oracle_options)
    out = prepare_out(c.out, {k: v for k, v in to_dict(c).items()}, c.resume)
    state = out / "state.parquet"
    if c.resume and state.exists():
        search = RoBoT.from_state(state, pool, oracle)
        log.info("resumed RoBoT at step %d", len(search.trace))
    else:
        search = RoBoT(pool, oracle, budget=c.budget, bo_iters=c.bo_iters, seed=c.seed,
                       kernel=c.kernel)  # type: ignore[arg-type]  # RoBoTConfig validates it

    def on_step(row: dict[str, Any]) -> None:
        log.info("step %d %s arch %d value %.3f cost %.1f", row["step"], row["kind"], row["arch_index"],
                 row["value"], row["cumulative_cost"])
        if progress_callback is not None:
            progress_callback(search.queries, search.budget)

    result = search.run(on_step=on_step, state_path=state)  # the state is saved after every tell
    arch_of = dict(zip(wide.column("arch_index").to_pylist(), wide.column("arch").to_pylist()))
    result["arch"] = arch_of.get(result["arch_index"])
    result["metrics"] = list(c.metrics)
    result["space"] = space = str(score_cfg.get("space", DEFAULT_SPACE))
    result["pool"] = loaded.summary()
    answer = benchmark_answer(space, result["arch_index"])
    result["benchmark"] = answer.as_dict() if answer is not None else None
    result["trace"] = search.trace
    write_result(out, {k: v for k, v in result.items()})
    return result
