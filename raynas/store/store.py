"""A run directory of Parquet score shards plus the run's config, crash-safe by construction.

Layout::

    run_dir/config.json                  the resolved run config (atomic rewrite)
    run_dir/scores/shard-000042.parquet  one file per shard, written to a temp name then os.replace'd
    run_dir/scores/corrupt/              damaged shard files moved aside (never deleted)

A shard file under its final name is always complete: a crash leaves at most a hidden temp file, which
:meth:`ScoreStore.shard_ids` ignores, so a resumed run simply writes that shard again.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Collection, Iterable, Iterator, Mapping

import pyarrow as pa
import pyarrow.parquet as pq

from raynas.errors import RaynasError, StoreError
from raynas.store.schema import COLUMNS, STATUSES, conform, empty_table, relabel_nonfinite, validate_table

log = logging.getLogger(__name__)

#: config keys that only decide how a run executes (never which rows it produces): they may change on resume
VOLATILE_KEYS = frozenset(
    {"out", "workers", "gpus_per_worker", "cpus_per_worker", "address", "resume", "force", "max_retries"}
)
SHARD_RE = re.compile(r"^shard-(\d{6,})\.parquet$")
#: statuses of rows a resumed run scores again (their replacements supersede them, see ``drop_keys``)
RETRY_STATUSES = ("error", "oom")
CONFIG_NAME = "config.json"
#: the wide table written by :meth:`ScoreStore.export_wide` when no path is given: ``RUN/scores_wide.<fmt>``
EXPORT_STEM = "scores_wide"
EXPORT_FORMATS = ("csv", "parquet")


def _fsync_dir(d: Path) -> None:
    """Persist a rename (POSIX needs the directory entry flushed too); not possible on every OS."""
    try:
        fd = os.open(d, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: Path, write: Any) -> None:
    """Write ``path`` via ``write(file_object)`` into a temp file of the same directory, fsync, then rename.

    On any failure the temp file is removed and ``path`` keeps its old content (or stays absent).
    OSErrors become :class:`StoreError` naming ``path``.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise StoreError(f"cannot write {path}: {e.strerror or e}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            if hasattr(os, "fchmod"):  # mkstemp creates 0600; score files are meant to be shared read-only
                os.fchmod(f.fileno(), 0o644)
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(e, OSError):
            raise StoreError(f"cannot write {path}: {e.strerror or e}") from None
        raise
    _fsync_dir(path.parent)


class ScoreStore:
    """The score shards and config of one run directory (nothing is created until the first write)."""

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)
        self.scores_dir = self.run_dir / "scores"
        self.corrupt_dir = self.scores_dir / "corrupt"
        self.config_path = self.run_dir / CONFIG_NAME

    def __repr__(self) -> str:
        return f"ScoreStore({str(self.run_dir)!r})"

    # --- shards ---------------------------------------------------------------------------------------

    def shard_path(self, shard_id: int) -> Path:
        if int(shard_id) < 0:
            raise StoreError(f"shard ids must be >= 0, got {shard_id}")
        return self.scores_dir / f"shard-{int(shard_id):06d}.parquet"

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
        files = [p for p in self.scores_dir.iterdir() if p.is_file() and SHARD_RE.match(p.name)]
        return sorted(files, key=lambda p: int(SHARD_RE.match(p.name).group(1)))  # type: ignore[union-attr]

    def shard_ids(self) -> set[int]:
        """Ids of the shard files present (temp files of interrupted writes are not counted)."""
        return {int(SHARD_RE.match(p.name).group(1)) for p in self.shard_files()}  # type: ignore[union-attr]

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
        return self.run_dir / f"{EXPORT_STEM}.{_export_format(fmt)}"

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

    def completeness(self) -> "RunCompleteness":
        """How complete this run is, against the plan of its stored config (one pass over every shard).

        The plan (which archs, in which shards) is recomputed from ``config.json`` exactly as ``raynas score``
        planned it; without a readable config the planned totals are ``None``. A shard file that cannot be
        read (bad footer, wrong schema, damaged pages) is corrupt; a readable one holding ``error``/``oom``
        rows is failed (a resume scores those rows again). Rows are counted by status after re-labelling
        non-finite ``ok`` values as ``nan``.
        """
        config_present = self.config_path.exists()
        config_error: str | None = None
        plan: _Plan | None = None
        try:
            cfg = self.flat_config()
        except StoreError as e:
            cfg, config_error = None, str(e)
        if cfg is not None:
            try:
                plan = _plan(cfg, self.run_dir)
            except RaynasError as e:
                config_error = f"{self.config_path} does not describe a scoring run: {e}"
        present: list[int] = []
        corrupt: list[tuple[str, str]] = []
        failed: list[int] = []
        seen_ids: set[int] = set()
        archs: set[int] = set()
        stored: set[tuple[int, str]] = set()  # (arch, metric) rows of the planned seed
        counts = {s: 0 for s in STATUSES}
        for p, t, reason in self._read_shards(["arch_index", "metric", "seed", "status"]):
            sid = int(SHARD_RE.match(p.name).group(1))  # type: ignore[union-attr]
            seen_ids.add(sid)
            if t is None:
                corrupt.append((p.name, str(reason)))
                continue
            present.append(sid)
            a_col, m_col, s_col, st_col = (t.column(c).to_pylist() for c in ("arch_index", "metric", "seed", "status"))
            archs.update(int(a) for a in a_col)
            if plan is not None:
                stored.update((int(a), str(m)) for a, m, sd in zip(a_col, m_col, s_col) if sd == plan.seed)
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
        )

    def require_complete(self, action: str = "use it") -> "RunCompleteness":
        """:meth:`completeness`, raising :class:`StoreError` (naming every problem) unless the run is complete."""
        c = self.completeness()
        if not c.complete:
            raise StoreError(f"{self.run_dir} is incomplete, refusing to {action}: {'; '.join(c.problems())}")
        return c

    def failed_rows(self) -> dict[tuple[int, str, int], int]:
        """Key -> shard id of every stored row whose status is in :data:`RETRY_STATUSES` (a resume scores
        these again: an actor lost past its retries or memory taken by another job is often transient)."""
        out: dict[tuple[int, str, int], int] = {}
        for p in self.shard_files():
            if self.check_file(p) is not None:
                continue
            try:
                t = pq.read_table(p, columns=["arch_index", "metric", "seed", "status"])
            except (pa.ArrowException, OSError):
                continue
            sid = int(SHARD_RE.match(p.name).group(1))  # type: ignore[union-attr]
            for a, m, sd, st in zip(*(t.column(i).to_pylist() for i in range(4))):
                if st in RETRY_STATUSES:
                    out[(int(a), str(m), int(sd))] = sid
        return out

    def drop_keys(self, shard_id: int, keys: Collection[tuple[int, str, int]]) -> None:
        """Atomically rewrite shard ``shard_id`` without the rows whose ``(arch_index, metric, seed)`` is in
        ``keys`` (used once a newer shard holds their replacements, so no key is ever stored twice)."""
        path = self.shard_path(shard_id)
        try:
            t = pq.read_table(path)
        except (pa.ArrowException, OSError) as e:
            raise StoreError(f"cannot read {path}: {e}") from None
        drop = set(keys)
        keep = [(int(a), str(m), int(sd)) not in drop for a, m, sd in
                zip(t.column("arch_index").to_pylist(), t.column("metric").to_pylist(), t.column("seed").to_pylist())]
        self.write_shard(shard_id, t.filter(pa.array(keep, type=pa.bool_())))

    def done_keys(self) -> set[tuple[int, str, int]]:
        """``(arch_index, metric, seed)`` of every stored row, whatever its status."""
        t = self.read(["arch_index", "metric", "seed"])
        return set(zip(t.column(0).to_pylist(), t.column(1).to_pylist(), t.column(2).to_pylist()))

    # --- config ---------------------------------------------------------------------------------------

    def save_config(self, cfg: Mapping[str, Any]) -> Path:
        """Atomically write ``config.json`` (sorted keys, so equal configs give equal files)."""
        try:
            text = json.dumps(cfg, indent=2, sort_keys=True) + "\n"
        except (TypeError, ValueError) as e:
            raise StoreError(f"run config is not JSON-serialisable: {e}") from None
        atomic_write(self.config_path, lambda f: f.write(text.encode()))
        return self.config_path

    def load_config(self) -> dict[str, Any] | None:
        """The stored config, None when there is none; unreadable or non-mapping JSON is a StoreError."""
        try:
            text = self.config_path.read_text()
        except (FileNotFoundError, NotADirectoryError):  # nothing stored there (yet)
            return None
        except OSError as e:
            raise StoreError(f"cannot read {self.config_path}: {e.strerror or e}") from None
        try:
            cfg = json.loads(text)
        except json.JSONDecodeError as e:
            raise StoreError(f"{self.config_path} is not valid JSON: {e}") from None
        if not isinstance(cfg, dict):
            raise StoreError(f"{self.config_path} must hold a JSON object")
        return cfg

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
        a, b = _identity(stored), _identity(new)
        diff = sorted(k for k in set(a) | set(b) if a.get(k, _MISSING) != b.get(k, _MISSING))
        if diff and not force:
            detail = "; ".join(f"{k}: stored {_show(a.get(k, _MISSING))}, given {_show(b.get(k, _MISSING))}"
                               for k in diff)
            raise StoreError(f"{self.run_dir} was created with a different config ({detail}); "
                             "use another output directory, or force to override")
        if diff:
            log.warning("%s: config differs in %s; continuing because force is set", self.run_dir, diff)
        return diff


def _export_format(fmt: str) -> str:
    from raynas.errors import ConfigError

    if fmt not in EXPORT_FORMATS:
        raise ConfigError(f"unknown export format {fmt!r} (known: {', '.join(EXPORT_FORMATS)})")
    return fmt


@dataclass(frozen=True)
class _Plan:
    """What a stored scoring config plans: arch ids, ``(shard id, arch ids)`` per shard, metrics, seed."""

    ids: list[int]
    shards: list[tuple[int, tuple[int, ...]]]
    metrics: list[str]
    seed: int


def _plan(cfg: Mapping[str, Any], run_dir: Path) -> _Plan:
    """The plan of a stored scoring config, recomputed as ``raynas score`` computes it."""
    from raynas.config import from_dict
    from raynas.parallel.config import ScoreConfig
    from raynas.parallel.shards import plan_shards, select_ids
    from raynas.spaces import create_space

    sc = from_dict(ScoreConfig, {**dict(cfg), "out": str(run_dir)})
    ids = select_ids(create_space(sc.space), sc)
    return _Plan(ids, [(s.shard_id, s.ids) for s in plan_shards(ids, sc.shard_size)], sc.metric_names(), sc.seed)


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

    @property
    def complete(self) -> bool:
        """A usable config, no missing, corrupt or failed shard, and a row for every planned (arch, metric)."""
        return not self.problems()

    def problems(self) -> list[str]:
        """One line per reason the run is not complete (empty when it is)."""
        out: list[str] = []
        if not self.config_present:
            out.append(f"{CONFIG_NAME} missing: the planned total is unknown")
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
        rows = ", ".join(f"{n} {s}" for s, n in self.rows_by_status.items()) or "none"
        return (f"{'complete' if self.complete else 'INCOMPLETE'}: archs {self.archs_present} of {planned} planned "
                f"have stored rows; shards: {', '.join(shards)}; rows: {rows}")


def _ids(ids: tuple[int, ...], limit: int = 10) -> str:
    shown = ", ".join(str(i) for i in ids[:limit])
    return shown + (f", ... ({len(ids) - limit} more)" if len(ids) > limit else "")


_MISSING = object()


def _identity(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The run-defining part of a config: its ``identity`` section, else every non-volatile key."""
    if isinstance(cfg.get("identity"), Mapping):
        return dict(cfg["identity"])
    return {k: v for k, v in cfg.items() if k not in VOLATILE_KEYS}


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
    ids = [table.column(c).to_pylist() for c in WIDE_ID_COLUMNS]
    metrics, values, statuses = (table.column(c).to_pylist() for c in ("metric", "value", "status"))
    rows: dict[tuple, dict[str, float | None]] = {}
    for key, m, v, s in zip(zip(*ids), metrics, values, statuses):
        cell = rows.setdefault(key, {})
        ok = s == "ok" and v is not None and math.isfinite(v)  # a non-finite "ok" value is no score
        if ok or m not in cell:
            cell[m] = float(v) if ok else None
    names = sorted(set(metrics))
    keys = sorted(rows, key=lambda k: (k[0], k[1], k[3], k[2] or ""))
    types = {"space": pa.string(), "arch_index": pa.int64(), "arch": pa.string(), "seed": pa.int64()}
    cols: dict[str, pa.Array] = {c: pa.array([k[i] for k in keys], types[c]) for i, c in enumerate(WIDE_ID_COLUMNS)}
    for m in names:
        cols[m] = pa.array([rows[k].get(m) for k in keys], pa.float64())
    return pa.table(cols)
