"""Issue #30 item 3: ``to_wide`` is an Arrow pivot. It must give exactly what the row-by-row definition gives
(kept here as the reference): ok and finite values win over failures, the later of two ok values wins, a metric
never scored (or only failed) for an arch is null, rows sorted by (space, arch_index, seed, arch), metric columns
by name."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest

from raynas.store.store import WIDE_ID_COLUMNS, to_wide


def reference_to_wide(table: pa.Table) -> pa.Table:
    """The definition, one row at a time (the implementation before the pivot)."""
    ids = [table.column(c).to_pylist() for c in WIDE_ID_COLUMNS]
    metrics, values, statuses = (table.column(c).to_pylist() for c in ("metric", "value", "status"))
    rows: dict[tuple, dict[str, float | None]] = {}
    for key, m, v, s in zip(zip(*ids), metrics, values, statuses):
        cell = rows.setdefault(key, {})
        ok = s == "ok" and v is not None and math.isfinite(v)
        if ok or m not in cell:
            cell[m] = float(v) if ok else None
    names = sorted(set(metrics))
    keys = sorted(rows, key=lambda k: (k[0], k[1], k[3], k[2] or ""))
    types = {"space": pa.string(), "arch_index": pa.int64(), "arch": pa.string(), "seed": pa.int64()}
    cols = {c: pa.array([k[i] for k in keys], types[c]) for i, c in enumerate(WIDE_ID_COLUMNS)}
    for m in names:
        cols[m] = pa.array([rows[k].get(m) for k in keys], pa.float64())
    return pa.table(cols)


def _random_rows(rng: np.random.Generator, n: int) -> pa.Table:
    arch_index = rng.integers(0, 12, n)
    value = rng.normal(size=n)
    value[rng.random(n) < 0.1] = np.nan
    value[rng.random(n) < 0.05] = np.inf
    values = [None if rng.random() < 0.05 else float(x) for x in value]
    return pa.table({
        "space": pa.array(rng.choice(["nb201", "nb101"], n).tolist(), pa.string()),
        "arch_index": pa.array(arch_index, pa.int64()),
        "arch": pa.array([None if i == 7 else f"a{i}" for i in arch_index], pa.string()),
        "seed": pa.array(rng.integers(0, 3, n), pa.int64()),
        "metric": pa.array(rng.choice(["snip", "synflow", "grad_norm", "zen"], n).tolist(), pa.string()),
        "value": pa.array(values, pa.float64()),
        "status": pa.array(rng.choice(["ok", "ok", "ok", "error", "nan", "oom"], n).tolist(), pa.string()),
    })


@pytest.mark.parametrize("seed", range(12))
def test_the_arrow_pivot_equals_the_row_by_row_definition(seed):
    table = _random_rows(np.random.default_rng(seed), [0, 1, 5, 40, 400, 3000][seed % 6])
    got, want = to_wide(table), reference_to_wide(table)
    assert got.column_names == want.column_names
    assert got.schema == want.schema
    assert got.to_pylist() == want.to_pylist()  # NaN never reaches the output: failures and non-finite are null


def test_duplicates_keep_the_later_ok_value_and_ok_beats_a_later_failure():
    t = pa.table({"space": ["s"] * 4, "arch_index": pa.array([1] * 4, pa.int64()), "arch": ["a"] * 4,
                  "seed": pa.array([0] * 4, pa.int64()), "metric": ["m"] * 4,
                  "value": pa.array([1.0, 2.0, None, 9.0], pa.float64()), "status": ["ok", "ok", "error", "nan"]})
    assert to_wide(t).column("m").to_pylist() == [2.0]
