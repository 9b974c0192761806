"""Metric results made by hand, for store, report and search tests that need rows without scoring a network."""

from __future__ import annotations

from raynas.metrics.engine import MetricResult


def metric_results(values: dict, status: dict | None = None, device: str = "cpu"):  # type: ignore[no-untyped-def]
    """``MetricResult`` list from ``{metric: value}``; ``status`` overrides per metric (value then None)."""
    status = status or {}
    out = []
    for m, v in values.items():
        s = status.get(m, "ok")
        out.append(MetricResult(m, v if s == "ok" else None, s, "" if s == "ok" else f"{m} failed", 0.5, device))
    return out
