"""Scoring a list of architecture ids into a long Arrow table (pure: no Ray, no store, no run directory).

The same function runs inside each Ray actor and in the plain in-process loop (``workers=0``,
:mod:`raynas.parallel.local`, and the benchmark's baseline), so the Ray pipeline and the local one produce
identical rows.
"""

from __future__ import annotations

import logging
import socket
from typing import TYPE_CHECKING, Any, Callable, Collection, Iterator, Mapping, Sequence

import pyarrow as pa
import pyarrow.compute as pc

from raynas.errors import ConfigError, RaynasError, UnknownNameError
from raynas.store.keys import key_mask

if TYPE_CHECKING:
    from raynas.data.batch import Batch
    from raynas.spaces.base import SearchSpace

log = logging.getLogger(__name__)

#: ``to_table(space, arch_index, arch, seed, data, results, host) -> pa.Table`` (the store's schema)
ToTable = Callable[..., pa.Table]


def _default_to_table() -> ToTable:
    from raynas.store.schema import results_to_table

    return results_to_table


def error_results(metrics: Sequence[str], error: str, device: str = "") -> list[Any]:
    """One ``status="error"`` result per metric (an arch that could not be built or a shard given up on)."""
    from raynas.metrics.engine import MetricResult

    return [MetricResult(m, None, "error", error, 0.0, device) for m in metrics]


def score_ids(
    space: "SearchSpace",
    ids: Sequence[int],
    metric_names: Sequence[str],
    batch: "Batch",
    seed: int,
    device: str = "cpu",
    data_name: str | None = None,
    host: str | None = None,
    space_kwargs: Mapping[str, Any] | None = None,
    progress: Callable[[int, int], None] | None = None,
    to_table: ToTable | None = None,
    arch_batch: int = 1,
    channels_last: bool = False,
) -> pa.Table:
    """Score every arch of ``ids`` with every metric; one row per (arch, metric).

    Args:
        space: the search space (``index_to_arch``, ``to_module``).
        ids: architecture indices, scored in this order.
        metric_names: registered metric names (unknown names raise :class:`UnknownNameError` up front).
        batch: the fixed input batch ``inputs [B, C, H, W]``, ``labels [B]``.
        seed: seeds each network's initialisation and each metric (same seed -> same values).
        device: where to compute (``"cpu"``, ``"cuda"``).
        data_name: stored in the ``data`` column (default ``batch.name``).
        host: stored in the ``host`` column (default this machine's hostname).
        space_kwargs: ``to_module`` overrides (NAS-Bench-201: ``C``, ``N``).
        progress: called ``(archs_done, len(ids))`` after each arch.
        to_table: row builder (default :func:`raynas.store.schema.results_to_table`).
        arch_batch: archs scored together by the batched engine (:mod:`raynas.metrics.batched`: one stacked
            network per group of ``arch_batch`` consecutive ids; same values as 1, the per-arch fused engine).
        channels_last: the per-arch engine's ``channels_last`` memory format (values equal within float32
            rounding); not with ``arch_batch > 1``.
    Returns:
        the concatenated rows of all archs. An arch whose index or network cannot be built gets one
        ``status="error"`` row per metric carrying the error text; the other archs are still scored.
    """
    tables: list[pa.Table] = []
    for k, (_idx, table) in enumerate(iter_scored(space, ids, metric_names, batch, seed, device, data_name, host,
                                                  space_kwargs, to_table, arch_batch=arch_batch,
                                                  channels_last=channels_last)):
        tables.append(table)
        if progress is not None:
            progress(k + 1, len(ids))
    if not tables:
        from raynas.store.schema import empty_table

        return empty_table()
    return pa.concat_tables(tables)


def iter_scored(
    space: "SearchSpace",
    ids: Sequence[int],
    metric_names: Sequence[str],
    batch: "Batch",
    seed: int,
    device: str = "cpu",
    data_name: str | None = None,
    host: str | None = None,
    space_kwargs: Mapping[str, Any] | None = None,
    to_table: ToTable | None = None,
    arch_batch: int = 1,
    on_metric: Callable[[tuple[str, ...], int, int], None] | None = None,
    channels_last: bool = False,
) -> Iterator[tuple[int, pa.Table]]:
    """:func:`score_ids` one arch at a time: yields ``(arch_index, rows)`` as soon as each arch is scored (the
    unit of progress, and of what an interrupted run keeps). Unknown metric names raise (the engine's
    :class:`UnknownNameError`) at the first arch.

    ``arch_batch > 1``: groups of that many consecutive ids are scored by the batched engine
    (:func:`raynas.metrics.batched.compute_metrics_batched`, which splits a group after out-of-memory and notes it
    on the rows); each group's archs are then yielded in order. ``channels_last``: the per-arch engine's memory
    format option (:func:`raynas.metrics.engine.compute_metrics`); refused with ``arch_batch > 1``."""
    from raynas.metrics.engine import compute_metrics

    if isinstance(arch_batch, bool) or not isinstance(arch_batch, int) or arch_batch < 1:
        raise ConfigError(f"arch_batch must be an int >= 1, got {arch_batch!r}")
    if channels_last and arch_batch > 1:
        raise ConfigError("channels_last is an option of the per-arch engine: not with arch_batch > 1")
    if arch_batch > 1:
        yield from _iter_batched(space, ids, metric_names, batch, seed, device, data_name, host, space_kwargs,
                                 to_table, arch_batch)
        return

    # unknown names: the run's config resolved them already (ScoreConfig.metric_names), and the engine checks
    # them again before any arch is scored; its UnknownNameError is re-raised below, never stored as error rows
    names = list(metric_names)
    to_table = to_table or _default_to_table()
    kwargs = dict(space_kwargs or {})
    thin_kw = space.thin_kwargs()
    data_name = data_name if data_name is not None else batch.name
    host = host or socket.gethostname()
    for idx in ids:
        arch = None
        try:
            arch = space.index_to_arch(int(idx))
            factory = _factory(space, arch, batch.num_classes, kwargs)
            thin = _factory(space, arch, batch.num_classes, {**kwargs, **thin_kw}) if thin_kw else None
            # fused: one build and shared passes per arch; values equal the unfused path (tests/metrics/test_fused.py)
            results = compute_metrics(factory, batch, names, device=device, seed=seed, thin_factory=thin,
                                       fused=True, on_metric=on_metric, channels_last=channels_last)
        except UnknownNameError:
            raise
        except Exception as exc:  # noqa: BLE001 - a broken arch becomes error rows, the run goes on
            log.warning("arch %s: cannot be built (%s: %s)", idx, type(exc).__name__, exc)
            results = error_results(names, f"build failed: {type(exc).__name__}: {exc}", str(device))
        yield int(idx), to_table(space, int(idx), arch, seed, data_name, results, host)


def _iter_batched(
    space: "SearchSpace",
    ids: Sequence[int],
    metric_names: Sequence[str],
    batch: "Batch",
    seed: int,
    device: str,
    data_name: str | None,
    host: str | None,
    space_kwargs: Mapping[str, Any] | None,
    to_table: ToTable | None,
    arch_batch: int,
) -> Iterator[tuple[int, pa.Table]]:
    """:func:`iter_scored` with ``arch_batch`` archs per call of the batched engine."""
    from raynas.metrics.batched import compute_metrics_batched
    from raynas.metrics.registry import get_metric

    names = list(metric_names)
    for n in names:  # unknown names raise before any arch is scored, as the per-arch engine does
        get_metric(n)
    to_table = to_table or _default_to_table()
    kwargs = dict(space_kwargs or {})
    thin_kw = space.thin_kwargs()
    data_name = data_name if data_name is not None else batch.name
    host = host or socket.gethostname()
    for start in range(0, len(ids), arch_batch):
        group = [int(i) for i in ids[start:start + arch_batch]]
        archs: dict[int, Any] = {}
        results: dict[int, list[Any]] = {}
        for idx in group:
            try:
                archs[idx] = space.index_to_arch(idx)
            except Exception as exc:  # noqa: BLE001 - a broken arch becomes error rows, the run goes on
                log.warning("arch %s: cannot be built (%s: %s)", idx, type(exc).__name__, exc)
                results[idx] = error_results(names, f"build failed: {type(exc).__name__}: {exc}", str(device))
        todo = [i for i in group if i in archs]
        if todo:
            factories = [_factory(space, archs[i], batch.num_classes, kwargs) for i in todo]
            thins = ([_factory(space, archs[i], batch.num_classes, {**kwargs, **thin_kw}) for i in todo]
                     if thin_kw else None)
            try:
                scored = compute_metrics_batched(factories, batch, names, device=device, seed=seed,
                                                 thin_factories=thins)
            except UnknownNameError:
                raise
            except Exception as exc:  # noqa: BLE001 - the group's archs become error rows, the run goes on
                log.warning("archs %s: batched scoring failed (%s: %s)", todo, type(exc).__name__, exc)
                scored = [error_results(names, f"scoring failed: {type(exc).__name__}: {exc}", str(device))
                          for _ in todo]
            results.update(zip(todo, scored))
        for idx in group:
            yield idx, to_table(space, idx, archs.get(idx), seed, data_name, results[idx], host)


def _factory(space: "SearchSpace", arch: Any, num_classes: int, kwargs: Mapping[str, Any]) -> Callable[[], Any]:
    return lambda: space.to_module(arch, num_classes, **kwargs)


def failed_table(
    space: "SearchSpace",
    ids: Sequence[int],
    metric_names: Sequence[str],
    seed: int,
    data_name: str,
    error: str,
    host: str = "",
    to_table: ToTable | None = None,
) -> pa.Table:
    """``status="error"`` rows for every (arch, metric) of a shard that could not be scored at all."""
    to_table = to_table or _default_to_table()
    tables = []
    for idx in ids:
        try:
            arch = space.index_to_arch(int(idx))
        except (RaynasError, ValueError, IndexError):  # the row records the failure either way
            arch = None
        tables.append(to_table(space, int(idx), arch, seed, data_name, error_results(metric_names, error), host))
    return pa.concat_tables(tables)


def drop_done_rows(table: pa.Table, done_keys: Collection[tuple[int, str, int]]) -> pa.Table:
    """``table`` without the rows whose ``(arch_index, metric, seed)`` is already stored (no duplicates)."""
    if not done_keys or table.num_rows == 0:
        return table
    return table.filter(pc.invert(key_mask(table, done_keys)))


def count_errors(table: pa.Table) -> int:
    """Rows whose status is ``error`` (reported in run summaries)."""
    if table.num_rows == 0 or "status" not in table.column_names:
        return 0
    return int(pc.sum(pc.equal(table.column("status"), "error")).as_py() or 0)


def status_counts(table: pa.Table) -> dict[str, int]:
    """Rows per status (``ok``, ``nan``, ``error``, ``oom``) of ``table``."""
    if table.num_rows == 0 or "status" not in table.column_names:
        return {}
    counts = pc.value_counts(table.column("status")).to_pylist()
    return {str(c["values"]): int(c["counts"]) for c in counts}
