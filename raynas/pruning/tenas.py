"""TE-NAS pruning search (Chen, Gong & Wang, ICLR 2021, Algorithm 1), as pure functions over a measure.

The state is an *alive* list: ``alive[e]`` holds the op names still on edge ``e`` of the supernet. A round
measures the current supernet and, for every alive op ``o`` on every edge with more than one op, the supernet
without ``o``, through an injected ``measure(alive) -> (kappa, regions)`` (NTK condition number: lower means
more trainable; number of linear regions: higher means more expressive). Then, relative to the current net::

    d_kappa(o)   = (kappa - kappa_without_o) / kappa       high: removing o improves trainability -> prune
    d_regions(o) = (R - R_without_o) / R                   low: removing o costs little expressivity -> prune

Both are rounded to ``precision`` decimals (so near-equal values tie) and densely ranked over ALL candidates
of the round: ``rank_kappa`` by ``d_kappa`` descending, ``rank_regions`` by ``d_regions`` ascending (rank 0 =
first to prune). The importance of ``o`` is ``rank_kappa + rank_regions``; on every edge the ``prune_number``
least important ops are removed (never the last one), until every edge has one op. Ties are broken by
``rank_kappa``, then by enumeration order, as the public TE-NAS code does.

DARTS cells keep two inputs per node: :func:`prune_edges` then measures, node by node, the net without each
incoming edge, ranks those edges within the node the same way and removes all but the ``keep`` most important.

A measure may return one value or a sequence of per-repeat values (e.g. one per random init); with sequences,
the relative change is averaged over repeats (the pairing across a candidate and the current supernet is the
measure's business: same seeds, same weights). Measures must be deterministic: results are cached by state.
:func:`run_tenas_search` (in :mod:`raynas.pruning.run`) wires the real supernet measure to this loop.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, Sequence

from raynas.errors import ConfigError, SearchError

Alive = tuple[tuple[str, ...], ...]
Values = float | Sequence[float]
Measure = Callable[[Alive], tuple[Values, Values]]
#: ``progress(done_measure_calls, planned_total)``
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Candidate:
    """One pruning candidate of a round: op ``op`` on edge ``edge`` (edge phase: the whole edge)."""

    edge: int
    op: str
    d_kappa: float
    d_regions: float
    rank_kappa: int
    rank_regions: int
    pruned: bool

    @property
    def importance(self) -> int:
        return self.rank_kappa + self.rank_regions


@dataclass(frozen=True)
class PruneRound:
    """The log of one round: ``phase`` is ``"ops"`` or ``"edges"`` (then ``group`` lists the node's edges)."""

    phase: str
    index: int
    kappa: float
    regions: float
    candidates: tuple[Candidate, ...]
    alive_after: Alive
    seconds: float
    group: tuple[int, ...] = ()

    @property
    def pruned(self) -> tuple[tuple[int, str], ...]:
        return tuple((c.edge, c.op) for c in self.candidates if c.pruned)


@dataclass(frozen=True)
class TenasOutcome:
    """Final state (one op per kept edge, ``()`` on pruned edges), round logs, seconds, measure calls."""

    alive: Alive
    rounds: tuple[PruneRound, ...]
    seconds: float
    measure_calls: int


def normalize_alive(alive: Sequence[Sequence[str]]) -> Alive:
    out = tuple(tuple(ops) for ops in alive)
    for e, ops in enumerate(out):
        if len(set(ops)) != len(ops) or not all(isinstance(o, str) and o for o in ops):
            raise ConfigError(f"alive ops of edge {e} must be distinct names, got {list(ops)}")
    return out


def _values(v: Values) -> tuple[float, ...]:
    vals = (float(v),) if isinstance(v, (int, float)) else tuple(float(x) for x in v)
    if not vals or any(math.isnan(x) for x in vals):
        raise SearchError(f"measure returned {v!r}: need a number or a non-empty sequence without NaN")
    return vals


def relative_change(before: Values, after: Values, precision: int | None = 3) -> float:
    """Mean over repeats of ``(before - after) / before``, rounded to ``precision`` decimals.

    Non-finite values (a singular NTK gives ``kappa = inf``) take the limit: ``inf -> finite`` is ``1``,
    ``inf -> inf`` is ``0``, ``finite -> inf`` is ``-inf``.
    """
    b, a = _values(before), _values(after)
    if len(b) != len(a):
        raise SearchError(f"measure returned {len(b)} and {len(a)} repeats for two states")
    changes = []
    for x, y in zip(b, a):
        if math.isinf(x):
            changes.append(0.0 if math.isinf(y) else 1.0)
        elif math.isinf(y) or x == 0.0:
            changes.append(0.0 if y == x else -math.inf if y > x else math.inf)
        else:
            changes.append((x - y) / x)
    infinite = [c for c in changes if math.isinf(c)]
    if infinite:  # any infinite repeat dominates; +inf and -inf together cancel to "no change"
        total = sum(infinite)
        return 0.0 if math.isnan(total) else total
    mean = sum(changes) / len(changes)
    return round(mean, precision) if precision is not None else mean


def dense_ranks(values: Sequence[float], descending: bool) -> list[int]:
    """Rank of each value, 0 = first in the order; equal values share a rank, the next distinct one is +1."""
    distinct = sorted(set(values), reverse=descending)
    position = {v: r for r, v in enumerate(distinct)}
    return [position[v] for v in values]


def _rank(entries: list[tuple[int, str, float, float]]) -> tuple[list[tuple[int, int]], list[int]]:
    """``(ranks, order)`` of ``(edge, op, d_kappa, d_regions)`` entries: ``(rank_kappa, rank_regions)`` per
    entry, and the entry positions from least to most important (ties: lower kappa rank, then position)."""
    ranks = list(zip(dense_ranks([e[2] for e in entries], descending=True),
                     dense_ranks([e[3] for e in entries], descending=False)))
    return ranks, sorted(range(len(entries)), key=lambda i: (sum(ranks[i]), ranks[i][0], i))


def _mean(v: Values) -> float:
    vals = _values(v)
    return sum(vals) / len(vals)


class _Runner:
    """Caches measurements by state and reports progress."""

    def __init__(self, measure: Measure, progress: Progress | None, planned: int):
        self.measure, self.progress, self.planned = measure, progress, planned
        self.cache: dict[Alive, tuple[Values, Values]] = {}
        self.calls = 0

    def __call__(self, alive: Alive) -> tuple[Values, Values]:
        if alive not in self.cache:
            self.cache[alive] = self.measure(alive)
            self.calls += 1
            if self.progress is not None:
                self.planned = max(self.planned, self.calls)
                self.progress(self.calls, self.planned)
        return self.cache[alive]


def _without(alive: Alive, edge: int, ops: Sequence[str]) -> Alive:
    return alive[:edge] + (tuple(o for o in alive[edge] if o not in ops),) + alive[edge + 1 :]


def _check_groups(groups: Sequence[Sequence[int]], n_edges: int) -> None:
    if any(not 0 <= e < n_edges for g in groups for e in g):
        raise ConfigError(f"edge groups {list(map(list, groups))} reference edges outside 0..{n_edges - 1}")


def planned_calls(alive: Alive, prune_number: int = 1, groups: Sequence[Sequence[int]] = (), keep: int = 2) -> int:
    """Measure calls :func:`tenas_prune` will make (without cache hits): for progress totals."""
    if prune_number < 1:
        raise ConfigError(f"prune_number must be >= 1, got {prune_number}")
    _check_groups(groups, len(alive))
    counts = [len(ops) for ops in alive]
    total = 0
    while any(c > 1 for c in counts):
        total += 1 + sum(c for c in counts if c > 1)
        counts = [c - min(prune_number, c - 1) if c > 1 else c for c in counts]
    for g in groups:
        present = sum(1 for e in g if counts[e] > 0)
        total += 1 + present if present > keep else 0
    return total


def prune_ops(
    alive: Alive, measure: Measure, *, prune_number: int = 1, precision: int | None = 3,
    first_round: int = 0,
) -> tuple[Alive, list[PruneRound]]:
    """Op-pruning rounds until every edge has at most one op; returns the final state and the round logs."""
    if prune_number < 1:
        raise ConfigError(f"prune_number must be >= 1, got {prune_number}")
    alive = normalize_alive(alive)
    rounds: list[PruneRound] = []
    while any(len(ops) > 1 for ops in alive):
        t0 = time.perf_counter()
        kappa, regions = measure(alive)
        entries = []
        for e, ops in enumerate(alive):
            if len(ops) > 1:
                for op in ops:
                    k, r = measure(_without(alive, e, (op,)))
                    entries.append((e, op, relative_change(kappa, k, precision),
                                    relative_change(regions, r, precision)))
        ranks, order = _rank(entries)
        chosen: set[int] = set()
        per_edge: dict[int, int] = {}
        for i in order:
            e = entries[i][0]
            if per_edge.get(e, 0) < min(prune_number, len(alive[e]) - 1):
                per_edge[e] = per_edge.get(e, 0) + 1
                chosen.add(i)
        for i in sorted(chosen):
            alive = _without(alive, entries[i][0], (entries[i][1],))
        cands = tuple(Candidate(e, op, dk, dr, rk, rr, i in chosen)
                      for i, ((e, op, dk, dr), (rk, rr)) in enumerate(zip(entries, ranks)))
        rounds.append(PruneRound("ops", first_round + len(rounds), _mean(kappa), _mean(regions), cands, alive,
                                 time.perf_counter() - t0))
    return alive, rounds


def prune_edges(
    alive: Alive, groups: Sequence[Sequence[int]], measure: Measure, *, keep: int = 2,
    precision: int | None = 3, first_round: int = 0,
) -> tuple[Alive, list[PruneRound]]:
    """For each group (the incoming edges of one node) with more than ``keep`` present edges, remove all but
    the ``keep`` most important edges (importance ranked within the group), group after group."""
    if keep < 1:
        raise ConfigError(f"keep must be >= 1, got {keep}")
    alive = normalize_alive(alive)
    _check_groups(groups, len(alive))
    rounds: list[PruneRound] = []
    for group in groups:
        present = [e for e in group if alive[e]]
        if len(present) <= keep:
            continue
        t0 = time.perf_counter()
        kappa, regions = measure(alive)
        entries = []
        for e in present:
            k, r = measure(_without(alive, e, alive[e]))
            entries.append((e, "+".join(alive[e]), relative_change(kappa, k, precision),
                            relative_change(regions, r, precision)))
        ranks, order = _rank(entries)
        chosen = set(order[: len(entries) - keep])
        for i in chosen:
            alive = _without(alive, entries[i][0], alive[entries[i][0]])
        cands = tuple(Candidate(e, op, dk, dr, rk, rr, i in chosen)
                      for i, ((e, op, dk, dr), (rk, rr)) in enumerate(zip(entries, ranks)))
        rounds.append(PruneRound("edges", first_round + len(rounds), _mean(kappa), _mean(regions), cands, alive,
                                 time.perf_counter() - t0, tuple(group)))
    return alive, rounds


def tenas_prune(
    alive: Sequence[Sequence[str]], measure: Measure, *, prune_number: int = 1, precision: int | None = 3,
    groups: Sequence[Sequence[int]] = (), keep: int = 2, progress: Progress | None = None,
) -> TenasOutcome:
    """The whole TE-NAS search: op pruning to one op per edge, then (if ``groups``) edge pruning to ``keep``
    inputs per node. ``measure`` results are cached, so each distinct state is measured once."""
    start = normalize_alive(alive)
    if any(not ops for ops in start):
        raise ConfigError("every edge needs at least one alive op at the start")
    runner = _Runner(measure, progress, planned_calls(start, prune_number, groups, keep))
    t0 = time.perf_counter()
    state, rounds = prune_ops(start, runner, prune_number=prune_number, precision=precision)
    if groups:
        state, more = prune_edges(state, groups, runner, keep=keep, precision=precision, first_round=len(rounds))
        rounds += more
    if progress is not None and runner.calls < runner.planned:  # cache hits made the plan too long
        progress(runner.calls, runner.calls)
    return TenasOutcome(state, tuple(rounds), time.perf_counter() - t0, runner.calls)

