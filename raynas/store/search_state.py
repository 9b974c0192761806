"""Search state on disk: the trace of a search as a versioned Arrow IPC file, written atomically.

One row per ``tell`` (columns :data:`TRACE_SCHEMA`); the search config travels as a JSON blob in the schema
metadata together with the schema version. The file is replaced atomically (write a temp file in the same
directory, fsync, ``os.replace``), so a search killed at any moment leaves either the previous or the new
state, never a torn file.
"""

from __future__ import annotations

import json
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


def trace_to_table(rows: Sequence[dict[str, Any]], config: dict[str, Any]) -> pa.Table:
    """Trace rows (dicts with the :data:`TRACE_SCHEMA` keys) + JSON-able ``config`` -> Arrow table."""
    meta = {META_KEY: json.dumps({"version": SCHEMA_VERSION, "config": config}, sort_keys=True).encode()}
    cols = {f.name: [r[f.name] for r in rows] for f in TRACE_SCHEMA}
    try:
        cols["weights"] = [list(map(float, w)) for w in cols["weights"]]
        return pa.Table.from_pydict(cols, schema=TRACE_SCHEMA.with_metadata(meta))
    except (pa.ArrowException, TypeError, ValueError) as e:
        raise StoreError(f"trace rows do not fit the search-state schema: {e}") from None


def save_state(path: str | Path, rows: Sequence[dict[str, Any]], config: dict[str, Any]) -> None:
    """Atomically write the state file ``path`` (parent directories are created; see :func:`atomic_write`)."""
    table = trace_to_table(rows, config)

    def write(fh: Any) -> None:
        with ipc.new_file(fh, table.schema) as writer:
            writer.write_table(table)

    atomic_write(Path(path), write)


def load_state(path: str | Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """``(rows, config)`` of a state file; missing, corrupt or wrong-version files raise :class:`StoreError`."""
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
    return table.to_pylist(), blob["config"]
