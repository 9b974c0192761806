"""Reading several score runs as one search pool: the wide table over the archs every run scored.

A pool may come from several runs (e.g. cheap metrics over a sample plus NTK metrics over the same sample at
another batch size), named by one path, a sequence, or paths joined with ``os.pathsep``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Sequence

import pyarrow as pa
import pyarrow.compute as pc

from raynas.errors import SearchError, StoreError
from raynas.store.base import DEFAULT_BACKEND, open_store
from raynas.store.plan import Planner
from raynas.store.store import WIDE_ID_COLUMNS, RunCompleteness, to_wide

log = logging.getLogger(__name__)

#: one run directory, several, or several joined with ``os.pathsep``
Runs = str | Path | Sequence[str | Path]


def split_runs(scores: Runs) -> list[Path]:
    """Run directories named by ``scores``: one path, a sequence, or several joined with ``os.pathsep`` (``:``)
    like ``PATH``, e.g. ``runs/pool:runs/pool_ntk``."""
    parts = [str(scores)] if isinstance(scores, (str, Path)) else [str(s) for s in scores]
    runs = [Path(x) for part in parts for x in part.split(os.pathsep) if x.strip()]
    if not runs:
        raise SearchError("no scores directory given")
    return runs


def open_runs(scores: Runs, planner: Planner | None = None, backend: str = DEFAULT_BACKEND) -> list[Any]:
    """The stores of the runs named by ``scores`` (:func:`split_runs`), each opened once (a missing directory is a
    :class:`SearchError`), to be handed down: :func:`check_stores`, :func:`read_stores_wide`."""
    out = []
    for run in split_runs(scores):
        if not run.is_dir():
            raise SearchError(f"scores directory {run} does not exist")
        out.append(open_store(run, backend, planner=planner))
    return out


def read_one_run(scores_dir: Path | Any, backend: str = DEFAULT_BACKEND) -> tuple[pa.Table, dict[str, Any]]:
    """One run (its directory, or its open store) as ``(wide table [arch_index, arch, metrics...], identity
    config)``; several seeds are averaged."""
    if isinstance(scores_dir, (str, Path)):
        if not Path(scores_dir).is_dir():
            raise SearchError(f"scores directory {scores_dir} does not exist")
        store = open_store(Path(scores_dir), backend)
    else:
        store = scores_dir
        scores_dir = store.run_dir
    table = store.read()
    if table.num_rows == 0:
        raise SearchError(f"no scores stored in {scores_dir}")
    wide = to_wide(table)
    spaces = sorted(set(wide.column("space").to_pylist()))
    if len(spaces) > 1:
        raise SearchError(f"{scores_dir} mixes scores of several spaces {spaces}")
    metric_cols = [c for c in wide.column_names if c not in WIDE_ID_COLUMNS]
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


def read_scores_wide(scores: Runs, backend: str = DEFAULT_BACKEND) -> tuple[pa.Table, dict[str, Any]]:
    """The scored pool as a wide table (one row per arch, one column per metric; several seeds are averaged)
    and the first run's stored config.

    Several runs (see :func:`split_runs`) are joined on the architecture: the pool is the archs scored in
    EVERY run. They must score the same space; a metric stored by several runs is taken from the first that
    has it.
    """
    return read_stores_wide(open_runs(scores, backend=backend))


def read_stores_wide(stores: Sequence[Any]) -> tuple[pa.Table, dict[str, Any]]:
    """:func:`read_scores_wide` of runs already open (:func:`open_runs`)."""
    runs = [s.run_dir for s in stores]
    wide, cfg = read_one_run(stores[0])
    for store, run in zip(stores[1:], runs[1:]):
        other, other_cfg = read_one_run(store)
        if other_cfg.get("space") != cfg.get("space"):  # read_one_run always sets it (config, else rows)
            raise SearchError(f"cannot join {runs[0]} (space {cfg.get('space')!r}) with {run} "
                              f"(space {other_cfg.get('space')!r})")
        new = [c for c in other.column_names if c not in WIDE_ID_COLUMNS and c not in wide.column_names]
        dup = [c for c in other.column_names if c not in WIDE_ID_COLUMNS and c in wide.column_names]
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


def check_runs(scores: Runs, planner: Planner | None = None,
               backend: str = DEFAULT_BACKEND) -> list[RunCompleteness]:
    """:meth:`~raynas.store.Store.completeness` of every run named by ``scores`` (see :func:`split_runs`),
    each planned by ``planner`` (:func:`raynas.parallel.plan_run` for ``raynas score`` runs)."""
    return [store.completeness() for store in open_runs(scores, planner, backend)]


def stored_space(scores: Runs, backend: str = DEFAULT_BACKEND) -> str | None:
    """The space of the (first) score run: its config's, else that of its rows; None when neither says (the
    caller picks the default space: the store knows no space)."""
    store = open_store(split_runs(scores)[0], backend)
    try:
        cfg = store.flat_config() or {}
    except StoreError:
        cfg = {}
    if isinstance(cfg.get("space"), str):
        return cfg["space"]
    spaces = store.read(["space"]).column("space").to_pylist()
    return str(spaces[0]) if spaces else None
