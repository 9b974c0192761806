"""The Arrow schema of stored scores: long format, one row per (space, arch, metric, seed).

Long rather than wide because runs add metrics and seeds over time and a failure is per (arch, metric):
each row carries its own status, error text, timing and device. :func:`raynas.store.to_wide` pivots for
the search code. The schema version lives in the schema metadata so an old file is recognised as such.
"""

from __future__ import annotations

from typing import Any, Sequence

import pyarrow as pa
import pyarrow.compute as pc

from raynas.errors import StoreError

SCHEMA_VERSION = 1
VERSION_KEY = b"raynas.schema_version"
#: the statuses a row may carry (the one list: the metric engines import it). ``not_applicable``: the metric does
#: not apply to the batch's task (a metric reading class labels on a regression task); its ``error`` text says why.
#: It is neither a failure (a resume does not score it again, a run with it is complete) nor a value. Files written
#: before it existed hold a subset of these statuses and read unchanged (the schema version stays 1).
STATUSES = ("ok", "nan", "error", "oom", "not_applicable")
#: the status of a metric that does not apply to the batch's task
NOT_APPLICABLE = "not_applicable"
#: columns that identify a row; never null
KEY_COLUMNS = ("space", "arch_index", "metric", "seed", "status")

SCHEMA = pa.schema(
    [
        pa.field("space", pa.string()),
        pa.field("arch_index", pa.int64()),
        pa.field("arch", pa.string()),  # null when the index could not even be decoded
        pa.field("metric", pa.string()),
        pa.field("seed", pa.int64()),
        pa.field("value", pa.float64()),  # null unless status == "ok"
        pa.field("status", pa.string()),
        pa.field("error", pa.string()),
        pa.field("seconds", pa.float64()),
        pa.field("device", pa.string()),
        pa.field("host", pa.string()),
        pa.field("data", pa.string()),  # the batch's name: dataset spec, seed, batch size
    ],
    metadata={VERSION_KEY: str(SCHEMA_VERSION).encode()},
)
COLUMNS = tuple(SCHEMA.names)


def empty_table() -> pa.Table:
    """A zero-row table with :data:`SCHEMA` (what an empty run reads as)."""
    return SCHEMA.empty_table()


def _space_name(space: Any) -> str:
    if isinstance(space, str):
        return space
    name = getattr(space, "name", "")
    if not isinstance(name, str) or not name:
        raise StoreError(f"cannot name the search space {space!r}: give a string or an object with .name")
    return name


def _arch_text(space: Any, arch: Any) -> str | None:
    if arch is None or isinstance(arch, str):
        return arch
    fmt = getattr(space, "format", None)  # the space's canonical string, e.g. NAS-Bench-201's |op~0|+|...|
    return str(fmt(arch)) if callable(fmt) else str(arch)


def results_to_table(
    space: Any, arch_index: int, arch: Any, seed: int, data: str, results: Sequence[Any], host: str
) -> pa.Table:
    """Rows for one architecture's metric results.

    Args:
        space: a ``SearchSpace`` (its ``name`` is stored, its ``format`` renders ``arch``) or the space name.
        arch_index: the arch's index in the space.
        arch: the arch (space object, already formatted string, or None when it could not be built).
        seed: the seed the network and metrics were initialised with.
        data: the batch's name.
        results: ``raynas.metrics.engine.MetricResult`` items (metric, value, status, error, seconds, device).
        host: the machine that computed them.
    Returns:
        ``len(results)`` rows with :data:`SCHEMA`.
    """
    space_name, arch_text = _space_name(space), _arch_text(space, arch)
    bad = sorted({r.status for r in results} - set(STATUSES))
    if bad:
        raise StoreError(f"unknown result status(es) {bad} (known: {', '.join(STATUSES)})")
    n = len(results)
    cols = {
        "space": [space_name] * n,
        "arch_index": [int(arch_index)] * n,
        "arch": [arch_text] * n,
        "metric": [str(r.metric) for r in results],
        "seed": [int(seed)] * n,
        # a value is only meaningful when the metric succeeded; the engine already sets None otherwise
        "value": [float(r.value) if r.value is not None and r.status == "ok" else None for r in results],
        "status": [r.status for r in results],
        "error": [str(r.error or "") for r in results],
        "seconds": [float(r.seconds) for r in results],
        "device": [str(r.device) for r in results],
        "host": [str(host)] * n,
        "data": [str(data)] * n,
    }
    return pa.Table.from_pydict(cols, schema=SCHEMA)


def validate_table(table: pa.Table, require_version: bool = True) -> None:
    """Raise :class:`StoreError` unless ``table`` has exactly :data:`SCHEMA`'s columns and types.

    Args:
        table: a table or anything with a ``.schema`` (a Parquet file's Arrow schema also works).
        require_version: also demand the ``raynas.schema_version`` metadata (files on disk must carry it;
            an in-memory table without metadata is accepted when False). A *different* version is
            always an error.
    """
    schema = table if isinstance(table, pa.Schema) else getattr(table, "schema", None)
    if not isinstance(schema, pa.Schema):
        raise StoreError(f"expected an Arrow table, got {type(table).__name__}")
    names = list(schema.names)
    missing = [c for c in COLUMNS if c not in names]
    extra = [c for c in names if c not in COLUMNS]
    if missing or extra or len(set(names)) != len(names):
        raise StoreError(f"score table columns do not match schema v{SCHEMA_VERSION}: missing {missing}, "
                         f"unexpected {extra}" + (", duplicated names" if len(set(names)) != len(names) else ""))
    wrong = [f"{f.name}: {schema.field(f.name).type} (expected {f.type})"
             for f in SCHEMA if schema.field(f.name).type != f.type]
    if wrong:
        raise StoreError(f"score table column types do not match schema v{SCHEMA_VERSION}: {'; '.join(wrong)}")
    meta = schema.metadata or {}
    version = meta.get(VERSION_KEY)
    if version is None:
        if require_version:
            raise StoreError(f"score table has no {VERSION_KEY.decode()} metadata (not written by raynas?)")
    elif version != str(SCHEMA_VERSION).encode():
        raise StoreError(f"score table has schema version {version.decode(errors='replace')}, "
                         f"this raynas reads version {SCHEMA_VERSION}")
    if isinstance(table, pa.Table) and table.num_rows:
        for c in KEY_COLUMNS:
            if table.column(c).null_count:
                raise StoreError(f"score table column {c!r} has {table.column(c).null_count} null value(s)")
        unknown = pc.unique(table.filter(pc.invert(pc.is_in(table.column("status"), pa.array(STATUSES))))
                            .column("status")).to_pylist()
        if unknown:
            raise StoreError(f"score table has unknown status(es) {unknown} (known: {', '.join(STATUSES)})")


def relabel_nonfinite(table: pa.Table) -> pa.Table:
    """``table`` with every ``status == "ok"`` row whose value is NaN or infinite re-labelled ``nan``.

    Such a row is not a score (the engine itself never writes one, see ``raynas.metrics.engine``), but a
    foreign or buggy writer may leave one behind. Its value becomes null and its ``error`` text records what
    was stored (``non-finite value inf stored with status ok``, after any text it already had), so nothing
    is lost and every reader counts it as ``nan``. Needs the ``status`` and ``value`` columns (``error`` is
    updated when present); a table without non-finite ok rows is returned unchanged.
    """
    if table.num_rows == 0 or "status" not in table.column_names or "value" not in table.column_names:
        return table
    value = table.column("value")
    finite = pc.is_finite(value)  # null for null values, false for NaN and +-inf
    bad = pc.and_kleene(pc.equal(table.column("status"), "ok"), pc.invert(pc.fill_null(finite, True)))
    bad = pc.fill_null(bad, False)
    if not pc.any(bad).as_py():
        return table
    out = table.set_column(table.column_names.index("status"), "status",
                           pc.if_else(bad, pa.scalar("nan"), table.column("status")))
    if "error" in table.column_names:
        note = pc.binary_join_element_wise("non-finite value ", pc.cast(value, pa.string()),
                                           " stored with status ok (re-labelled nan)", "")
        old = pc.fill_null(table.column("error"), "")
        joined = pc.if_else(pc.equal(old, ""), note, pc.binary_join_element_wise(old, note, "; "))
        out = out.set_column(out.column_names.index("error"), "error",
                             pc.if_else(bad, joined, table.column("error")))
    return out.set_column(out.column_names.index("value"), "value",
                          pc.if_else(bad, pa.scalar(None, value.type), value))


def conform(table: pa.Table) -> pa.Table:
    """``table`` validated, its columns in schema order and the schema (with version metadata) attached;
    non-finite ``ok`` values are re-labelled ``nan`` (:func:`relabel_nonfinite`)."""
    validate_table(table, require_version=False)
    return relabel_nonfinite(table.select(list(COLUMNS)).cast(SCHEMA))
