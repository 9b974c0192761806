"""The batched scoring engine: K architectures with independent weights scored in ONE stacked network.

See :mod:`raynas.metrics.batched.engine`. Importing this package registers no metric.
"""

from __future__ import annotations

from raynas.metrics.batched.engine import BATCHED_METRICS, batched_names, compute_metrics_batched, per_arch_metrics

__all__ = ["BATCHED_METRICS", "batched_names", "compute_metrics_batched", "per_arch_metrics"]
