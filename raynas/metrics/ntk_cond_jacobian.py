"""NTK condition number of the per-sample Jacobian: lambda_max / lambda_min, rows d f(x_i)[y_i] / d theta."""

from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn as nn

from raynas.data.batch import Batch
from raynas.metrics._ntk import condition_number_t
from raynas.metrics.ntk_trace import HNAS_REFERENCE
from raynas.metrics.ntk_trace_jacobian import jacobian_ntk
from raynas.metrics.registry import register_metric


def ntk_cond_jacobian_reduce(shared: Mapping[str, Any], batch: Batch) -> torch.Tensor:
    """``lambda_max / lambda_min`` of ``shared["hnas_jacobian_ntk"] [B, B]`` (0-dim float64)."""
    return condition_number_t(shared["hnas_jacobian_ntk"])


@register_metric(
    "ntk_cond_jacobian",
    variant_of="ntk_cond",  # a raynas-only diagnostic twin: opt-in (group "diagnostic"), not in "all"
    needs="labels", needs_why="the NTK of the true-class logit logits[i, y_i]",
    needs_labels=True,
    higher_is_better=False,
    reference=HNAS_REFERENCE + "; raynas variant: the per-sample Jacobian instead of the one-backward rows",
    pass_kind="ntk",
    uses=("hnas_jacobian_ntk",),
    reduce=ntk_cond_jacobian_reduce,
)
def ntk_cond_jacobian(model: nn.Module, batch: Batch) -> float:
    """lambda_max(Theta) / lambda_min(Theta) of the per-sample-Jacobian NTK (see ``ntk_trace_jacobian``).

    Same ``Theta [B, B]`` (float64) as ``ntk_trace_jacobian``; ``inf`` (status ``nan``) when singular. Lower is
    better. HNAS's own condition number, from one backward pass, is ``ntk_cond``.
    """
    return float(ntk_cond_jacobian_reduce({"hnas_jacobian_ntk": jacobian_ntk(model, batch)}, batch))
