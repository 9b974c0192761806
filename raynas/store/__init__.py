"""Crash-safe Parquet storage of metric scores: the long-format schema, the shard store, the wide pivot."""

from raynas.store.schema import (
    COLUMNS,
    SCHEMA,
    SCHEMA_VERSION,
    STATUSES,
    empty_table,
    results_to_table,
    validate_table,
)
from raynas.store.store import VOLATILE_KEYS, WIDE_ID_COLUMNS, ScoreStore, atomic_write, to_wide

__all__ = [
    "COLUMNS",
    "SCHEMA",
    "SCHEMA_VERSION",
    "STATUSES",
    "VOLATILE_KEYS",
    "WIDE_ID_COLUMNS",
    "ScoreStore",
    "atomic_write",
    "empty_table",
    "results_to_table",
    "to_wide",
    "validate_table",
]
