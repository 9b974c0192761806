"""Everything raynas keeps on disk: score runs (crash-safe Parquet shards, the long schema, the wide pivot),
search directories (config, trace, result, ASHA trials, TE-NAS output) and report folders.

The store sits at the bottom of raynas (it imports only ``raynas.errors``, ``raynas.config``,
``raynas.registry`` and itself). Open a run with :func:`open_store` (any registered backend of the
:class:`Store` protocol; :class:`ScoreStore` is the Parquet one) or, to judge completeness against the
scoring plan, with :func:`raynas.parallel.open_run`. ``store.completeness()`` (a frozen
:class:`RunCompleteness`) says whether a run is complete; ``store.require_complete(action)`` raises
:class:`~raynas.errors.StoreError` if not. Paths come from :class:`RunLayout` and :class:`SearchDir`.
Published score tables (``nbsz:<space>:cifar10``, :mod:`raynas.store.published`) are read-only pools:
:func:`is_published`, :func:`read_published`; both they and runs are a :class:`ScoreReader`.
"""

from raynas.store.atomic import atomic_write, read_json, write_bytes, write_json, write_parquet
from raynas.store.base import BACKENDS, DEFAULT_BACKEND, ScoreReader, Store, open_store
from raynas.store.keys import KEY_FIELDS, RowKey, row_keys
from raynas.store.claim import LOCK_FILE, DirClaim, DirectoryBusyError
from raynas.store.layout import ReportDir, RunLayout, find_runs, stored_summary
from raynas.store.plan import Planner, RunPlan
from raynas.store.published import PublishedScores, is_published, read_published, read_published_target
from raynas.store.runs import check_runs, read_one_run, read_scores_wide, split_runs, stored_space
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
from raynas.store.search_dir import SearchDir, prepare_search
from raynas.store.store import (
    EXPORT_FORMATS,
    RETRY_STATUSES,
    VOLATILE_KEYS,
    WIDE_ID_COLUMNS,
    RunCompleteness,
    ScoreStore,
    config_differences,
    config_identity,
    to_wide,
)

__all__ = [
    "BACKENDS",
    "COLUMNS",
    "DEFAULT_BACKEND",
    "DirClaim",
    "DirectoryBusyError",
    "EXPORT_FORMATS",
    "KEY_FIELDS",
    "LOCK_FILE",
    "RETRY_STATUSES",
    "SCHEMA",
    "SCHEMA_VERSION",
    "STATUSES",
    "VOLATILE_KEYS",
    "WIDE_ID_COLUMNS",
    "Planner",
    "PublishedScores",
    "ReportDir",
    "RowKey",
    "RunCompleteness",
    "RunLayout",
    "RunPlan",
    "ScoreReader",
    "ScoreStore",
    "SearchDir",
    "Store",
    "atomic_write",
    "check_runs",
    "config_differences",
    "config_identity",
    "empty_table",
    "find_runs",
    "is_published",
    "open_store",
    "prepare_search",
    "read_json",
    "read_one_run",
    "read_published",
    "read_published_target",
    "read_scores_wide",
    "relabel_nonfinite",
    "results_to_table",
    "row_keys",
    "split_runs",
    "stored_space",
    "stored_summary",
    "to_wide",
    "validate_table",
    "write_bytes",
    "write_json",
    "write_parquet",
]
