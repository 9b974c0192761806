"""Library entry points of ``raynas search robot`` (and the pool/oracle plumbing shared with HNAS).

A search directory holds ``search.json`` (the resolved config), ``state.parquet`` (the versioned trace, saved
after every query) and ``result.json``. A search killed at any moment continues with ``resume=True``.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import pyarrow as pa
import pyarrow.compute as pc

from raynas.config import from_dict, to_dict
from raynas.errors import ConfigError, SearchError, StoreError
from raynas.search.oracle import Oracle, create_oracle
from raynas.search.pool import CandidatePool

log = logging.getLogger(__name__)

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
    metric_cols = [c for c in wide.column_names if c not in _KEYS]
    if len(set(wide.column("seed").to_pylist())) > 1:
        grouped = wide.group_by(["arch_index", "arch"]).aggregate([(m, "mean") for m in metric_cols])
        wide = grouped.rename_columns([c.removesuffix("_mean") for c in grouped.column_names])
    cfg = store.load_config() or {}
    return wide.select(["arch_index", "arch", *metric_cols]), cfg.get("identity", cfg)


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
        if other_cfg.get("space", "nb201") != cfg.get("space", "nb201"):
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


def load_pool(scores: str | Path | Sequence[str | Path], metrics: list[str],
              transform: str = "none") -> tuple[CandidatePool, pa.Table, dict]:
    """Candidate pool over ``metrics`` from one or several runs (:func:`read_scores_wide`); a metric missing
    from the scores is a :class:`SearchError`."""
    wide, cfg = read_scores_wide(scores)
    missing = [m for m in metrics if m not in wide.column_names]
    if missing:
        have = sorted(c for c in wide.column_names if c not in _KEYS)
        raise SearchError(f"scores in {scores} lack metric(s) {missing}; stored metrics: {have}")
    return CandidatePool.from_table(wide, metrics, transform), wide, cfg


def make_oracle(name: str, score_cfg: dict[str, Any], seed: int, options: dict[str, Any] | None = None) -> Oracle:
    """``nb201``: the benchmark table; ``train``: real short training of the arch (space taken from the scores)."""
    options = dict(options or {})
    if name == "train":
        from raynas.search.train_oracle import TrainingOracle

        train_cfg = dict(options.pop("train_cfg", None) or {})
        train_cfg.setdefault("seed", seed)
        return TrainingOracle(space=score_cfg.get("space", "nb201"), train_cfg=train_cfg, **options)
    if options:
        raise ConfigError(f"oracle {name!r} takes no options, got {sorted(options)}")
    if name == "nb201" and score_cfg.get("space", "nb201") != "nb201":
        raise ConfigError(f"the nb201 table oracle cannot answer for space {score_cfg.get('space')!r}; use --oracle train")
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
        volatile = {"resume", "out"}
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


def run_robot_search(cfg: dict[str, Any], progress_callback: Callable[..., None] | None = None) -> dict[str, Any]:
    """Run (or resume) RoBoT over the pool scored in ``cfg["scores"]``; returns the result dict with the trace."""
    from raynas.search.robot import RoBoT

    c = from_dict(RobotSearchConfig, cfg)
    metrics = [m.strip() for m in c.metrics.split(",") if m.strip()]
    pool, wide, score_cfg = load_pool(c.scores, metrics, c.transform)
    oracle = make_oracle(c.oracle, score_cfg, c.seed, c.oracle_options)
    out = prepare_out(c.out, {k: v for k, v in to_dict(c).items()}, c.resume)
    state = out / "state.parquet"
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
            progress_callback(sum(bool(r["new_query"]) for r in search.trace), search.budget)

    result = search.run(on_step=on_step)
    arch_of = dict(zip(wide.column("arch_index").to_pylist(), wide.column("arch").to_pylist()))
    result["arch"] = arch_of.get(result["arch_index"])
    result["metrics"] = metrics
    result["trace"] = search.trace
    write_result(out, {k: v for k, v in result.items()})
    return result
