"""CandidatePool: min-max normalisation with NaN, ranking, tie-breaks, input errors."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from raynas.errors import SearchError
from raynas.search.pool import CandidatePool, normalize


def _table():
    # rows deliberately not sorted by arch_index
    return {
        "arch_index": np.array([7, 2, 5, 9], dtype=np.int64),
        "a": np.array([3.0, 1.0, np.nan, 5.0]),
        "b": np.array([10.0, 10.0, 10.0, 10.0]),  # constant: contributes nothing
        "c": np.array([-1.0, np.inf, 1.0, 0.0]),  # inf counts as missing
    }


def test_normalisation_by_hand():
    p = CandidatePool.from_table(_table(), ["a", "b", "c"])
    assert p.arch_index.tolist() == [2, 5, 7, 9]
    # a over finite {1, 3, 5}: 2 -> 0, 5 -> NaN -> 0, 7 -> 0.5, 9 -> 1
    np.testing.assert_array_equal(p.normalized[:, 0], [0.0, 0.0, 0.5, 1.0])
    np.testing.assert_array_equal(p.normalized[:, 1], [0.0, 0.0, 0.0, 0.0])
    # c over finite {-1, 1, 0}: 2 (inf) -> 0, 5 -> 1, 7 -> 0, 9 -> 0.5
    np.testing.assert_array_equal(p.normalized[:, 2], [0.0, 1.0, 0.0, 0.5])
    assert np.isnan(p.raw[1, 0]) and p.raw[0, 2] == np.inf
    assert p.position(9) == 3 and 9 in p and 4 not in p


def test_rank_and_ties():
    p = CandidatePool.from_table(_table(), ["a", "b", "c"])
    np.testing.assert_allclose(p.scores([1.0, 1.0, -1.0]), [0.0, -1.0, 0.5, 0.5])
    # 7 and 9 tie at 0.5: smaller arch_index first
    assert p.rank([1.0, 1.0, -1.0]).tolist() == [2, 3, 0, 1]
    assert p.top([1.0, 1.0, -1.0]) == 2
    assert p.rank([0.0, 0.0, 0.0]).tolist() == [0, 1, 2, 3]  # all tied: arch_index order
    # scores: 2 -> 0, 5 -> 1, 7 -> -0.5, 9 -> -0.5 (tie: 7 before 9)
    assert p.rank([-1.0, 0.0, 1.0]).tolist() == [1, 0, 2, 3]


def test_row_order_does_not_matter():
    t = _table()
    perm = np.array([3, 1, 0, 2])
    p1 = CandidatePool.from_table(t, ["a", "c"])
    p2 = CandidatePool.from_table({k: v[perm] for k, v in t.items()}, ["a", "c"])
    np.testing.assert_array_equal(p1.normalized, p2.normalized)
    assert p1.fingerprint() == p2.fingerprint()
    assert p1.fingerprint() != CandidatePool.from_table(t, ["c", "a"]).fingerprint()


def test_pyarrow_table_with_nulls():
    t = pa.table({"arch_index": pa.array([0, 1, 2], pa.int32()), "m": pa.array([1.0, None, 3.0]), "x": ["a", "b", "c"]})
    p = CandidatePool.from_table(t, ["m"])
    assert p.arch_index.dtype == np.int64
    np.testing.assert_array_equal(p.normalized[:, 0], [0.0, 0.0, 1.0])


def test_all_nan_column_is_zero():
    p = CandidatePool.from_table({"arch_index": np.arange(3), "m": np.full(3, np.nan)}, ["m"])
    np.testing.assert_array_equal(p.normalized, np.zeros((3, 1)))


def test_signed_log_transform():
    raw = np.array([[-(np.e - 1)], [0.0], [np.e**2 - 1]])
    # signed log1p: -1, 0, 2 -> min-max: 0, 1/3, 1
    np.testing.assert_allclose(normalize(raw, "signed_log")[:, 0], [0.0, 1 / 3, 1.0])
    p = CandidatePool.from_table({"arch_index": np.arange(3), "m": raw[:, 0]}, ["m"], transform="signed_log")
    assert p.transform == "signed_log"


def test_bad_inputs():
    t = _table()
    with pytest.raises(SearchError, match="no column 'zz'"):
        CandidatePool.from_table(t, ["a", "zz"])
    with pytest.raises(SearchError, match="no column 'zz'"):
        CandidatePool.from_table(pa.table({"arch_index": [1]}), ["zz"])
    with pytest.raises(SearchError, match="empty"):
        CandidatePool.from_table({"arch_index": np.array([], dtype=np.int64), "a": np.array([])}, ["a"])
    with pytest.raises(SearchError, match="at least one metric"):
        CandidatePool.from_table(t, [])
    with pytest.raises(SearchError, match="more than once"):
        CandidatePool.from_table({"arch_index": np.array([1, 1]), "a": np.array([1.0, 2.0])}, ["a"])
    with pytest.raises(SearchError, match="transform"):
        CandidatePool.from_table(t, ["a"], transform="log")
    p = CandidatePool.from_table(t, ["a", "c"])
    with pytest.raises(SearchError, match="expected 2 weights"):
        p.rank([1.0])
    with pytest.raises(SearchError, match="finite"):
        p.rank([np.nan, 1.0])
    with pytest.raises(SearchError, match="not in the candidate pool"):
        p.position(3)
