"""Oracles: what a search pays to learn an architecture's (proxy) performance.

An oracle answers ``query(arch_index) -> QueryResult(value, cost_seconds)``: the signal the search optimises
(e.g. validation accuracy after a short training) and what it cost to obtain. ``final(arch_index)`` is the number
a paper reports for the chosen architecture (e.g. test accuracy after full training) and is never shown to the
search. A search's own bookkeeping of what it asked
(:class:`raynas.search.queries.QueryLog`) lives with the searches.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol, runtime_checkable

import numpy as np

from raynas.errors import DataError, OracleError, RaynasError, UnknownNameError
from raynas.registry import Registry
from raynas.spaces.benchmarks import Benchmark, benchmark_for_space, create_benchmark, on_benchmark

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class QueryResult:
    """One answer of an oracle: the optimised signal and its (simulated or measured) cost in seconds."""

    value: float
    cost_seconds: float


@dataclass(frozen=True)
class QueryFailure:
    """A query that gave no value (what a query executor hands back instead of a :class:`QueryResult`):
    ``status`` (``"error"``: the query raised; ``"worker_lost"``: every retry of it lost its worker, see
    :data:`raynas.store.search_state.FAILED_STATUSES`) and the ``reason`` in words."""

    status: str
    reason: str


@runtime_checkable
class Oracle(Protocol):
    """``query``: the searched signal and its cost; ``final``: the reported number (never shown to the search);
    ``best_final``: the best reportable value over the whole space, or None where unknown (for regret)."""

    def query(self, arch_index: int) -> QueryResult: ...

    def final(self, arch_index: int) -> float: ...

    def best_final(self) -> float | None: ...


class BenchmarkTableOracle:
    """A benchmark's ground-truth table as an oracle (:mod:`raynas.spaces.benchmarks`): ``query`` = the
    benchmark's query column and its cost column, ``final`` = its default final accuracy. Indices are the
    space's official indices.

    ``benchmark`` is a registered benchmark's name or a :class:`~raynas.spaces.benchmarks.Benchmark`; ``path``
    overrides where its table is read (default :meth:`Benchmark.default_path`); the ``*_column`` arguments
    read other columns of the same table (e.g. another dataset's final accuracy).
    """

    def __init__(
        self,
        benchmark: str | Benchmark,
        path: str | Path | None = None,
        *,
        query_column: str | None = None,
        cost_column: str | None = None,
        final_column: str | None = None,
    ):
        b = create_benchmark(benchmark) if isinstance(benchmark, str) else benchmark
        self.benchmark = b
        self.path = b.resolve_path(path)
        query_column = query_column or b.query_column
        cost_column = cost_column or b.cost_column
        final_column = final_column or b.final_column()
        try:
            table = b.read([b.index_column, query_column, cost_column, final_column], self.path)
        except DataError as e:  # an oracle promises OracleError for every failure to answer
            raise OracleError(str(e)) from None
        idx = table.column(0).to_numpy().astype(np.int64)
        if len(idx) == 0 or idx.min() < 0:
            raise OracleError(f"{self.path}: empty table or negative {b.index_column}")
        # Arrays sorted by arch_index, looked up by binary search: a sample of a huge space (DARTS indices reach
        # 1e18) holds few archs at far-apart indices, where a dense array would not fit in memory. For a repeated
        # index the last row wins.
        order = np.argsort(idx, kind="stable")
        keep = np.r_[idx[order][1:] != idx[order][:-1], True]
        self._idx = idx[order][keep]
        self._q, self._c, self._f = (
            table.column(pos).to_numpy(zero_copy_only=False).astype(np.float64)[order][keep] for pos in (1, 2, 3))
        #: what ``query`` / ``final`` measure (search results and plots name their values with these)
        self.query_label = b.label(query_column)
        self.final_label = b.label(final_column)

    def __len__(self) -> int:
        return len(self._idx)

    def _check(self, arch_index: int) -> int:
        """The row of ``arch_index`` in the sorted arrays."""
        try:
            i = int(arch_index)
        except (TypeError, ValueError):
            raise OracleError(f"architecture index must be an integer, got {arch_index!r}") from None
        pos = int(np.searchsorted(self._idx, i)) if 0 <= i <= np.iinfo(np.int64).max else len(self._idx)
        if pos >= len(self._idx) or int(self._idx[pos]) != i:
            raise OracleError(f"architecture {arch_index} is not in {self.path.name} "
                              f"(the {self.benchmark.title} table, {len(self._idx):,} archs)")
        return pos

    def query(self, arch_index: int) -> QueryResult:
        i = self._check(arch_index)
        return QueryResult(float(self._q[i]), float(self._c[i]))

    def final(self, arch_index: int) -> float:
        return float(self._f[self._check(arch_index)])

    def best_final(self) -> float:
        return float(np.nanmax(self._f))

    def best_final_among(self, arch_indices: np.ndarray) -> float:
        """Best final value within a candidate subset (regret reference for sub-pools)."""
        return float(max(self.final(int(i)) for i in arch_indices))


class CallableOracle:
    """Wraps ``fn(arch_index)`` (e.g. a real training run) as an oracle.

    ``fn`` may return a float (cost = measured wall time), a ``(value, cost_seconds)`` pair or a
    :class:`QueryResult`. Any non-raynas exception from ``fn`` becomes :class:`OracleError` (cause kept), so a
    search sees one error type for a failed query. ``final`` uses ``final_fn`` if given, else the query value.
    """

    def __init__(
        self,
        fn: Callable[[int], Any],
        final_fn: Callable[[int], float] | None = None,
        best: float | None = None,
    ):
        self.fn = fn
        self.final_fn = final_fn
        self.best = best
        self._values: dict[int, float] = {}

    def query(self, arch_index: int) -> QueryResult:
        t0 = time.perf_counter()
        try:
            out = self.fn(int(arch_index))
        except RaynasError:
            raise
        except Exception as e:  # user callback boundary: any failure is a failed query
            raise OracleError(f"query of architecture {arch_index} failed: {type(e).__name__}: {e}") from e
        elapsed = time.perf_counter() - t0
        if isinstance(out, QueryResult):
            res = out
        elif isinstance(out, tuple) and len(out) == 2:
            res = QueryResult(float(out[0]), float(out[1]))
        else:
            res = QueryResult(float(out), elapsed)
        self._values[int(arch_index)] = res.value
        return res

    def final(self, arch_index: int) -> float:
        if self.final_fn is not None:
            return float(self.final_fn(int(arch_index)))
        if int(arch_index) not in self._values:
            raise OracleError(f"architecture {arch_index} was never queried and no final_fn was given")
        return self._values[int(arch_index)]

    def best_final(self) -> float | None:
        return self.best


ORACLES: Registry[Callable[..., Oracle]] = Registry("oracle")
ORACLES.add("callable", CallableOracle)


def _table_oracle_factory(b: Benchmark) -> Callable[..., BenchmarkTableOracle]:
    """``create_oracle(b.name, path=..., ...)``: :class:`BenchmarkTableOracle` of ``b``. Its docstring's first
    paragraph is what ``raynas list oracles`` prints, so it says what the table answers."""

    def factory(path: str | Path | None = None, *, query_column: str | None = None, cost_column: str | None = None,
                final_column: str | None = None) -> BenchmarkTableOracle:
        return BenchmarkTableOracle(b, path, query_column=query_column, cost_column=cost_column,
                                    final_column=final_column)

    factory.__name__ = factory.__qualname__ = f"{b.name}_table_oracle"
    factory.__doc__ = (f"the {b.title} benchmark table: query = {b.label(b.query_column)}, cost = "
                       f"{b.label(b.cost_column)}, final = {b.label(b.final_column())}.\n\n"
                       f"Keyword arguments as :class:`BenchmarkTableOracle` (its table: {b.relpath}).")
    return factory


# one table oracle per registered benchmark, under the benchmark's name (also those registered later)
on_benchmark(lambda b: ORACLES.add(b.name, _table_oracle_factory(b)))


#: registered oracles built from Python objects only (``CallableOracle`` wraps a function): not names a user can
#: pass to ``--oracle``, so an unknown name's error does not offer them
PYTHON_ONLY_ORACLES = frozenset({"callable"})


def create_oracle(name: str, **kwargs: Any) -> Oracle:
    """Build registered oracle ``name`` (e.g. a benchmark's table: ``create_oracle(name, path=...)``).

    Raises:
        UnknownNameError: ``name`` is not registered; lists the names ``--oracle`` accepts.
    """
    if name not in ORACLES:
        raise UnknownNameError("oracle", name, [n for n in ORACLES.names() if n not in PYTHON_ONLY_ORACLES])
    return ORACLES.get(name)(**kwargs)


def query_label(oracle: Oracle | None) -> str | None:
    """What ``oracle.query`` measures, in words (e.g. ``"12-epoch validation accuracy (%) on CIFAR-10"``).

    An oracle may say so itself with a ``query_label`` attribute; a training oracle (one with ``dataset`` and
    ``train_cfg.epochs``, like :class:`raynas.oracles.training.TrainingOracle`) is described from its settings.
    None when nothing is known (e.g. a :class:`CallableOracle`).
    """
    label = getattr(oracle, "query_label", None)
    if isinstance(label, str) and label:
        return label
    dataset, epochs = getattr(oracle, "dataset", None), getattr(getattr(oracle, "train_cfg", None), "epochs", None)
    if isinstance(dataset, str) and isinstance(epochs, int):
        return f"validation accuracy (%) on {dataset} after {epochs} epoch{'s' if epochs != 1 else ''} of training"
    return None


@dataclass(frozen=True)
class BenchmarkAnswer:
    """The benchmark's ground truth for a chosen architecture, with one line to print (:func:`benchmark_answer`).

    ``test_acc``: the space's benchmark's default final accuracy (e.g. CIFAR-10 test accuracy (%) after 200
    epochs); ``rank``: 1 + the number of archs in the table with a strictly higher one (ties share a rank);
    ``total``: archs in the table. All three are None when the table is absent or unreadable, or the index is
    not in it; ``line`` then says which.
    """

    space: str
    arch_index: int
    line: str
    test_acc: float | None = None
    rank: int | None = None
    total: int | None = None
    table: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"space": self.space, "arch_index": self.arch_index, "line": self.line, "test_acc": self.test_acc,
                "rank": self.rank, "total": self.total, "table": self.table}


def benchmark_answer(space: str, arch_index: int | None, path: str | Path | None = None) -> BenchmarkAnswer | None:
    """The answer of ``space``'s benchmark for ``arch_index`` (None for a space without a benchmark, or no arch).

    Reads the index and default final column of the benchmark's table at ``path`` (default: its
    :meth:`~raynas.spaces.benchmarks.Benchmark.default_path`). Never raises for a missing or unreadable table:
    the search that asks has finished, and one line saying the answer is unknown is worth more than an error.
    """
    bench = benchmark_for_space(str(space))
    if bench is None or arch_index is None:
        return None
    a = bench.answer(int(arch_index), path)
    return BenchmarkAnswer(space, a.arch_index, a.line, a.value, a.rank, a.total, a.table)
