"""Crash-safe Parquet storage of metric scores: the long-format schema, the shard store, the wide pivot.

``ScoreStore(run).completeness()`` (a frozen :class:`RunCompleteness`) says whether a run is complete against
its config's plan; ``ScoreStore(run).require_complete(action)`` raises :class:`~raynas.errors.StoreError` if not.
"""

from raynas.store.schema import (
    COLUMNS,
    SCHEMA,
    SCHEMA_VERSION,
    STATUSES,
    empty_table,
    relabel_nonfinite,
    results_to_table,
    validate_table,
)
from raynas.store.store import (
    EXPORT_FORMATS,
    VOLATILE_KEYS,
    WIDE_ID_COLUMNS,
    RunCompleteness,
    ScoreStore,
    atomic_write,
    to_wide,
)

__all__ = [
    "COLUMNS",
    "EXPORT_FORMATS",
    "SCHEMA",
    "SCHEMA_VERSION",
    "STATUSES",
    "VOLATILE_KEYS",
    "WIDE_ID_COLUMNS",
    "RunCompleteness",
    "ScoreStore",
    "atomic_write",
    "empty_table",
    "relabel_nonfinite",
    "results_to_table",
    "to_wide",
    "validate_table",
]
