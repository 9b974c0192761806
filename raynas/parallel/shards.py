"""Shard planning (pure: no I/O, no Ray).

A run's architectures are cut into fixed-size shards, one Parquet file each. The plan depends only on the
identity part of the config (space, selection, seed, shard size), so a resumed run recomputes exactly the
same shards and can tell from the stored ``(arch_index, metric, seed)`` keys what is still to do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Collection, Iterable, Sequence

from raynas.errors import ConfigError, InvalidArchitectureError

if TYPE_CHECKING:
    from raynas.parallel.config import ScoreConfig
    from raynas.spaces.base import SearchSpace

DoneKey = tuple[int, str, int]


@dataclass(frozen=True)
class Shard:
    """A unit of work: ``ids`` scored with ``metrics`` (None: all of the run's metrics), written as one file.

    ``shard_id`` numbers the file (``scores/shard-000042.parquet``): ``0 .. n-1`` for the planned shards; the
    sub-shard of a partly scored shard gets a fresh number after every planned and existing one, so it
    never overwrites the file holding the done part.
    """

    shard_id: int
    ids: tuple[int, ...]
    metrics: tuple[str, ...] | None = None

    def __len__(self) -> int:
        return len(self.ids)


def plan_shards(ids: Sequence[int], shard_size: int) -> list[Shard]:
    """Cut ``ids`` (in the given order) into consecutive shards of ``shard_size`` (the last may be shorter).

    Deterministic: the same ids and size always give the same shards; every id lands in exactly one shard.
    """
    if shard_size < 1:
        raise ConfigError(f"shard_size must be >= 1, got {shard_size}")
    if len(set(ids)) != len(ids):
        raise ConfigError("plan_shards: ids contain duplicates")
    return [
        Shard(k, tuple(int(i) for i in ids[start : start + shard_size]))
        for k, start in enumerate(range(0, len(ids), shard_size))
    ]


def missing_work(
    shards: Iterable[Shard],
    done_keys: Collection[DoneKey],
    metrics: Sequence[str],
    seed: int,
    existing_ids: Collection[int] = (),
) -> list[Shard]:
    """The shards (or sub-shards) whose ``(arch_index, metric, seed)`` rows are not all in ``done_keys``.

    A shard with nothing done comes back unchanged (same id: a resume rewrites the very file a crash lost).
    A partly done shard (possible after ``force`` with a changed metric list), or one whose id is taken by an
    existing file (a changed ``shard_size``), becomes a sub-shard holding only the archs and metrics with
    something missing, under a new id above every planned and existing one (deterministic for a given
    state). Scoring a sub-shard may recompute some done pairs; the caller drops them before writing
    (:func:`raynas.parallel.scoring.drop_done_rows`).
    """
    shards = list(shards)
    metrics = tuple(metrics)
    done = set(done_keys)
    existing = set(existing_ids)
    next_id = max([s.shard_id for s in shards] + list(existing), default=-1) + 1
    out: list[Shard] = []
    for shard in shards:
        wanted = shard.metrics if shard.metrics is not None else metrics
        missing = [(i, m) for i in shard.ids for m in wanted if (i, m, seed) not in done]
        if not missing:
            continue
        if len(missing) == len(shard.ids) * len(wanted) and shard.shard_id not in existing:
            out.append(shard)
            continue
        ids = tuple(dict.fromkeys(i for i, _ in missing))
        ms = tuple(m for m in wanted if any(mm == m for _, mm in missing))
        out.append(Shard(next_id, ids, None if ms == metrics else ms))
        next_id += 1
    return out


def select_ids(space: "SearchSpace", cfg: "ScoreConfig") -> list[int]:
    """The run's architecture indices, sorted: ``ids``, a seeded ``sample``, or ``all`` of the space."""
    from raynas.parallel.config import MAX_ALL_SIZE

    size = space.size
    if cfg.ids is not None:
        bad = [i for i in cfg.ids if not 0 <= i < size]
        if bad:
            raise InvalidArchitectureError(f"{space.name}: ids {bad[:5]} outside [0, {size})")
        return sorted(set(int(i) for i in cfg.ids))
    if cfg.all:
        if size > MAX_ALL_SIZE:
            raise ConfigError(f"{space.name} has {size} archs, too many for all=true; use sample=N")
        return list(range(size))
    if cfg.sample is None:  # ScoreConfig guarantees one selector; kept for configs built by hand
        raise ConfigError("no architecture selection (sample, all or ids)")
    if cfg.sample > size:
        raise ConfigError(
            f"sample={cfg.sample} is more than the {size} archs of {space.name}; give a sample of at most "
            f"{size}, or all=true (--all) to score the whole space"
        )
    return [int(i) for i in space.sample_indices(cfg.sample, cfg.seed)]
