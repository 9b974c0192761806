"""The :class:`Store` protocol (what callers do with a score run) and the one factory that opens one.

Every module opens a run with :func:`open_store` (or :func:`raynas.parallel.open_run`, which adds the scoring
planner), never by naming a class: a second backend (a database, an object store) is one new class registered
in :data:`BACKENDS`, not an edit of every caller.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Collection, Iterable, Mapping, Protocol, runtime_checkable

import pyarrow as pa

from raynas.registry import Registry
from raynas.store.keys import RowKey
from raynas.store.plan import Planner
from raynas.store.store import RunCompleteness, ScoreStore


@runtime_checkable
class Store(Protocol):
    """The score rows and config of one run: the operations the scoring loop, resume, search, report and
    export use. Rows are in the long schema (:data:`raynas.store.SCHEMA`); writes are atomic per shard."""

    run_dir: Path

    # rows
    def write_shard(self, shard_id: int, table: pa.Table) -> Any: ...
    def read(self, columns: Iterable[str] | None = None) -> pa.Table: ...
    def read_wide(self) -> pa.Table: ...
    def shard_ids(self) -> set[int]: ...
    def done_keys(self) -> set[RowKey]: ...
    def failed_rows(self) -> dict[RowKey, int]: ...
    def drop_keys(self, shard_id: int, keys: Collection[RowKey]) -> None: ...
    def repair_duplicates(self) -> int: ...
    # one writer at a time (an OS lock that dies with its process; see raynas.store.claim)
    def claim(self) -> Any: ...
    # state of the run
    def exists(self) -> bool: ...
    def completeness(self) -> RunCompleteness: ...
    def require_complete(self, action: str = "use it") -> RunCompleteness: ...
    def verify(self, deep: bool = False) -> tuple[list[Any], list[tuple[Any, str]]]: ...
    def quarantine(self, path: Any) -> Any: ...
    # config
    def save_config(self, cfg: Mapping[str, Any]) -> Any: ...
    def load_config(self) -> dict[str, Any] | None: ...
    def flat_config(self) -> dict[str, Any] | None: ...
    def check_config(self, cfg: Mapping[str, Any], force: bool = False) -> list[str]: ...
    # export
    def export_path(self, fmt: str) -> Path: ...
    def export_wide(self, fmt: str = "csv", path: str | Path | None = None) -> Path: ...


@runtime_checkable
class ScoreReader(Protocol):
    """What a search reads from a pool's source: its wide table and its config. A score run (every
    :class:`Store`) is one, and so is a published table (:class:`raynas.store.published.PublishedScores`,
    read-only: nothing to write, resume or verify)."""

    def read_wide(self) -> pa.Table: ...
    def load_config(self) -> dict[str, Any] | None: ...


#: ``factory(run_dir, planner=None) -> Store`` by backend name
BACKENDS: Registry[Callable[..., Store]] = Registry("store backend")
BACKENDS.add("parquet", ScoreStore)
DEFAULT_BACKEND = "parquet"


def open_store(run_dir: str | Path, backend: str = DEFAULT_BACKEND, *, planner: Planner | None = None) -> Store:
    """The run directory ``run_dir`` through the ``backend`` store (nothing is created until the first write).

    Args:
        run_dir: the run directory.
        backend: a name registered in :data:`BACKENDS` (``parquet``: :class:`ScoreStore`).
        planner: how to plan the stored config for :meth:`Store.completeness` (see :mod:`raynas.store.plan`).
    Raises:
        UnknownNameError: ``backend`` is not registered (the message names the closest ones).
    """
    return BACKENDS.get(backend)(Path(run_dir), planner=planner)
