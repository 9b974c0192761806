"""A run directory of Parquet score shards plus the run's config, crash-safe by construction.

:class:`ScoreStore` is the Parquet backend of the :class:`raynas.store.Store` protocol; the file names are
:class:`raynas.store.layout.RunLayout`'s. Every shard is written to a temp name then ``os.replace``'d
(:func:`raynas.store.atomic.atomic_write`), so a shard file under its final name is always complete: a crash
leaves at most a hidden temp file, which :meth:`ScoreStore.shard_ids` ignores, so a resumed run simply writes
that shard again.
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Collection, Iterable, Iterator, Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from raynas.errors import ConfigError, RaynasError, StoreError
from raynas.store.atomic import atomic_write, read_json, write_bytes
from raynas.store.claim import DirClaim
from raynas.store.keys import RowKey, key_mask, row_keys
from raynas.store.layout import CONFIG_FILE, RunLayout, shard_id_of
from raynas.store.plan import NO_PLANNER, Planner, RunPlan, plan_from_dict, plan_to_dict
from raynas.store.schema import COLUMNS, STATUSES, conform, empty_table, relabel_nonfinite, validate_table

log = logging.getLogger(__name__)

#: config keys that only decide how a run executes (where, on how many actors, whether resuming), never which
#: rows it produces: they may change between a run and its resume. The one list: ``raynas.parallel.config``
#: splits a resolved config with it, the store compares stored configs without it.
VOLATILE_KEYS: tuple[str, ...] = (
    "out",
    "workers",
    "gpus_per_worker",
    "cpus_per_worker",
    "address",
    "resume",
    "force",
    "adopt",
    "max_retries",
    "shard_timeout_s",
    "metric_modules",
    "arch_batch",
    "channels_last",
)
#: statuses of rows a resumed run scores again (their replacements supersede them, see ``drop_keys``)
RETRY_STATUSES = ("error", "oom")
EXPORT_FORMATS = ("csv", "parquet")


class ScoreStore:
    """The score shards and config of one run directory (nothing is created until the first write).

    ``planner`` turns the stored config into the run's :class:`~raynas.store.plan.RunPlan` for
    :meth:`completeness`; without one the plan is unknown (and the run reported incomplete). Open a score run
    with :func:`raynas.parallel.open_run` (or :func:`raynas.store.open_store` with a planner) rather than by hand.
    """

    def __init__(self, run_dir: str | Path, planner: Planner | None = None):
        self.layout = RunLayout(Path(run_dir))
        self.run_dir = self.layout.run_dir
        self.scores_dir = self.layout.scores_dir
        self.corrupt_dir = self.layout.corrupt_dir
        self.config_path = self.layout.config_path
        self.planner = planner

    def __repr__(self) -> str:
        return f"ScoreStore({str(self.run_dir)!r})"

    def claim(self) -> DirClaim:
        """The one-writer claim of this run (:class:`raynas.store.claim.DirClaim`): hold it while writing; ending
        with an exception before any shard was stored puts ``config.json`` back as it was."""
        return DirClaim(self.run_dir, "scoring run", watched=[self.config_path])

    # --- shards ---------------------------------------------------------------------------------------

    def shard_path(self, shard_id: int) -> Path:
        if int(shard_id) < 0:
            raise StoreError(f"shard ids must be >= 0, got {shard_id}")
        return self.layout.shard_path(shard_id)

    def write_shard(self, shard_id: int, table: pa.Table) -> Path:
        """Atomically (re)write shard ``shard_id``; the table is validated against the schema first."""
        table = conform(table)
        path = self.shard_path(shard_id)
        atomic_write(path, lambda f: pq.write_table(table, f))
        return path

    def shard_files(self) -> list[Path]:
        """Shard files under their final names, sorted by shard id."""
        if not self.scores_dir.is_dir():
            return []
        files = [p for p in self.scores_dir.iterdir() if p.is_file() and shard_id_of(p) is not None]
        return sorted(files, key=lambda p: shard_id_of(p))  # type: ignore[arg-type, return-value]

    def shard_ids(self) -> set[int]:
        """Ids of the shard files present (temp files of interrupted writes are not counted)."""
        return {shard_id_of(p) for p in self.shard_files()}  # type: ignore[misc]

    @staticmethod
    def check_file(path: Path, deep: bool = False) -> str | None:
        """None if ``path`` is a readable shard with the current schema, else the reason it is not.

        The footer (schema, row count) is always read; ``deep`` also decodes every row group.
        """
        try:
            pf = pq.ParquetFile(path)
            validate_table(pf.schema_arrow)
            if deep:
                pf.read()
        except StoreError as e:
            return str(e)
        except (pa.ArrowException, OSError) as e:  # ArrowInvalid (bad magic, truncated footer), IO errors
            return f"{type(e).__name__}: {e}"
        return None

    def verify(self, deep: bool = False) -> tuple[list[Path], list[tuple[Path, str]]]:
        """``(good, bad)`` shard files; ``bad`` pairs each damaged file with the reason."""
        good: list[Path] = []
        bad: list[tuple[Path, str]] = []
        for p in self.shard_files():
            reason = self.check_file(p, deep)
            if reason is None:
                good.append(p)
            else:
                bad.append((p, reason))
        return good, bad

    def quarantine(self, path: str | Path) -> Path:
        """Move ``path`` into ``scores/corrupt/`` (a numbered suffix avoids overwriting); returns the new path."""
        src = Path(path)
        if not src.exists():
            raise StoreError(f"cannot quarantine {src}: no such file")
        try:
            self.corrupt_dir.mkdir(parents=True, exist_ok=True)
            dst, k = self.corrupt_dir / src.name, 0
            while dst.exists():
                k += 1
                dst = self.corrupt_dir / f"{src.name}.{k}"
            os.replace(src, dst)
        except OSError as e:
            raise StoreError(f"cannot move {src} to {self.corrupt_dir}: {e.strerror or e}") from None
        log.warning("moved damaged shard %s to %s", src, dst)
        return dst

    def _read_shards(self, columns: list[str]) -> Iterator[tuple[Path, pa.Table | None, str | None]]:
        """``(path, table, None)`` for each readable shard, ``(path, None, reason)`` for each damaged one.

        ``table`` holds ``columns`` with non-finite ``ok`` values re-labelled ``nan`` (they are read along
        whenever ``status`` is asked for, so a column subset sees the same statuses as a full read).
        """
        need = list(columns)
        if "status" in need:
            need += [c for c in ("value", "error") if c not in need]
        for p in self.shard_files():
            reason = self.check_file(p)
            if reason is None:
                try:
                    t = pq.read_table(p, columns=need)
                except (pa.ArrowException, OSError) as e:  # footer fine, data pages damaged
                    reason = f"{type(e).__name__}: {e}"
                else:
                    yield p, relabel_nonfinite(t).select(columns), None
                    continue
            yield p, None, reason

    def read(self, columns: Iterable[str] | None = None) -> pa.Table:
        """All good shards concatenated in shard order (damaged files are skipped with a warning).

        A row stored with status ``ok`` but a NaN or infinite value is returned with status ``nan``, a null
        value and an error text naming the stored value (:func:`raynas.store.schema.relabel_nonfinite`); the
        file itself is left as it is.
        """
        cols = list(columns) if columns is not None else list(COLUMNS)
        unknown = [c for c in cols if c not in COLUMNS]
        if unknown:
            raise StoreError(f"unknown score column(s) {unknown} (known: {', '.join(COLUMNS)})")
        tables = []
        for p, t, reason in self._read_shards(cols):
            if t is None:
                log.warning("skipping damaged shard %s (%s)", p, reason)
            else:
                tables.append(t)
        if not tables:
            return empty_table().select(cols)
        return pa.concat_tables(tables)

    def read_wide(self) -> pa.Table:
        """:func:`to_wide` of :meth:`read`: one row per ``(space, arch_index, arch, seed)``, one column per metric."""
        return to_wide(self.read())

    def export_path(self, fmt: str) -> Path:
        """Where :meth:`export_wide` writes by default: ``RUN/scores_wide.<fmt>``."""
        return self.layout.export_path(_export_format(fmt))

    def export_wide(self, fmt: str = "csv", path: str | Path | None = None) -> Path:
        """Atomically write :meth:`read_wide` as ``fmt`` (``csv`` or ``parquet``) to ``path`` (default
        :meth:`export_path`); returns the path. In CSV a metric that has no ok value is an empty field.

        Raises:
            ConfigError: unknown format. StoreError: the run holds no shard files, or ``path`` cannot be written.
        """
        fmt = _export_format(fmt)
        if not self.shard_files():
            raise StoreError(f"{self.run_dir} is not a score run (no {self.scores_dir.name}/shard-*.parquet)")
        wide = self.read_wide()
        dest = Path(path) if path is not None else self.export_path(fmt)
        if fmt == "parquet":
            atomic_write(dest, lambda f: pq.write_table(wide, f))
        else:
            import pyarrow.csv as pcsv

            atomic_write(dest, lambda f: pcsv.write_csv(wide, f))
        return dest

    def exists(self) -> bool:
        """The directory holds a score run, whole or in part (shards or a config)."""
        return self.layout.exists()

    def completeness(self) -> "RunCompleteness":
        """How complete this run is, against the plan of its stored config (one pass over every shard).

        The plan (which archs, in which shards) is the store's planner applied to ``config.json`` (for a
        ``raynas score`` run: exactly as it planned); without a readable config, or without a planner, the
        planned totals are ``None``. A shard file that cannot be
        read (bad footer, wrong schema, damaged pages) is corrupt; a readable one holding ``error``/``oom``
        rows is failed (a resume scores those rows again). Rows are counted by status after re-labelling
        non-finite ``ok`` values as ``nan``.
        """
        config_present = self.config_path.exists()
        config_error: str | None = None
        plan: RunPlan | None = None
        try:
            cfg = self.flat_config()
        except StoreError as e:
            cfg, config_error = None, str(e)
        stored_plan = self.stored_plan() if cfg is not None else None
        if cfg is not None and self.planner is None and stored_plan is None:
            config_error = NO_PLANNER
        elif cfg is not None and self.planner is None:
            plan = stored_plan  # what the run planned, stored with its config
        elif cfg is not None:
            try:
                plan = self.planner(cfg, self.run_dir)  # type: ignore[misc]
            except RaynasError as e:
                config_error = f"{self.config_path} does not describe a scoring run: {e}"
        present: list[int] = []
        corrupt: list[tuple[str, str]] = []
        failed: list[int] = []
        seen_ids: set[int] = set()
        archs: set[int] = set()
        stored: set[tuple[int, str]] = set()  # (arch, metric) rows of the planned seed
        counts = {s: 0 for s in STATUSES}
        key_count: Counter[RowKey] = Counter()
        first_shard: dict[RowKey, int] = {}
        dup_shards: set[int] = set()
        for p, t, reason in self._read_shards(["arch_index", "metric", "seed", "status"]):
            sid = shard_id_of(p)
            seen_ids.add(sid)  # type: ignore[arg-type]
            if t is None:
                corrupt.append((p.name, str(reason)))
                continue
            present.append(sid)  # type: ignore[arg-type]
            keys, st_col = row_keys(t), t.column("status").to_pylist()
            key_count.update(keys)
            for k in keys:
                if k in first_shard:
                    dup_shards.update((first_shard[k], sid))  # type: ignore[arg-type]
                else:
                    first_shard[k] = sid  # type: ignore[assignment]
            archs.update(a for a, _m, _s in keys)
            if plan is not None:
                stored.update((a, m) for a, m, sd in keys if sd == plan.seed)
            for st in st_col:
                counts[st] = counts.get(st, 0) + 1
            if any(st in RETRY_STATUSES for st in st_col):
                failed.append(sid)
        quarantined = tuple(sorted(p.name for p in self.corrupt_dir.iterdir() if p.is_file())) \
            if self.corrupt_dir.is_dir() else ()
        missing: tuple[int, ...] = ()
        archs_missing = archs_partial = None
        if plan is not None:
            lacking = {a for a in plan.ids if any((a, m) not in stored for m in plan.metrics)}
            # a planned shard without a file is missing unless its archs are stored elsewhere (a re-sharded run)
            missing = tuple(sid for sid, ids in plan.shards if sid not in seen_ids and lacking.intersection(ids))
            archs_missing = len(set(plan.ids) - archs)
            archs_partial = len({a for a in lacking if a in archs})
        return RunCompleteness(
            run_dir=self.run_dir,
            config_present=config_present,
            config_error=config_error,
            planned_archs=len(plan.ids) if plan is not None else None,
            planned_shards=tuple(sid for sid, _ in plan.shards) if plan is not None else None,
            present_shards=tuple(present),
            corrupt_shards=tuple(corrupt),
            missing_shards=missing,
            failed_shards=tuple(failed),
            quarantined=quarantined,
            archs_present=len(archs),
            archs_missing=archs_missing,
            archs_partial=archs_partial,
            rows_by_status=MappingProxyType({k: v for k, v in counts.items() if v}),
            duplicate_keys=sum(1 for n in key_count.values() if n > 1),
            duplicate_rows=sum(n - 1 for n in key_count.values() if n > 1),
            duplicate_shards=tuple(sorted(dup_shards)),
        )

    def require_complete(self, action: str = "use it") -> "RunCompleteness":
        """:meth:`completeness`, raising :class:`StoreError` (naming every problem) unless the run is complete."""
        c = self.completeness()
        if not c.complete:
            raise StoreError(f"{self.run_dir} is incomplete, refusing to {action}: {'; '.join(c.problems())}")
        return c

    def failed_rows(self) -> dict[RowKey, int]:
        """Key -> shard id of every stored row whose status is in :data:`RETRY_STATUSES` (a resume scores
        these again: an actor lost past its retries or memory taken by another job is often transient)."""
        out: dict[RowKey, int] = {}
        for p in self.shard_files():
            if self.check_file(p) is not None:
                continue
            try:
                t = pq.read_table(p, columns=["arch_index", "metric", "seed", "status"])
            except (pa.ArrowException, OSError):
                continue
            sid = shard_id_of(p)
            for key, st in zip(row_keys(t), t.column("status").to_pylist()):
                if st in RETRY_STATUSES:
                    out[key] = sid  # type: ignore[assignment]
        return out

    def drop_keys(self, shard_id: int, keys: Collection[RowKey]) -> None:
        """Atomically rewrite shard ``shard_id`` without the rows whose ``(arch_index, metric, seed)`` is in
        ``keys`` (used once a newer shard holds their replacements, so no key is ever stored twice)."""
        path = self.shard_path(shard_id)
        try:
            t = pq.read_table(path)
        except (pa.ArrowException, OSError) as e:
            raise StoreError(f"cannot read {path}: {e}") from None
        self.write_shard(shard_id, t.filter(pc.invert(key_mask(t, keys))))

    def repair_duplicates(self) -> int:
        """Keep one row per ``(arch_index, metric, seed)`` key: every extra row of a key stored more than once (two
        writers of one run, a resume killed between writing a replacement and dropping the row it replaces) is
        dropped. The row kept is the one :func:`to_wide` reads: an ``ok`` row over a failed one, then the later (in
        shard order, then row order). Each affected shard is rewritten atomically and the kept row is never
        touched, so a repair killed half-way leaves every key stored and is simply run again. Returns the number
        of rows dropped."""
        best: dict[RowKey, tuple[bool, int, int]] = {}
        rows: list[tuple[RowKey, int, int]] = []
        for p, t, _reason in self._read_shards(["arch_index", "metric", "seed", "status"]):
            if t is None:
                continue  # a damaged shard is quarantined by the resume, not repaired here
            sid = shard_id_of(p)
            for pos, (key, st) in enumerate(zip(row_keys(t), t.column("status").to_pylist())):
                rank = (st == "ok", sid, pos)
                rows.append((key, sid, pos))  # type: ignore[arg-type]
                if key not in best or rank > best[key]:
                    best[key] = rank  # type: ignore[assignment]
        drop: dict[int, set[int]] = {}
        for key, sid, pos in rows:
            if best[key][1:] != (sid, pos):
                drop.setdefault(sid, set()).add(pos)
        for sid, positions in sorted(drop.items()):
            path = self.shard_path(sid)
            try:
                t = pq.read_table(path)
            except (pa.ArrowException, OSError) as e:
                raise StoreError(f"cannot read {path}: {e}") from None
            keep = pa.array([i not in positions for i in range(t.num_rows)])
            self.write_shard(sid, t.filter(keep))
            log.warning("%s: dropped %d duplicate row(s) from shard %d", self.run_dir, len(positions), sid)
        return sum(len(v) for v in drop.values())

    def done_keys(self) -> set[RowKey]:
        """``(arch_index, metric, seed)`` of every stored row, whatever its status."""
        return set(row_keys(self.read(["arch_index", "metric", "seed"])))

    # --- config ---------------------------------------------------------------------------------------

    def save_config(self, cfg: Mapping[str, Any], plan: RunPlan | None = None) -> Path:
        """Atomically write ``config.json`` (sorted keys, so equal configs give equal files); ``plan``: what the
        run planned (its ``plan`` section, so :meth:`completeness` needs no planner)."""
        if plan is not None:
            cfg = {**dict(cfg), "plan": plan_to_dict(plan)}
        try:
            text = json.dumps(cfg, indent=2, sort_keys=True) + "\n"
        except (TypeError, ValueError) as e:
            raise StoreError(f"run config is not JSON-serialisable: {e}") from None
        return write_bytes(self.config_path, text.encode())

    def load_config(self) -> dict[str, Any] | None:
        """The stored config, None when there is none; unreadable or non-mapping JSON is a StoreError."""
        cfg = read_json(self.config_path, missing=_MISSING)
        if cfg is _MISSING:  # nothing stored there (yet)
            return None
        if not isinstance(cfg, dict):
            raise StoreError(f"{self.config_path} must hold a JSON object")
        return cfg

    def stored_plan(self) -> RunPlan | None:
        """The plan stored in ``config.json`` (:meth:`save_config`), None when it holds none (older runs) or the
        config cannot be read; a malformed plan section is a StoreError."""
        try:
            cfg = self.load_config()
        except StoreError:
            return None
        if cfg is None or "plan" not in cfg:
            return None
        try:
            return plan_from_dict(cfg["plan"])
        except (KeyError, TypeError, ValueError) as e:
            raise StoreError(f"{self.config_path}: malformed plan section ({type(e).__name__}: {e})") from None

    def flat_config(self) -> dict[str, Any] | None:
        """The stored config as one flat mapping (``identity`` and ``volatile`` sections merged), or None."""
        cfg = self.load_config()
        if cfg is None or not isinstance(cfg.get("identity"), Mapping):
            return cfg
        return {**dict(cfg.get("volatile") or {}), **dict(cfg["identity"])}

    def check_config(self, cfg: Mapping[str, Any], force: bool = False) -> list[str]:
        """Compare ``cfg`` with the stored config on the keys that define the run.

        Volatile keys (:data:`VOLATILE_KEYS`, or the ``volatile`` part of an ``{"identity", "volatile"}``
        config) are ignored. Returns the differing keys (empty when equal or nothing is stored).

        Raises:
            StoreError: the configs differ and ``force`` is False; the message names every differing key.
        """
        stored = self.load_config()
        if stored is None:
            return []
        try:
            new = json.loads(json.dumps(dict(cfg)))  # tuples -> lists, as the stored copy went through JSON
        except (TypeError, ValueError) as e:
            raise StoreError(f"run config is not JSON-serialisable: {e}") from None
        changes = config_differences(config_identity(stored), config_identity(new))
        diff = list(changes)
        if diff and not force:
            detail = "; ".join(f"{k}: {change}" for k, change in changes.items())
            raise StoreError(f"{self.run_dir} was created with a different config ({detail}); "
                             "use another output directory, or force to override")
        if diff:
            log.warning("%s: config differs in %s; continuing because force is set", self.run_dir, diff)
        return diff


def _export_format(fmt: str) -> str:
    if fmt not in EXPORT_FORMATS:
        raise ConfigError(f"unknown export format {fmt!r} (known: {', '.join(EXPORT_FORMATS)})")
    return fmt


@dataclass(frozen=True)
class RunCompleteness:
    """What a score run holds compared with what its config planned (:meth:`ScoreStore.completeness`).

    Attributes:
        run_dir: the run directory.
        config_present: ``config.json`` exists.
        config_error: why the config could not be used to plan the run (unreadable JSON, not a scoring
            config), else None.
        planned_archs, planned_shards: the plan's arch count and shard ids; None without a usable config.
        present_shards: ids of the readable shard files.
        corrupt_shards: ``(file name, reason)`` of each shard file that cannot be read.
        missing_shards: planned shard ids with no file while some of their archs lack a planned row (a
            shard whose archs are all stored in other files, after a re-sharded resume, is not missing;
            empty when the plan is unknown).
        failed_shards: readable shards holding ``error``/``oom`` rows.
        quarantined: file names moved to ``scores/corrupt/`` by an earlier resume (information only).
        archs_present: distinct archs with at least one row in a readable shard.
        archs_missing: planned archs with no such row; None when the plan is unknown.
        archs_partial: planned archs with some rows but not one for every planned metric (at the run's
            seed); None when the plan is unknown.
        rows_by_status: row count per status (statuses with no rows left out).
        duplicate_keys: ``(arch_index, metric, seed)`` keys stored more than once (two writers of one run);
            ``duplicate_rows`` the extra rows, ``duplicate_shards`` the shards holding them. A resume drops them
            (:meth:`ScoreStore.repair_duplicates`).
    """

    run_dir: Path
    config_present: bool
    config_error: str | None
    planned_archs: int | None
    planned_shards: tuple[int, ...] | None
    present_shards: tuple[int, ...]
    corrupt_shards: tuple[tuple[str, str], ...]
    missing_shards: tuple[int, ...]
    failed_shards: tuple[int, ...]
    quarantined: tuple[str, ...]
    archs_present: int
    archs_missing: int | None
    archs_partial: int | None
    rows_by_status: Mapping[str, int] = field(hash=False)
    duplicate_keys: int = 0
    duplicate_rows: int = 0
    duplicate_shards: tuple[int, ...] = ()

    @property
    def complete(self) -> bool:
        """A usable config, no missing, corrupt or failed shard, and a row for every planned (arch, metric)."""
        return not self.problems()

    def problems(self) -> list[str]:
        """One line per reason the run is not complete (empty when it is)."""
        out: list[str] = []
        if not self.config_present:
            out.append(f"{CONFIG_FILE} missing: the planned total is unknown")
        elif self.config_error is not None:
            out.append(f"config unusable ({self.config_error}): the planned total is unknown")
        if self.missing_shards and self.planned_shards is not None:
            out.append(f"{len(self.missing_shards)} of {len(self.planned_shards)} planned shards missing "
                       f"({_ids(self.missing_shards)})")
        out += [f"corrupt shard {name}: {reason}" for name, reason in self.corrupt_shards]
        if self.failed_shards:
            out.append(f"failed rows (error/oom) in shard{'s' if len(self.failed_shards) > 1 else ''} "
                       f"{_ids(self.failed_shards)}")
        if self.archs_missing:
            out.append(f"{self.archs_missing} of {self.planned_archs} planned archs have no stored rows")
        if self.archs_partial:
            out.append(f"{self.archs_partial} of {self.planned_archs} planned archs lack rows for some planned "
                       "metrics")
        if self.duplicate_keys:
            out.append(f"{self.duplicate_keys} (arch, metric, seed) key(s) stored more than once "
                       f"({self.duplicate_rows} extra row(s) in shard(s) {_ids(self.duplicate_shards)}); "
                       "raynas score --resume drops them")
        return out

    def summary(self) -> str:
        """One line: archs present of planned, and the shard counts."""
        planned = "?" if self.planned_archs is None else str(self.planned_archs)
        shards = [f"{len(self.present_shards)} readable"]
        if self.planned_shards is not None:
            shards.insert(0, f"{len(self.planned_shards)} planned")
            if self.missing_shards:
                shards.append(f"{len(self.missing_shards)} missing")
        if self.corrupt_shards:
            shards.append(f"{len(self.corrupt_shards)} corrupt")
        if self.failed_shards:
            shards.append(f"{len(self.failed_shards)} with failed rows")
        if self.duplicate_shards:
            shards.append(f"{len(self.duplicate_shards)} with duplicate keys")
        rows = ", ".join(f"{n} {s}" for s, n in self.rows_by_status.items()) or "none"
        return (f"{'complete' if self.complete else 'INCOMPLETE'}: archs {self.archs_present} of {planned} planned "
                f"have stored rows; shards: {', '.join(shards)}; rows: {rows}")


def _ids(ids: tuple[int, ...], limit: int = 10) -> str:
    shown = ", ".join(str(i) for i in ids[:limit])
    return shown + (f", ... ({len(ids) - limit} more)" if len(ids) > limit else "")


_MISSING = object()


def config_identity(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The run-defining part of a stored config: its ``identity`` section, else every non-volatile key
    (:data:`VOLATILE_KEYS`) of a flat one."""
    if isinstance(cfg.get("identity"), Mapping):
        return dict(cfg["identity"])
    return {k: v for k, v in cfg.items() if k not in VOLATILE_KEYS}


def config_differences(stored: Mapping[str, Any], given: Mapping[str, Any]) -> dict[str, str]:
    """``key -> "stored X, given Y"`` for every key whose value differs, sorted by key (an absent key shows as
    ``(absent)``, a long value is cut at 80 characters): how resume refusals name what changed."""
    return {k: f"stored {_show(stored.get(k, _MISSING))}, given {_show(given.get(k, _MISSING))}"
            for k in sorted(set(stored) | set(given)) if stored.get(k, _MISSING) != given.get(k, _MISSING)}


def _show(v: Any) -> str:
    if v is _MISSING:
        return "(absent)"
    s = json.dumps(v)
    return s if len(s) <= 80 else s[:77] + "..."


#: the columns of :func:`to_wide` that identify a row; every other column is a metric
WIDE_ID_COLUMNS = ("space", "arch_index", "arch", "seed")


def to_wide(table: pa.Table) -> pa.Table:
    """Pivot long score rows to one row per ``(space, arch_index, arch, seed)``, one float64 column per metric.

    A metric whose status is not ``ok``, whose value is not finite, or that was never scored for that arch is
    null. When a key
    occurs twice (an arch re-scored after an error), an ``ok`` value wins over a failure, and the later
    of two ``ok`` values wins. Rows are sorted by ``(space, arch_index, seed)``, metric columns by name.
    """
    need = ("space", "arch_index", "arch", "seed", "metric", "value", "status")
    missing = [c for c in need if c not in table.column_names]
    if missing:
        raise StoreError(f"to_wide needs column(s) {missing}")
    # An Arrow pivot (no loop over rows in Python): each row gets the id of its key and of its metric, the winner
    # of every (key, metric) cell is its last ok row, and one float64 column per metric is scattered from those.
    n = table.num_rows
    pos = pa.array(np.arange(n, dtype=np.int64))
    ids = table.select(list(WIDE_ID_COLUMNS)).append_column("__pos", pos)
    groups = ids.group_by(list(WIDE_ID_COLUMNS), use_threads=False).aggregate(
        [("__pos", "list"), ("__pos", "min")])
    members = groups.column("__pos_list").combine_chunks()
    key_of = np.empty(n, dtype=np.int64)
    key_of[pc.list_flatten(members).to_numpy()] = np.repeat(
        np.arange(groups.num_rows), pc.list_value_length(members).to_numpy())
    metric = table.column("metric").combine_chunks().dictionary_encode()
    names_all = metric.dictionary.to_pylist()
    metric_of = metric.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    value = table.column("value").combine_chunks()
    v = value.fill_null(np.nan).to_numpy(zero_copy_only=False).astype(np.float64)
    ok = (pc.equal(table.column("status"), "ok").fill_null(False).to_numpy(zero_copy_only=False)
          & np.isfinite(v))  # a non-finite or null "ok" value is no score
    n_metrics = len(names_all)
    last = np.full(groups.num_rows * n_metrics, -1, dtype=np.int64)
    np.maximum.at(last, (key_of * n_metrics + metric_of)[ok], np.flatnonzero(ok))  # the later ok value wins
    # rows sorted by (space, arch_index, seed, arch with null as ""), ties by first appearance
    order_of = groups.select(list(WIDE_ID_COLUMNS)).append_column(
        "__arch", pc.fill_null(groups.column("arch"), "")).append_column("__first", groups.column("__pos_min"))
    order = pc.sort_indices(order_of, sort_keys=[("space", "ascending"), ("arch_index", "ascending"),
                                                 ("seed", "ascending"), ("__arch", "ascending"),
                                                 ("__first", "ascending")]).to_numpy()
    types = {"space": pa.string(), "arch_index": pa.int64(), "arch": pa.string(), "seed": pa.int64()}
    cols: dict[str, pa.Array] = {c: groups.column(c).take(pa.array(order)).combine_chunks().cast(types[c])
                                 for c in WIDE_ID_COLUMNS}
    cells = last.reshape(groups.num_rows, n_metrics)[order]
    for m in sorted(names_all):
        won = cells[:, names_all.index(m)]
        cols[m] = pa.array(np.where(won >= 0, v[np.maximum(won, 0)], 0.0), pa.float64(), mask=won < 0)
    return pa.table(cols)
