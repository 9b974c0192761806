"""Search state on disk: the trace of a search as a versioned Arrow IPC file, written atomically.

One row per ``tell`` (columns :data:`TRACE_SCHEMA`); the search config travels as a JSON blob in the schema
metadata together with the schema version. The file is replaced atomically (write a temp file in the same
directory, fsync, ``os.replace``), so a search killed at any moment leaves either the previous or the new
state, never a torn file.

A search with queries in flight (q-batch searches, :class:`raynas.search.base.QuerySearch` with ``q > 1``) also
saves, in the same metadata blob, its **in-flight** proposals (asked, not told yet: ``step, kind, weights,
arch_index, new_query`` and, once its query has completed, its ``result`` ``{value, cost}``) and its **failed**
queries (``step, kind, weights, arch_index, new_query, status, reason``): what a resume needs to continue exactly
without re-running a completed query, and what a result reports about queries that gave no value. Files
without these keys (every file written before them) read as having none.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import pyarrow as pa
import pyarrow.ipc as ipc

from raynas.errors import StoreError
from raynas.store.atomic import atomic_write

SCHEMA_VERSION = 1
META_KEY = b"raynas.search_state"

TRACE_SCHEMA = pa.schema(
    [
        pa.field("step", pa.int64(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),
        pa.field("weights", pa.list_(pa.float64()), nullable=False),
        pa.field("arch_index", pa.int64(), nullable=False),
        pa.field("value", pa.float64(), nullable=False),
        pa.field("cost", pa.float64(), nullable=False),
        pa.field("cumulative_cost", pa.float64(), nullable=False),
        pa.field("new_query", pa.bool_(), nullable=False),
    ]
)


#: what a failed query's ``status`` may be: the query raised (``error``) or every retry of it lost its worker
#: (``worker_lost``)
FAILED_STATUSES = ("error", "worker_lost")
_PROPOSAL_KEYS = ("step", "kind", "weights", "arch_index", "new_query")


@dataclass(frozen=True)
class SearchState:
    """Everything a state file holds: the told ``rows``, the state ``config``, the ``in_flight`` proposals and the
    ``failed`` queries (lists of dicts, see the module docstring)."""

    rows: list[dict[str, Any]]
    config: dict[str, Any]
    in_flight: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)


def _check_entries(entries: Any, what: str, extra: Sequence[str], where: str) -> list[dict[str, Any]]:
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise StoreError(f"search state {where}: {what} must be a list of objects")
    for e in entries:
        missing = [k for k in (*_PROPOSAL_KEYS, *extra) if k not in e]
        if missing:
            raise StoreError(f"search state {where}: a {what} entry lacks {missing}")
    return [dict(e) for e in entries]


def trace_to_table(rows: Sequence[dict[str, Any]], config: dict[str, Any],
                   in_flight: Sequence[dict[str, Any]] = (), failed: Sequence[dict[str, Any]] = ()) -> pa.Table:
    """Trace rows (dicts with the :data:`TRACE_SCHEMA` keys) + JSON-able ``config`` (and in-flight / failed
    queries, only written when there are any) -> Arrow table."""
    blob: dict[str, Any] = {"version": SCHEMA_VERSION, "config": config}
    if in_flight:
        blob["in_flight"] = _check_entries(list(in_flight), "in_flight", (), "to write")
    if failed:
        bad = [f.get("status") for f in failed if f.get("status") not in FAILED_STATUSES]
        if bad:
            raise StoreError(f"failed-query status must be one of {FAILED_STATUSES}, got {bad}")
        blob["failed"] = _check_entries(list(failed), "failed", ("status", "reason"), "to write")
    try:
        meta = {META_KEY: json.dumps(blob, sort_keys=True).encode()}
    except (TypeError, ValueError) as e:
        raise StoreError(f"search state is not JSON-able: {e}") from None
    cols = {f.name: [r[f.name] for r in rows] for f in TRACE_SCHEMA}
    try:
        cols["weights"] = [list(map(float, w)) for w in cols["weights"]]
        return pa.Table.from_pydict(cols, schema=TRACE_SCHEMA.with_metadata(meta))
    except (pa.ArrowException, TypeError, ValueError) as e:
        raise StoreError(f"trace rows do not fit the search-state schema: {e}") from None


def save_state(path: str | Path, rows: Sequence[dict[str, Any]], config: dict[str, Any], *,
               in_flight: Sequence[dict[str, Any]] = (), failed: Sequence[dict[str, Any]] = ()) -> None:
    """Atomically write the state file ``path`` (parent directories are created; see :func:`atomic_write`)."""
    table = trace_to_table(rows, config, in_flight, failed)

    def write(fh: Any) -> None:
        with ipc.new_file(fh, table.schema) as writer:
            writer.write_table(table)

    atomic_write(Path(path), write)


def load_state(path: str | Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """``(rows, config)`` of a state file; missing, corrupt or wrong-version files raise :class:`StoreError`."""
    state = load_search_state(path)
    return state.rows, state.config


def load_search_state(path: str | Path) -> SearchState:
    """The whole :class:`SearchState` of a state file (errors as :func:`load_state`)."""
    path = Path(path)
    try:
        with ipc.open_file(pa.memory_map(str(path), "r")) as reader:
            table = reader.read_all()
    except FileNotFoundError:
        raise StoreError(f"no search state at {path}") from None
    except (OSError, pa.ArrowException) as e:
        raise StoreError(f"search state {path} is corrupt or not an Arrow file: {e}") from None
    meta = (table.schema.metadata or {}).get(META_KEY)
    if meta is None:
        raise StoreError(f"{path} is not a raynas search state (no {META_KEY.decode()} metadata)")
    try:
        blob = json.loads(meta)
    except ValueError as e:
        raise StoreError(f"search state {path} has corrupt metadata: {e}") from None
    if not isinstance(blob, dict) or blob.get("version") != SCHEMA_VERSION or not isinstance(blob.get("config"), dict):
        found = blob.get("version") if isinstance(blob, dict) else None
        raise StoreError(f"search state {path} has schema version {found!r}; this raynas reads {SCHEMA_VERSION}")
    if not table.schema.remove_metadata().equals(TRACE_SCHEMA):
        raise StoreError(f"search state {path} has columns {table.schema.names}, expected {TRACE_SCHEMA.names}")
    return SearchState(table.to_pylist(), blob["config"],
                       _check_entries(blob.get("in_flight", []), "in_flight", (), str(path)),
                       _check_entries(blob.get("failed", []), "failed", ("status", "reason"), str(path)))
