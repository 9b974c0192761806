"""Oracles: what a search pays to learn an architecture's (proxy) performance.

An oracle answers ``query(arch_index) -> QueryResult(value, cost_seconds)``: the signal the search optimises
(e.g. validation accuracy after a short training) and what it cost to obtain. ``final(arch_index)`` is the number
a paper reports for the chosen architecture (e.g. test accuracy after full training) and is never shown to the
search. :class:`QueryLog` keeps the distinct queries of one search (repeats are free) and builds the common
result dict every search method returns.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol, runtime_checkable

import numpy as np

from raynas.errors import OracleError, RaynasError
from raynas.registry import Registry

log = logging.getLogger(__name__)

_REPO = Path(__file__).resolve().parents[2]
NB201_RELPATH = Path("nb201") / "nb201_cifar10.parquet"
#: what the NB201 table's columns measure, for axis labels and result text (see /work/shared/data/README.md)
NB201_LABELS = {
    "cifar10_valid_acc_12ep": "12-epoch validation accuracy (%) on CIFAR-10",
    "cifar10_train_seconds_12ep": "12-epoch training time (s) on CIFAR-10",
    "cifar10_test_acc_200ep": "200-epoch test accuracy (%) on CIFAR-10",
}
NB201_FINAL_COLUMN = "cifar10_test_acc_200ep"


@dataclass(frozen=True)
class QueryResult:
    """One answer of an oracle: the optimised signal and its (simulated or measured) cost in seconds."""

    value: float
    cost_seconds: float


@runtime_checkable
class Oracle(Protocol):
    """``query``: the searched signal and its cost; ``final``: the reported number (never shown to the search);
    ``best_final``: the best reportable value over the whole space, or None where unknown (for regret)."""

    def query(self, arch_index: int) -> QueryResult: ...

    def final(self, arch_index: int) -> float: ...

    def best_final(self) -> float | None: ...


def default_nb201_path() -> Path:
    """``$RAYNAS_DATA/nb201/nb201_cifar10.parquet``, else ``<repo>/../shared/data/nb201/...``."""
    root = os.environ.get("RAYNAS_DATA")
    return (Path(root) if root else _REPO.parent / "shared" / "data") / NB201_RELPATH


class NB201TableOracle:
    """NAS-Bench-201 CIFAR-10 lookup: query = 12-epoch valid acc (%), cost = its training seconds,
    final = 200-epoch test acc (%). Indices are official NB201 indices (0..15624)."""

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        query_column: str = "cifar10_valid_acc_12ep",
        cost_column: str = "cifar10_train_seconds_12ep",
        final_column: str = "cifar10_test_acc_200ep",
    ):
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.path = Path(path) if path is not None else default_nb201_path()
        cols = ["arch_index", query_column, cost_column, final_column]
        try:
            table = pq.read_table(self.path, columns=cols)
        except (OSError, pa.ArrowException) as e:
            raise OracleError(f"cannot read NB201 ground truth {self.path}: {e}") from None
        idx = table.column("arch_index").to_numpy().astype(np.int64)
        if len(idx) == 0 or idx.min() < 0:
            raise OracleError(f"{self.path}: empty table or negative arch_index")
        n = int(idx.max()) + 1
        # Dense arrays indexed by arch_index; NaN marks indices absent from the table.
        self._q, self._c, self._f = (np.full(n, np.nan) for _ in range(3))
        for arr, col in ((self._q, query_column), (self._c, cost_column), (self._f, final_column)):
            arr[idx] = table.column(col).to_numpy(zero_copy_only=False).astype(np.float64)
        self._known = np.zeros(n, dtype=bool)
        self._known[idx] = True
        #: what ``query`` / ``final`` measure (search results and plots name their values with these)
        self.query_label = NB201_LABELS.get(query_column, query_column)
        self.final_label = NB201_LABELS.get(final_column, final_column)

    def __len__(self) -> int:
        return int(self._known.sum())

    def _check(self, arch_index: int) -> int:
        try:
            i = int(arch_index)
        except (TypeError, ValueError):
            raise OracleError(f"architecture index must be an integer, got {arch_index!r}") from None
        if not (0 <= i < len(self._known)) or not self._known[i]:
            raise OracleError(f"architecture {arch_index} is not in {self.path.name}")
        return i

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
ORACLES.add("nb201", NB201TableOracle)
ORACLES.add("callable", CallableOracle)


def create_oracle(name: str, **kwargs: Any) -> Oracle:
    """Build registered oracle ``name`` (e.g. ``create_oracle("nb201", path=...)``)."""
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

    ``test_acc``: NB201 CIFAR-10 test accuracy (%) after 200 epochs; ``rank``: 1 + the number of archs in the table
    with a strictly higher one (ties share a rank); ``total``: archs in the table. All three are None when the
    table is absent or unreadable, or the index is not in it; ``line`` then says which.
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
    """The NB201 answer for ``arch_index`` (None for other spaces, which have no benchmark table, or no arch).

    Reads ``arch_index`` and the 200-epoch test column of the table at ``path`` (default
    :func:`default_nb201_path`). Never raises for a missing or unreadable table: the search that asks has
    finished, and one line saying the answer is unknown is worth more than an error after it.
    """
    if space != "nb201" or arch_index is None:
        return None
    import pyarrow as pa
    import pyarrow.parquet as pq

    i = int(arch_index)
    p = Path(path) if path is not None else default_nb201_path()
    if not p.exists():
        return BenchmarkAnswer(space, i, f"NB201 index {i}: no benchmark answer, the NB201 ground truth table "
                                         f"{p} is absent (set RAYNAS_DATA to the folder holding nb201/)")
    try:
        t = pq.read_table(p, columns=["arch_index", NB201_FINAL_COLUMN])
    except (OSError, KeyError, pa.ArrowException) as e:
        return BenchmarkAnswer(space, i, f"NB201 index {i}: no benchmark answer, cannot read {p}: {e}", table=str(p))
    idx = t.column(0).to_numpy().astype(np.int64)
    acc = t.column(1).to_numpy(zero_copy_only=False).astype(np.float64)
    hit = np.flatnonzero(idx == i)
    if hit.size == 0 or not np.isfinite(acc[hit[0]]):
        return BenchmarkAnswer(space, i, f"NB201 index {i}: not in the ground truth table {p.name}", table=str(p))
    mine = float(acc[hit[0]])
    total = int(idx.size)
    rank = 1 + int(np.sum(acc[np.isfinite(acc)] > mine))
    line = f"NB201 index {i}: {mine:.2f} % test accuracy after 200 epochs, rank {rank:,} of {total:,}"
    return BenchmarkAnswer(space, i, line, mine, rank, total, str(p))


class QueryLog:
    """Distinct queries of one search, in order. A repeated architecture is answered from the cache at no cost."""

    def __init__(self) -> None:
        self.arch: list[int] = []
        self.values: list[float] = []
        self.costs: list[float] = []
        self._pos: dict[int, int] = {}

    def __contains__(self, arch_index: object) -> bool:
        return arch_index in self._pos

    def __len__(self) -> int:
        return len(self.arch)

    def value_of(self, arch_index: int) -> float:
        return self.values[self._pos[int(arch_index)]]

    def record(self, arch_index: int, value: float, cost: float) -> None:
        a = int(arch_index)
        if a in self._pos:
            raise OracleError(f"architecture {a} recorded twice")
        self._pos[a] = len(self.arch)
        self.arch.append(a)
        self.values.append(float(value))
        self.costs.append(float(cost))

    def query(self, oracle: Oracle, arch_index: int) -> tuple[float, float, bool]:
        """``(value, cost, new_query)``: asks ``oracle`` only for architectures not seen yet."""
        a = int(arch_index)
        if a in self._pos:
            return self.value_of(a), 0.0, False
        res = oracle.query(a)
        self.record(a, res.value, res.cost_seconds)
        return res.value, res.cost_seconds, True

    def best(self) -> int:
        """Position of the best value (ties: the earliest query)."""
        if not self.arch:
            raise OracleError("no architecture has been queried")
        return int(np.argmax(np.asarray(self.values)))

    def result(self, method: str, oracle: Oracle | None = None, **extra: Any) -> dict[str, Any]:
        """The common result dict: best ``arch_index``, its query ``value`` and ``final``, ``queries`` (distinct),
        total ``cost``, the query history (``queried``, ``values``, ``costs``) and ``query_label`` (what the values
        measure, :func:`query_label`; None when unknown)."""
        b = self.best()
        arch = self.arch[b]
        out: dict[str, Any] = {
            "method": method,
            "arch_index": arch,
            "value": self.values[b],
            "final": oracle.final(arch) if oracle is not None else None,
            "queries": len(self.arch),
            "cost": float(sum(self.costs)),
            "queried": list(self.arch),
            "values": list(self.values),
            "costs": list(self.costs),
            "query_label": query_label(oracle),
        }
        out.update(extra)
        return out


def drive(search: Any, oracle: Oracle, on_step: Callable[[dict[str, Any]], None] | None = None) -> None:
    """Ask/query/tell ``search`` until it is done: cached proposals are told without a query (they cost
    nothing), others are answered by ``oracle``; ``on_step(row)`` after every tell."""
    while not search.done:
        p = search.ask()
        if p.cached:
            row = search.tell(p)
        else:
            res = oracle.query(p.arch_index)
            row = search.tell(p, res.value, res.cost_seconds)
        if on_step is not None:
            on_step(row)
