"""Matplotlib PNG plots of a run (headless Agg backend; one function per figure)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")  # headless: never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from raynas.report.correlation import Correlation  # noqa: E402


def _scale_axis(ax: plt.Axes, x: np.ndarray) -> None:
    """Heavy-tailed metrics (synflow, grasp, ntk_cond) are unreadable on a linear axis: log when every value
    is positive, symlog (linear only below the smallest non-zero magnitude) when zeros or both signs occur."""
    mag = np.abs(x[x != 0])
    if mag.size == 0 or mag.max() / mag.min() <= 1e3:
        return
    if np.all(x > 0):
        ax.set_xscale("log")
    else:
        ax.set_xscale("symlog", linthresh=float(np.quantile(mag, 0.01)))
    ax.xaxis.get_major_locator().set_params(numticks=5)  # dozens of decades would overprint their labels
    ax.xaxis.set_minor_locator(plt.NullLocator())


def scatter_metrics(
    scores: dict[str, np.ndarray], accuracy: np.ndarray, corr: Sequence[Correlation], path: Path, acc_label: str
) -> Path:
    """Grid of metric-vs-accuracy scatter plots, rho in each title. ``scores[m]`` and ``accuracy`` are ``[P]``."""
    names = list(scores)
    cols = min(4, max(1, len(names)))
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.0 * rows), squeeze=False)
    by_name = {c.metric: c for c in corr}
    for ax, name in zip(axes.flat, names):
        v = np.asarray(scores[name], dtype=float)
        ok = np.isfinite(v) & np.isfinite(accuracy)
        x = v[ok]
        _scale_axis(ax, x)
        ax.scatter(x, accuracy[ok], s=4, alpha=0.5)
        c = by_name.get(name)
        rho = f"rho={c.rho:.3f}" if c is not None and np.isfinite(c.rho) else "rho=n/a"
        ax.set_title(f"{name} ({rho}, n={int(ok.sum())})", fontsize=9)
        ax.set_ylabel(acc_label, fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def search_trace(
    steps: np.ndarray, values: np.ndarray, cost: np.ndarray, path: Path, label: str, optimum: float | None = None
) -> Path:
    """Best-so-far query value vs number of queries and vs cumulative cost (two panels)."""
    best = np.maximum.accumulate(np.where(np.isfinite(values), values, -np.inf))
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.4))
    a.step(steps, best, where="post", label="best so far")
    b.step(cost, best, where="post", label="best so far")
    a.scatter(steps, values, s=10, c="C1", zorder=3, label="query")
    b.scatter(cost, values, s=10, c="C1", zorder=3, label="query")
    for ax, xl in ((a, "queries"), (b, "cumulative cost (s)")):
        if optimum is not None:
            ax.axhline(optimum, ls="--", c="gray", lw=0.8, label="pool optimum")
        ax.legend(fontsize=8)
        ax.set_xlabel(xl)
        ax.set_ylabel(f"best {label}")
    fig.suptitle("search trace (best so far)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def weight_trace(weights: np.ndarray, names: Sequence[str], path: Path) -> Path:
    """Metric-combination weights ``[steps, K]`` over BO steps, one line per metric."""
    fig, ax = plt.subplots(figsize=(7, 3.4))
    for k, name in enumerate(names):
        ax.plot(np.arange(1, len(weights) + 1), weights[:, k], marker="o", ms=3, label=name)
    ax.axhline(0, c="gray", lw=0.6)
    ax.set_xlabel("BO step")
    ax.set_ylabel("weight")
    ax.set_ylim(-1.05, 1.05)
    ax.legend(fontsize=7, ncol=3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
