"""Score runs for tests: hand-made planned runs, a tiny real scoring config, and checks on a run directory.

:func:`planned_score_run` writes a complete run without scoring anything (for report, search and CLI tests);
:func:`tiny_score_config` is a real but seconds-long run of the default space at its smallest (C=4, N=1 cell
networks on an 8x8 digits batch of 8, three cheap metrics); :func:`score_rows` and :func:`assert_complete`
check that a run directory holds every expected (arch, metric, seed) row exactly once.
"""

from __future__ import annotations

import pyarrow as pa

from raynas.parallel.config import ScoreConfig
from raynas.spaces import DEFAULT_SPACE
from raynas.store import open_store, results_to_table
from raynas.testing.metrics import metric_results


def planned_score_run(  # type: ignore[no-untyped-def]
    run, ids, values, *, shard_size: int = 2, data: str = "digits", status=None
):
    """A complete score run of the default space written by hand into ``run``: the real scoring config planning
    ``ids`` in shards of ``shard_size`` (so completeness checks see a plan), and each arch's rows from
    ``values(arch) -> {metric: value}`` (``status(arch) -> {metric: status}`` or None marks rows failed).
    Returns ``run``."""
    store = open_store(run)
    metrics = tuple(values(ids[0]))
    store.save_config(ScoreConfig(out=str(run), space=DEFAULT_SPACE, metrics=metrics, ids=tuple(ids),
                                  shard_size=shard_size, workers=0).resolved())
    for sid, start in enumerate(range(0, len(ids), shard_size)):
        store.write_shard(sid, pa.concat_tables([
            results_to_table(DEFAULT_SPACE, a, f"arch{a}", 0, data,
                             metric_results(values(a), status(a) if status else None), "h")
            for a in ids[start:start + shard_size]]))
    return run


#: the metrics of :func:`tiny_score_config`: cheap, and one each of the data-free, gradient and activation kinds
TINY_METRICS = ("params", "grad_norm", "naswot")


def tiny_score_config(out, **overrides):  # type: ignore[no-untyped-def]
    """A plain ``ScoreConfig`` dict for a fast run into ``out`` (6 archs, 1 per shard, in-process by default)."""
    cfg = {
        "out": str(out), "space": DEFAULT_SPACE, "metrics": list(TINY_METRICS), "sample": 6, "seed": 0,
        "data": "digits", "batch_size": 8, "image_size": 8, "space_kwargs": {"C": 4, "N": 1},
        "shard_size": 1, "workers": 0,
    }
    cfg.update(overrides)
    return cfg


def score_rows(out):  # type: ignore[no-untyped-def]
    """``[(arch_index, metric, seed, value, status)]`` of a run directory, sorted (order-free comparison)."""
    t = open_store(out).read(["arch_index", "metric", "seed", "value", "status"])
    return sorted(zip(*(t.column(c).to_pylist() for c in t.column_names)), key=lambda r: (r[0], r[1], r[2]))


def assert_complete(out, ids, metrics=TINY_METRICS, seed=0):  # type: ignore[no-untyped-def]
    """Every ``(id, metric, seed)`` is stored exactly once (no lost and no duplicated rows)."""
    keys = [(a, m, s) for a, m, s, _v, _st in score_rows(out)]
    dup = sorted({k for k in keys if keys.count(k) > 1})
    if dup:
        raise AssertionError(f"duplicated rows: {dup[:5]}")
    want = {(int(i), m, seed) for i in ids for m in metrics}
    if set(keys) != want:
        raise AssertionError(f"missing {sorted(want - set(keys))[:5]}, unexpected {sorted(set(keys) - want)[:5]}")
