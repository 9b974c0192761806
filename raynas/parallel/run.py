"""Book-keeping shared by the Ray driver and the in-process loop: store checks, resume, plan, progress.

A fresh run refuses a directory that already holds scores; ``resume`` checks the stored config (identity
keys only, unless ``force``), verifies every shard file (a corrupt or truncated one is reported by name,
moved to ``scores/corrupt/`` and its archs re-scored; good shards are never touched), then plans only the
missing ``(arch, metric, seed)`` work.
"""

from __future__ import annotations

import logging
from collections import Counter
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import pyarrow as pa

from raynas.errors import StoreError
from raynas.parallel.scoring import count_errors, drop_done_rows
from raynas.parallel.shards import Shard, missing_work, plan_shards, select_ids

if TYPE_CHECKING:
    from raynas.data.batch import Batch
    from raynas.parallel.config import ScoreConfig
    from raynas.spaces.base import SearchSpace

log = logging.getLogger(__name__)

#: ``(done_archs, total_archs, archs_per_s, eta_s)``
ProgressCallback = Callable[[int, int, float | None, float | None], None]


class Tracker:
    """Counts finished archs and reports rate / ETA (rate counts only what this run scored)."""

    def __init__(self, total: int, done: int, callback: ProgressCallback | None):
        self.total, self.done, self.scored = total, done, 0
        self.callback = callback
        self.t0 = time.perf_counter()
        self._emit()

    def add(self, n: int) -> None:
        self.done += n
        self.scored += n
        self._emit()

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
    done_keys: set[tuple[int, str, int]]
    corrupt: list[str] = field(default_factory=list)
    #: key -> shard id of stored failed rows being scored again; dropped once their replacement is written
    superseded: dict[tuple[int, str, int], int] = field(default_factory=dict)
    written: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    error_rows: int = 0
    retries: int = 0

    @property
    def data_name(self) -> str:
        return self.batch.name

    @property
    def todo_archs(self) -> int:
        return sum(len(s) for s in self.todo)

    def tracker(self, callback: ProgressCallback | None) -> Tracker:
        return Tracker(len(self.ids), len(self.ids) - self.todo_archs, callback)

    def write(self, shard: Shard, table: pa.Table, failed: bool = False) -> None:
        """Atomically write ``shard``'s rows, minus any already stored key (so keys never duplicate)."""
        table = drop_done_rows(table, self.done_keys)
        self.store.write_shard(shard.shard_id, table)
        keys = [(int(a), str(m), int(s)) for a, m, s in zip(table.column("arch_index").to_pylist(),
                                                           table.column("metric").to_pylist(),
                                                           table.column("seed").to_pylist())]
        self.done_keys.update(keys)
        replaced = {k: self.superseded.pop(k) for k in keys if k in self.superseded}
        for sid, old in _by_shard(replaced).items():
            self.store.drop_keys(sid, old)
        self.written.append(shard.shard_id)
        self.error_rows += count_errors(table)
        if failed:
            self.failed.append(shard.shard_id)

    def summary(self, seconds: float, workers: int) -> dict[str, Any]:
        scored = self.todo_archs
        return {
            "out": self.cfg.out,
            "archs": len(self.ids),
            "already_done": len(self.ids) - scored,
            "scored": scored,
            "shards_written": len(self.written),
            "failed_shards": list(self.failed),
            "retries": self.retries,
            "error_rows": self.error_rows,
            "corrupt_shards": list(self.corrupt),
            "workers": workers,
            "seconds": round(seconds, 3),
            "archs_per_s": round(scored / seconds, 3) if seconds > 0 and scored else 0.0,
        }


def prepare_run(cfg: "ScoreConfig") -> RunState:
    """Open the store, enforce the fresh/resume rules, build the space and batch, plan the missing shards."""
    from raynas.data import create_batch
    from raynas.spaces import create_space
    from raynas.store import ScoreStore

    space = create_space(cfg.space)
    metrics = cfg.metric_names()
    # Everything that can reject the config runs before the store is touched, so a refused run leaves no
    # config.json behind: the selection, the batch, and one network build with the given space options
    # (a bad option would otherwise turn every arch into error rows).
    ids = select_ids(space, cfg)
    batch = create_batch(cfg.data, batch_size=cfg.batch_size, seed=cfg.seed, size=cfg.image_size)
    if ids:
        space.to_module(space.index_to_arch(ids[0]), batch.num_classes, **cfg.space_kwargs)
    resolved = cfg.resolved()
    store = ScoreStore(cfg.out)
    stored_cfg = store.load_config()  # None when absent; unreadable JSON is a StoreError
    existing = list(store.shard_ids())
    corrupt: list[str] = []
    if not cfg.resume:
        if existing or stored_cfg is not None:
            raise StoreError(
                f"{cfg.out} already holds a scoring run; pass --resume to continue it or choose another --out"
            )
        store.save_config(resolved)
    elif stored_cfg is None:
        if existing:
            raise StoreError(f"{cfg.out} holds shard files but no run config; cannot resume it safely")
        store.save_config(resolved)
    else:
        store.check_config(resolved, force=cfg.force)
        if cfg.force:
            store.save_config(resolved)
        _good, bad = store.verify()
        for path, reason in bad:
            log.warning("corrupt shard %s (%s): moved aside and re-scored", path, reason)
            store.quarantine(path)
            corrupt.append(str(getattr(path, "name", path)))
        existing = list(store.shard_ids())
    done = set(store.done_keys()) if existing else set()
    retry = store.failed_rows() if existing else {}
    if retry:
        # Failed rows are scored again. One whose replacement was already written (a resume killed between
        # writing the new shard and dropping the old row) is dropped now, so no key is stored twice.
        counts = Counter(zip(*(store.read(["arch_index", "metric", "seed"]).column(c).to_pylist()
                               for c in ("arch_index", "metric", "seed"))))
        stale = {k: sid for k, sid in retry.items() if counts[k] > 1}
        for sid, keys in _by_shard(stale).items():
            store.drop_keys(sid, keys)
        retry = {k: sid for k, sid in retry.items() if k not in stale}
        done -= set(retry)
        log.info("%s: %d failed rows will be scored again", cfg.out, len(retry))
    todo = missing_work(plan_shards(ids, cfg.shard_size), done, metrics, cfg.seed, existing_ids=existing)
    log.info("%s: %d archs, %d shards to score (%d corrupt moved aside)", cfg.out, len(ids), len(todo), len(corrupt))
    return RunState(cfg, store, space, metrics, batch, ids, todo, done, corrupt, superseded=retry)


def _by_shard(keys: dict[tuple[int, str, int], int]) -> dict[int, set[tuple[int, str, int]]]:
    """Group ``key -> shard id`` by shard id."""
    out: dict[int, set[tuple[int, str, int]]] = {}
    for k, sid in keys.items():
        out.setdefault(sid, set()).add(k)
    return out
