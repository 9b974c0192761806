"""Matplotlib PNG plots of a run (headless Agg backend; one function per figure)."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import Any, Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # headless: never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from raynas.report.correlation import Correlation  # noqa: E402


def _scale_axis(ax: plt.Axes, x: np.ndarray) -> str:
    """Heavy-tailed metrics (synflow, grasp, ntk_cond) are unreadable on a linear axis: log when every value
    is positive, symlog (linear only below the smallest non-zero magnitude) when zeros or both signs occur.
    Returns the scale set (``"linear"``, ``"log"`` or ``"symlog"``)."""
    mag = np.abs(x[x != 0])
    if mag.size == 0 or mag.max() / mag.min() <= 1e3:
        return "linear"
    if np.all(x > 0):
        ax.set_xscale("log")
    else:
        ax.set_xscale("symlog", linthresh=float(np.quantile(mag, 0.01)))
    ax.xaxis.get_major_locator().set_params(numticks=5)  # dozens of decades would overprint their labels
    ax.xaxis.set_minor_locator(plt.NullLocator())
    return ax.get_xscale()


def metric_axis_label(name: str, scale: str = "linear") -> str:
    """x label of a metric scatter: the metric's score, and the scale when it is not linear (a log axis read
    as linear misleads by orders of magnitude)."""
    return f"{name} score" + (f" ({scale} scale)" if scale != "linear" else "")


def query_axis_label(result: Mapping[str, Any] | None, base: str = "query value") -> str:
    """y label of a search trace: ``"query value: <what the oracle measures>"`` from the result's
    ``query_label`` (set by the search from its oracle), or just ``base`` when the result does not say."""
    label = result.get("query_label") if result else None
    return f"{base}: {label}" if isinstance(label, str) and label else base


def scatter_metrics(
    scores: dict[str, np.ndarray], accuracy: np.ndarray, corr: Sequence[Correlation], path: Path, acc_label: str
) -> Path:
    """Grid of metric-vs-accuracy scatter plots, rho in each title. ``scores[m]`` and ``accuracy`` are ``[P]``."""
    fig = scatter_figure(scores, accuracy, corr, acc_label)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def scatter_figure(
    scores: dict[str, np.ndarray], accuracy: np.ndarray, corr: Sequence[Correlation], acc_label: str
) -> plt.Figure:
    """The figure of :func:`scatter_metrics` (not saved, not closed): every panel labels both axes."""
    names = list(scores)
    cols = min(4, max(1, len(names)))
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.0 * rows), squeeze=False)
    by_name = {c.metric: c for c in corr}
    for ax, name in zip(axes.flat, names):
        v = np.asarray(scores[name], dtype=float)
        ok = np.isfinite(v) & np.isfinite(accuracy)
        x = v[ok]
        scale = _scale_axis(ax, x)
        ax.scatter(x, accuracy[ok], s=4, alpha=0.5)
        c = by_name.get(name)
        rho = f"rho={c.rho:.3f}" if c is not None and np.isfinite(c.rho) else "rho=n/a"
        ax.set_title(f"{name} ({rho}, n={int(ok.sum())})", fontsize=9)
        ax.set_xlabel(metric_axis_label(name, scale), fontsize=8)
        ax.set_ylabel(acc_label, fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    fig.tight_layout()
    return fig


def search_trace(
    steps: np.ndarray, values: np.ndarray, cost: np.ndarray, path: Path, label: str, optimum: float | None = None,
    query_label: str | None = None,
) -> Path:
    """Best-so-far query value vs number of queries and vs cumulative cost (two panels).

    The y axis reads ``"<label>: <query_label>"`` (e.g. ``"query value: 12-epoch validation accuracy (%) on
    CIFAR-10"``) when ``query_label`` (the result's ``query_label``, see :func:`query_axis_label`) says what the
    oracle measures, else ``label``.
    """
    fig = search_trace_figure(steps, values, cost, label, optimum, query_label)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def search_trace_figure(
    steps: np.ndarray, values: np.ndarray, cost: np.ndarray, label: str, optimum: float | None = None,
    query_label: str | None = None,
) -> plt.Figure:
    """The figure of :func:`search_trace` (not saved, not closed)."""
    ylabel = query_axis_label({"query_label": query_label}, label)
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
        # a long label (e.g. "query value: validation accuracy (%) on digits after 3 epochs ...") is wrapped to
        # the panel's height instead of running off the figure
        ax.set_ylabel(textwrap.fill(ylabel, 42), fontsize=8 if len(ylabel) > 40 else None)
    fig.suptitle("search trace (queries and best so far)")
    fig.tight_layout()
    return fig


def weight_trace(weights: np.ndarray, names: Sequence[str], path: Path) -> Path:
    """A search's weights ``[steps, K]`` over its steps, one line per named entry (RoBoT's metric-combination
    weights in ``[-1, 1]``, LinUCB's posterior mean, HNAS's ``(t, c)``)."""
    fig, ax = plt.subplots(figsize=(7, 3.4))
    for k, name in enumerate(names):
        ax.plot(np.arange(1, len(weights) + 1), weights[:, k], marker="o", ms=3, label=name)
    ax.axhline(0, c="gray", lw=0.6)
    ax.set_xlabel("step")
    ax.set_ylabel("weight")
    if np.all(np.abs(weights) <= 1):  # RoBoT's box: keep its frame
        ax.set_ylim(-1.05, 1.05)
    ax.legend(fontsize=7, ncol=3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
