"""Training-free metrics. Importing this package registers every metric module."""

from __future__ import annotations

import importlib
import pkgutil

from raynas.metrics.registry import (
    METRICS, MetricSpec, get_metric, list_metrics, not_applicable_reasons, register_metric, resolve_metric_names,
)

_SKIP = {"registry", "engine", "fused", "common"}

for _m in pkgutil.iter_modules(__path__):
    if not _m.name.startswith("_") and _m.name not in _SKIP:
        importlib.import_module(f"{__name__}.{_m.name}")

__all__ = ["METRICS", "MetricSpec", "get_metric", "list_metrics", "not_applicable_reasons", "register_metric",
           "resolve_metric_names"]
