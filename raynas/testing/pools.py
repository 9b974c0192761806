"""Synthetic scored pools with known ground truth, for searches (RoBoT, HNAS, baselines) that read a table.

A pool table maps column names to arrays: ``arch_index`` plus one column per metric; the paired ``acc`` array
is the accuracy a search should find the best of. Built from a seeded generator, never from a benchmark file.
"""

from __future__ import annotations

import numpy as np


def synthetic_pool_table(n: int = 200, seed: int = 0) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """``(table, acc)`` for ``n`` archs with indices ``3 * i + 1`` (non-contiguous on purpose).

    Columns: ``good`` = 2 * acc + 5 (ranks archs exactly like acc), ``bad`` = -acc (exactly reversed),
    ``noise`` ~ N(0, 1) (unrelated). ``acc`` [n] are distinct values in [60, 90). The best weights are any
    ``w`` with ``w_good - w_bad`` large against ``|w_noise|``; single metric ``good`` finds the optimum at once.
    """
    rng = np.random.default_rng(seed)
    acc = 60.0 + 30.0 * rng.permutation(n) / n
    table = {
        "arch_index": 3 * np.arange(n, dtype=np.int64) + 1,
        "good": 2.0 * acc + 5.0,
        "bad": -acc,
        "noise": rng.normal(size=n),
    }
    return table, acc


def hnas_pool_table(  # type: ignore[no-untyped-def]
    n: int = 60, seed: int = 0, kind: str = "target", metric: str = "ntk_trace"
):
    """``(table, acc)``: ``n`` archs (indices ``2 * i + 7``) with columns ``metric`` and ``ntk_cond``.

    ``kind="target"``: ``M`` evenly spread over ``[1, 10]``, ``kappa = 1e-6``, ``acc = 90 - 3 * |M - 6|``: the arch
    closest to ``M = 6`` is best and is ``A*`` exactly for ``t`` near ``0.6`` (scale = max M = 10), whatever ``c``.
    ``kind="kappa"``: ``M`` in ``[5, 6]``, ``kappa`` spread over ``[1, 100]``, ``acc = 90 - kappa / M``: the best arch
    minimises ``kappa / M``, picked for every ``t`` at ``c = -4`` (first term <= 3.6e-3, below the kappa/M gaps).
    """
    rng = np.random.default_rng(seed)
    idx = 2 * np.arange(n, dtype=np.int64) + 7
    if kind == "target":
        M = rng.permutation(np.linspace(1.0, 10.0, n))
        kappa = np.full(n, 1e-6)
        acc = 90.0 - 3.0 * np.abs(M - 6.0)
    elif kind == "kappa":
        M = rng.uniform(5.0, 6.0, n)
        kappa = rng.permutation(np.linspace(1.0, 100.0, n))
        acc = 90.0 - kappa / M
    else:
        raise ValueError(f"unknown kind {kind!r}")
    return {"arch_index": idx, metric: M, "ntk_cond": kappa}, acc
