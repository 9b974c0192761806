"""Shard planning: determinism, coverage, no overlap, and what a resume still has to do."""

from __future__ import annotations

import pytest

from raynas.errors import ConfigError, InvalidArchitectureError
from raynas.parallel.config import ScoreConfig
from raynas.parallel.shards import Shard, missing_work, plan_shards, select_ids


def test_plan_shards_exact_cut() -> None:
    shards = plan_shards([5, 9, 2, 7, 11], 2)
    assert shards == [Shard(0, (5, 9)), Shard(1, (2, 7)), Shard(2, (11,))]


def test_plan_shards_deterministic_covering_disjoint() -> None:
    ids = list(range(3, 1003, 7))
    a, b = plan_shards(ids, 13), plan_shards(list(ids), 13)
    assert a == b
    flat = [i for s in a for i in s.ids]
    assert flat == ids  # every id exactly once, order kept
    assert len({s.shard_id for s in a}) == len(a) == -(-len(ids) // 13)
    assert all(len(s) == 13 for s in a[:-1]) and 1 <= len(a[-1]) <= 13


def test_plan_shards_rejects_bad_input() -> None:
    with pytest.raises(ConfigError):
        plan_shards([1, 2], 0)
    with pytest.raises(ConfigError):
        plan_shards([1, 1, 2], 2)
    assert plan_shards([], 4) == []


def test_missing_work_skips_done_and_keeps_untouched_shards() -> None:
    shards = plan_shards([0, 1, 2, 3, 4], 2)
    done = {(i, m, 7) for i in (0, 1) for m in ("a", "b")}
    assert missing_work(shards, done, ["a", "b"], seed=7) == shards[1:]
    # a different seed's rows do not count as done
    assert missing_work(shards, done, ["a", "b"], seed=8) == shards
    assert missing_work(shards, {(i, m, 7) for i in range(5) for m in "ab"}, ["a", "b"], seed=7) == []


def test_missing_work_partial_shard_becomes_subshard_with_new_id() -> None:
    shards = plan_shards([10, 11, 12], 3)
    # arch 10 fully done, arch 11 misses only "b", arch 12 misses only "b"
    done = {(10, "a", 0), (10, "b", 0), (11, "a", 0), (12, "a", 0)}
    (sub,) = missing_work(shards, done, ["a", "b"], seed=0, existing_ids={0})
    assert sub == Shard(1, (11, 12), ("b",))  # a fresh id after every planned and existing one
    # deterministic (a second resume plans the same sub-shard) and never an existing id
    assert missing_work(shards, done, ["a", "b"], seed=0, existing_ids={0}) == [sub]
    (other,) = missing_work(shards, done, ["a", "b"], seed=0, existing_ids={0, 1, 7})
    assert other.shard_id == 8


def test_missing_work_existing_file_with_nothing_done_is_not_overwritten() -> None:
    # e.g. a resume with another shard_size (--force): the file "000001" holds other archs
    (s,) = missing_work(plan_shards([0, 1, 2, 3], 2)[1:], set(), ["a"], seed=0, existing_ids={0, 1})
    assert s == Shard(2, (2, 3))


class _Space:
    name = "fake"
    size = 100

    def sample_indices(self, n: int, seed: int) -> list[int]:
        return sorted({(seed * 31 + 17 * k) % self.size for k in range(n)})


def test_select_ids_variants() -> None:
    sp = _Space()
    assert select_ids(sp, ScoreConfig(out="x", ids=(5, 3, 5))) == [3, 5]
    assert select_ids(sp, ScoreConfig(out="x", all=True)) == list(range(100))
    assert select_ids(sp, ScoreConfig(out="x", sample=3, seed=1)) == [31, 48, 65]
    with pytest.raises(InvalidArchitectureError):
        select_ids(sp, ScoreConfig(out="x", ids=(100,)))
