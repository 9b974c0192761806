"""``row_keys``: the one extraction of ``(arch_index, metric, seed)`` keys from a score table."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from raynas.errors import StoreError
from raynas.store import results_to_table, row_keys
from raynas.store.keys import key_mask
from raynas.testing import metric_results


def test_row_keys_are_plain_python_in_row_order():
    t = pa.concat_tables([results_to_table("nb201", a, f"arch{a}", s, "d", metric_results({"params": 1.0,
                                                                                           "snip": 2.0}), "h")
                          for a, s in ((3, 0), (1, 2))])
    keys = row_keys(t)
    assert keys == [(3, "params", 0), (3, "snip", 0), (1, "params", 2), (1, "snip", 2)]
    assert all(type(a) is int and type(m) is str and type(s) is int for a, m, s in keys)
    assert row_keys(t.select(["seed", "metric", "arch_index"])) == keys  # by name, not position


def test_row_keys_need_the_key_columns():
    with pytest.raises(StoreError, match=r"row keys need column\(s\) \['seed'\]"):
        row_keys(pa.table({"arch_index": [1], "metric": ["m"]}))


def test_key_mask_marks_the_given_keys():
    t = results_to_table("nb201", 0, "a", 0, "d", metric_results({"params": 1.0, "snip": 2.0}), "h")
    assert key_mask(t, {(0, "snip", 0), (9, "params", 0)}).to_pylist() == [False, True]
    assert t.filter(pc.invert(key_mask(t, set()))).num_rows == 2
