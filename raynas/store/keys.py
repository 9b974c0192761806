"""The key of a stored score row, ``(arch_index, metric, seed)``: what a resume compares, what ``drop_keys``
removes, what the planner's totals are counted in. One extraction, so every caller reads it the same way."""

from __future__ import annotations

from typing import Iterable

import pyarrow as pa

from raynas.errors import StoreError

#: a row's key: ``(arch_index, metric, seed)`` (a stored key appears at most once per run)
RowKey = tuple[int, str, int]
#: the columns a :data:`RowKey` is read from
KEY_FIELDS = ("arch_index", "metric", "seed")


def row_keys(table: pa.Table) -> list[RowKey]:
    """``(arch_index, metric, seed)`` of every row of ``table``, in row order (ints and str, never Arrow scalars).

    Raises:
        StoreError: ``table`` lacks one of :data:`KEY_FIELDS`.
    """
    missing = [c for c in KEY_FIELDS if c not in table.column_names]
    if missing:
        raise StoreError(f"row keys need column(s) {missing}")
    a, m, s = (table.column(c).to_pylist() for c in KEY_FIELDS)
    return [(int(i), str(n), int(sd)) for i, n, sd in zip(a, m, s)]


def key_mask(table: pa.Table, keys: Iterable[RowKey]) -> pa.Array:
    """A boolean mask of ``table``'s rows whose key is in ``keys`` (``table.filter(pc.invert(mask))`` drops them)."""
    wanted = set(keys)
    return pa.array([k in wanted for k in row_keys(table)], type=pa.bool_())
