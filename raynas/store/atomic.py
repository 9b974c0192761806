"""Crash-safe file writes: every file raynas writes goes to a temp name in the same directory, is fsynced, then
``os.replace``d, so a reader (or a resumed run) sees the old content or the new one, never a torn file."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

import pyarrow as pa
import pyarrow.parquet as pq

from raynas.errors import StoreError


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


def atomic_write(path: Path, write: Callable[[Any], Any]) -> None:
    """Write ``path`` via ``write(file_object)`` into a temp file of the same directory, fsync, then rename.

    On any failure the temp file is removed and ``path`` keeps its old content (or stays absent).
    OSErrors become :class:`StoreError` naming ``path``.
    """
    path = Path(path)
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


def write_bytes(path: Path, data: bytes) -> Path:
    """:func:`atomic_write` of ``data``; returns ``path``."""
    atomic_write(Path(path), lambda f: f.write(data))
    return Path(path)


def write_json(path: Path, data: Any, *, indent: int = 2, sort_keys: bool = True,
               default: Callable[[Any], Any] | None = float, newline: bool = False) -> Path:
    """Atomic JSON write (``default`` renders what JSON cannot, e.g. numpy floats); a value JSON cannot hold
    is a :class:`StoreError`, like an OS error naming the path."""
    try:
        text = json.dumps(data, indent=indent, sort_keys=sort_keys, default=default) + ("\n" if newline else "")
    except (TypeError, ValueError) as e:
        raise StoreError(f"cannot write {path}: not JSON-serialisable ({e})") from None
    return write_bytes(path, text.encode())


def read_json(path: Path, *, missing: Any = None) -> Any:
    """The JSON content of ``path``; ``missing`` when it does not exist. Unreadable or invalid JSON is a
    :class:`StoreError` naming the path."""
    path = Path(path)
    try:
        text = path.read_text()
    except (FileNotFoundError, NotADirectoryError):
        return missing
    except OSError as e:
        raise StoreError(f"cannot read {path}: {e.strerror or e}") from None
    try:
        return json.loads(text)
    except ValueError as e:
        raise StoreError(f"{path} is not valid JSON: {e}") from None


def write_parquet(path: Path, table: pa.Table) -> Path:
    """Atomically write ``table`` as Parquet; Arrow failures become a :class:`StoreError` naming the path."""
    try:
        atomic_write(Path(path), lambda f: pq.write_table(table, f))
    except pa.ArrowException as e:
        raise StoreError(f"cannot write {path}: {e}") from None
    return Path(path)
