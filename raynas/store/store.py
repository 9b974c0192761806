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
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Collection, Iterable, Mapping

import pyarrow as pa
import pyarrow.parquet as pq

from raynas.errors import StoreError
from raynas.store.schema import COLUMNS, conform, empty_table, validate_table

log = logging.getLogger(__name__)

#: config keys that only decide how a run executes (never which rows it produces): they may change on resume
VOLATILE_KEYS = frozenset(
    {"out", "workers", "gpus_per_worker", "cpus_per_worker", "address", "resume", "force", "max_retries"}
)
SHARD_RE = re.compile(r"^shard-(\d{6,})\.parquet$")
#: statuses of rows a resumed run scores again (their replacements supersede them, see ``drop_keys``)
RETRY_STATUSES = ("error", "oom")
CONFIG_NAME = "config.json"


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

    def read(self, columns: Iterable[str] | None = None) -> pa.Table:
        """All good shards concatenated in shard order (damaged files are skipped with a warning)."""
        cols = list(columns) if columns is not None else list(COLUMNS)
        unknown = [c for c in cols if c not in COLUMNS]
        if unknown:
            raise StoreError(f"unknown score column(s) {unknown} (known: {', '.join(COLUMNS)})")
        tables = []
        for p in self.shard_files():
            reason = self.check_file(p)
            if reason is None:
                try:
                    tables.append(pq.read_table(p, columns=cols))
                    continue
                except (pa.ArrowException, OSError) as e:  # footer fine, data pages damaged
                    reason = f"{type(e).__name__}: {e}"
            log.warning("skipping damaged shard %s (%s)", p, reason)
        if not tables:
            return empty_table().select(cols)
        return pa.concat_tables(tables)

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

    A metric whose status is not ``ok`` (or that was never scored for that arch) is null. When a key
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
        ok = s == "ok" and v is not None
        if ok or m not in cell:
            cell[m] = float(v) if ok else None
    names = sorted(set(metrics))
    keys = sorted(rows, key=lambda k: (k[0], k[1], k[3], k[2] or ""))
    types = {"space": pa.string(), "arch_index": pa.int64(), "arch": pa.string(), "seed": pa.int64()}
    cols: dict[str, pa.Array] = {c: pa.array([k[i] for k in keys], types[c]) for i, c in enumerate(WIDE_ID_COLUMNS)}
    for m in names:
        cols[m] = pa.array([rows[k].get(m) for k in keys], pa.float64())
    return pa.table(cols)
