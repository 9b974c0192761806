"""Tabular NAS benchmarks registered beside their spaces: one place that knows a benchmark's ground truth.

A :class:`Benchmark` describes one ground-truth table keyed by a space's official architecture index: where
the file lives, which column a search may see (the *query* value, e.g. a short training's validation
accuracy), what that query costs, and which columns hold the reportable *final* accuracies, one per dataset.
Oracles (:mod:`raynas.oracles.base`), the report and the benchmark scripts read a table only through this API,
so adding a benchmark (e.g. NAS-Bench-101) means one new module beside its space, as timm registers each
model's ``default_cfgs`` beside the model.

A space module registers its benchmark with :func:`register_benchmark` when :mod:`raynas.spaces` imports it.
Higher layers that keep something per benchmark (the oracle registry keeps one table oracle per benchmark)
subscribe with :func:`on_benchmark` instead of being imported from here: this module sits below them.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import numpy as np

from raynas.errors import ConfigError, DataError
from raynas.registry import Registry

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "BENCHMARKS", "Benchmark", "FinalAnswer", "benchmark_for_space", "create_benchmark", "data_root",
    "list_benchmarks", "on_benchmark", "register_benchmark",
]

_REPO = Path(__file__).resolve().parents[2]


def data_root() -> Path:
    """Where benchmark tables live: ``$RAYNAS_DATA`` if set, else ``<repo>/../shared/data``.

    Read at every call (not at import) so a test or a shell can point ``RAYNAS_DATA`` elsewhere at any time.
    """
    root = os.environ.get("RAYNAS_DATA")
    return Path(root) if root else _REPO.parent / "shared" / "data"


@dataclass(frozen=True)
class FinalAnswer:
    """A benchmark's final value for one architecture, its rank, and one line to print.

    ``value``: the final column's value; ``rank``: 1 + the number of archs in the table with a strictly higher
    one (ties share a rank); ``total``: archs in the table. All three are None when the table is absent or
    unreadable or the index is not in it; ``line`` then says which. ``table``: the file read (None if absent).
    """

    arch_index: int
    line: str
    value: float | None = None
    rank: int | None = None
    total: int | None = None
    table: str | None = None


@dataclass(frozen=True)
class Benchmark:
    """One ground-truth table of a space (see the module docstring).

    Attributes:
        name: registry name; also the name of its table oracle (``create_oracle(name)``, ``--oracle name``).
        space: the registered space whose official indices key the table.
        title: short human name used in messages and answer lines (e.g. ``"NB201"``).
        relpath: the table's path under :func:`data_root` (a Parquet file).
        query_column: the value a search sees for a queried architecture.
        cost_column: what that query costs, in seconds (the simulated query cost).
        finals: dataset -> column of the reportable final accuracy on that dataset (never shown to a search).
        default_dataset: the dataset whose final column is used when none is named.
        labels: column -> what it measures, in words (axis labels, result text).
        answer_units: final column -> the words after the number in an answer line
            (``"% test accuracy after 200 epochs"`` gives ``"... index 7: 93.10 % test accuracy after ..."``).
        axis_labels: final column -> a short label for plots of metric vs that final value.
        published_rho: metric name -> a published Spearman rho of that proxy with the default final
            accuracy (shown beside the measured one in reports); ``published_source`` cites it.
        index_column: the column holding the architecture index.
        obtain: how a user makes the table when it is absent (a command or a function to run), named in the
            error of a read that finds no file and by ``raynas list benchmarks``.
        sample: the table holds a sample of the space (e.g. NAS-Bench-Suite-Zero's, :mod:`raynas.spaces.nbsz`),
            not all of it: never the space's default benchmark (:func:`benchmark_for_space` skips it), so a
            space may have one full benchmark and any number of samples, each named explicitly.
    """

    name: str
    space: str
    title: str
    relpath: str
    query_column: str
    cost_column: str
    finals: Mapping[str, str]
    default_dataset: str
    labels: Mapping[str, str] = field(default_factory=dict)
    answer_units: Mapping[str, str] = field(default_factory=dict)
    axis_labels: Mapping[str, str] = field(default_factory=dict)
    published_rho: Mapping[str, float] = field(default_factory=dict)
    published_source: str = ""
    index_column: str = "arch_index"
    obtain: str = ""
    sample: bool = False

    def __post_init__(self) -> None:
        for key in ("name", "space", "title", "relpath", "query_column", "cost_column", "index_column"):
            if not isinstance(getattr(self, key), str) or not getattr(self, key):
                raise ConfigError(f"benchmark {self.name!r}: {key} must be a non-empty string")
        if not self.finals or self.default_dataset not in self.finals:
            raise ConfigError(f"benchmark {self.name!r}: default_dataset {self.default_dataset!r} must be one of "
                              f"its final columns' datasets {sorted(self.finals)}")
        # read-only views: a registered description is shared by every reader and must not drift
        for key in ("finals", "labels", "answer_units", "axis_labels", "published_rho"):
            object.__setattr__(self, key, MappingProxyType(dict(getattr(self, key))))

    def __reduce__(self) -> tuple[Any, tuple[dict[str, Any]]]:
        # read-only mapping views do not pickle; an oracle holding its benchmark must cross to Ray workers
        return (_rebuild, ({f.name: _plain(getattr(self, f.name)) for f in fields(self)},))

    # --- where and what ---------------------------------------------------------------------------------
    def default_path(self) -> Path:
        """``$RAYNAS_DATA/<relpath>``, else ``<repo>/../shared/data/<relpath>``."""
        return data_root() / self.relpath

    def resolve_path(self, path: str | Path | None = None) -> Path:
        """``path`` if given, else :meth:`default_path`."""
        return Path(path) if path is not None else self.default_path()

    def how_to_obtain(self) -> str:
        """What to do when the table is absent: :attr:`obtain`, else where raynas looks for it."""
        return self.obtain or f"set RAYNAS_DATA to a folder that holds {self.relpath}"

    def availability(self, path: str | Path | None = None) -> str:
        """``"present"``, or ``"absent: "`` and :meth:`how_to_obtain`."""
        return "present" if self.resolve_path(path).is_file() else f"absent: {self.how_to_obtain()}"

    def final_column(self, dataset: str | None = None) -> str:
        """The final-accuracy column of ``dataset`` (None: ``default_dataset``); unknown ones are a ConfigError."""
        ds = self.default_dataset if dataset is None else dataset
        try:
            return self.finals[ds]
        except KeyError:
            raise ConfigError(f"benchmark {self.name!r} has no final accuracy for dataset {ds!r}; "
                              f"it has {', '.join(sorted(self.finals))}") from None

    def label(self, column: str) -> str:
        """What ``column`` measures, in words (the column name itself when the benchmark does not say)."""
        return self.labels.get(column, column)

    def axis_label(self, dataset: str | None = None) -> str:
        """Short plot label of the final accuracy on ``dataset``."""
        col = self.final_column(dataset)
        return self.axis_labels.get(col, self.label(col))

    # --- reading ----------------------------------------------------------------------------------------
    def read(self, columns: Sequence[str], path: str | Path | None = None) -> pa.Table:
        """The table's ``columns`` (cached per file, its size and modification time, and column set).

        Raises :class:`DataError` naming the file when it is absent, unreadable or lacks a column; callers
        that promise another error type (an oracle: :class:`~raynas.errors.OracleError`) convert it.
        """
        return _read_cached(self.resolve_path(path), tuple(columns), self.title, self.how_to_obtain())

    def column_arrays(self, column: str, path: str | Path | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(arch indices int64 [n], values float64 [n])`` of one column, in table order."""
        t = self.read([self.index_column, column], path)
        idx = t.column(0).to_numpy().astype(np.int64)
        values = t.column(1).to_numpy(zero_copy_only=False).astype(np.float64)
        return idx, values

    def final_values(self, path: str | Path | None = None, dataset: str | None = None) -> dict[int, float]:
        """``{arch index: final accuracy on dataset}`` for every arch in the table (raises as :meth:`read`)."""
        idx, values = self.column_arrays(self.final_column(dataset), path)
        return dict(zip(idx.tolist(), values.tolist()))

    def answer(self, arch_index: int, path: str | Path | None = None, dataset: str | None = None) -> FinalAnswer:
        """The final value of ``arch_index`` and its rank in the table, with one line saying so.

        Never raises for a missing or unreadable table or an index not in it: the caller (a finished search)
        is better served by one line saying the answer is unknown than by an error after the work is done.
        """
        i = int(arch_index)
        p = self.resolve_path(path)
        head = f"{self.title} index {i}"
        if not p.exists():
            folder = Path(self.relpath).parts[0]
            return FinalAnswer(i, f"{head}: no benchmark answer, the {self.title} ground truth table {p} is absent "
                                  f"(set RAYNAS_DATA to the folder holding {folder}/)")
        col = self.final_column(dataset)
        try:
            idx, acc = self.column_arrays(col, p)
        except DataError as e:
            return FinalAnswer(i, f"{head}: no benchmark answer, cannot read {p}: {e.__cause__ or e}", table=str(p))
        hit = np.flatnonzero(idx == i)
        if hit.size == 0 or not np.isfinite(acc[hit[0]]):
            return FinalAnswer(i, f"{head}: not in the ground truth table {p.name}", table=str(p))
        mine = float(acc[hit[0]])
        total = int(idx.size)
        rank = 1 + int(np.sum(acc[np.isfinite(acc)] > mine))
        unit = self.answer_units.get(col, f"({self.label(col)})")
        return FinalAnswer(i, f"{head}: {mine:.2f} {unit}, rank {rank:,} of {total:,}", mine, rank, total, str(p))


#: (path, size, mtime_ns, columns) -> table; a handful of entries (one benchmark file read a few ways)
_CACHE: OrderedDict[tuple[str, int, int, tuple[str, ...]], Any] = OrderedDict()
_CACHE_SIZE = 16
_LOCK = threading.Lock()


def _read_cached(path: Path, columns: tuple[str, ...], title: str, obtain: str = "") -> pa.Table:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        st = path.stat()
    except OSError as e:
        hint = f"; {obtain}" if obtain and not path.exists() else ""
        raise DataError(f"cannot read {title} ground truth {path}: {e.strerror or e}{hint}") from e
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns, columns)
    with _LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
    try:
        table = pq.read_table(path, columns=list(columns))
    except (OSError, KeyError, pa.ArrowException) as e:
        raise DataError(f"cannot read {title} ground truth {path}: {e}") from e
    with _LOCK:
        _CACHE[key] = table
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return table


def _plain(value: Any) -> Any:
    return dict(value) if isinstance(value, MappingProxyType) else value


def _rebuild(kwargs: dict[str, Any]) -> Benchmark:
    return Benchmark(**kwargs)


BENCHMARKS: Registry[Benchmark] = Registry("benchmark")
_HOOKS: list[Callable[[Benchmark], None]] = []


def register_benchmark(benchmark: Benchmark) -> Benchmark:
    """Register ``benchmark`` (one per space, so a space's ground truth is unambiguous, plus any number of
    samples) and tell subscribers."""
    if not isinstance(benchmark, Benchmark):
        raise ConfigError(f"register_benchmark needs a Benchmark, got {type(benchmark).__name__}")
    other = None if benchmark.sample else benchmark_for_space(benchmark.space)
    if other is not None:
        raise ConfigError(f"space {benchmark.space!r} already has benchmark {other.name!r}; "
                          f"cannot register {benchmark.name!r} for it too")
    BENCHMARKS.add(benchmark.name, benchmark)
    for hook in list(_HOOKS):
        hook(benchmark)
    return benchmark


def on_benchmark(hook: Callable[[Benchmark], None]) -> None:
    """Call ``hook(benchmark)`` for every registered benchmark now and for each one registered later."""
    _HOOKS.append(hook)
    for name in BENCHMARKS.names():
        hook(BENCHMARKS.get(name))


def create_benchmark(name: str) -> Benchmark:
    """The registered benchmark ``name``; unknown names raise ``UnknownNameError`` with close matches."""
    return BENCHMARKS.get(name)


def benchmark_for_space(space_name: str) -> Benchmark | None:
    """The benchmark of space ``space_name``, or None when that space has no ground-truth table (samples,
    :attr:`Benchmark.sample`, are never a space's benchmark)."""
    for name in BENCHMARKS.names():
        b = BENCHMARKS.get(name)
        if b.space == space_name and not b.sample:
            return b
    return None


def list_benchmarks() -> list[str]:
    return BENCHMARKS.names()
