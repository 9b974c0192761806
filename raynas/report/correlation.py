"""Rank correlation of metric scores with ground-truth accuracy (pure numpy/scipy).

Published reference values (e.g. NAS-Bench-Suite-Zero's rho per proxy) belong to a benchmark
(:attr:`raynas.spaces.benchmarks.Benchmark.published_rho`); callers pass them to :func:`correlate`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np
from scipy.stats import kendalltau, spearmanr

@dataclass(frozen=True)
class Correlation:
    """Correlation of one metric: ``rho``/``tau`` are signed so that positive means "predicts accuracy" when the
    metric is used in its registered direction; ``n`` counts archs with a finite score."""

    metric: str
    n: int
    rho: float
    tau: float
    published: float | None


def correlate(
    scores: dict[str, np.ndarray], accuracy: np.ndarray, higher_is_better: dict[str, bool] | None = None,
    published: Mapping[str, float] | None = None,
) -> list[Correlation]:
    """Spearman rho and Kendall tau of each metric vs ``accuracy``.

    Args:
        scores: metric name -> float array ``[P]`` (NaN where the metric failed).
        accuracy: float array ``[P]`` aligned with every score array.
        higher_is_better: metric direction; lower-is-better metrics are negated before correlating.
        published: metric name -> a published rho to compare with (a benchmark's ``published_rho``); None: none.
    """
    published = published or {}
    out = []
    for name, values in scores.items():
        v = np.asarray(values, dtype=float)
        if higher_is_better is not None and not higher_is_better.get(name, True):
            v = -v
        ok = np.isfinite(v) & np.isfinite(accuracy)
        if ok.sum() < 3 or np.ptp(v[ok]) == 0:
            rho = tau = float("nan")
        else:
            rho = float(spearmanr(v[ok], accuracy[ok]).statistic)
            tau = float(kendalltau(v[ok], accuracy[ok]).statistic)
        out.append(Correlation(name, int(ok.sum()), rho, tau, published.get(name)))
    return out


def format_table(rows: list[Correlation], published: bool = True) -> str:
    """A Markdown table: metric, n, rho, tau and, with ``published``, the NAS-Bench-Suite-Zero rho and the
    difference (only meaningful when the accuracy is the one the published values were measured against)."""
    head = "| metric | n | spearman rho | kendall tau |"
    rule = "|---|---:|---:|---:|"
    if published:
        head, rule = head + " published rho | diff |", rule + "---:|---:|"
    lines = [head, rule]
    for r in sorted(rows, key=lambda r: -np.nan_to_num(r.rho, nan=-9)):
        line = f"| {r.metric} | {r.n} | {r.rho:.3f} | {r.tau:.3f} |"
        if published:
            pub = f"{r.published:.2f}" if r.published is not None else "-"
            diff = f"{r.rho - r.published:+.3f}" if r.published is not None and np.isfinite(r.rho) else "-"
            line += f" {pub} | {diff} |"
        lines.append(line)
    return "\n".join(lines)
