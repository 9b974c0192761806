"""HNAS NTK condition number: lambda_max / lambda_min of the true-class-logit NTK."""

from __future__ import annotations

import torch.nn as nn

from raynas.data.batch import Batch
from raynas.metrics._ntk import condition_number
from raynas.metrics.ntk_trace import HNAS_REFERENCE, hnas_ntk
from raynas.metrics.registry import register_metric


@register_metric("ntk_cond", needs_labels=True, higher_is_better=False, reference=HNAS_REFERENCE)
def ntk_cond(model: nn.Module, batch: Batch) -> float:
    """lambda_max(Theta) / lambda_min(Theta) of the HNAS NTK of the true-class logit (Shu et al. 2022).

    Same ``Theta [B, B]`` (float64) as ``ntk_trace``: per-sample gradients of ``f_{y_i}(x_i)`` w.r.t. all conv/linear
    weights and biases, from one batch forward. Eigenvalues by ``eigvalsh``; a singular NTK (``lambda_min <= 0``,
    e.g. ``B`` larger than the number of parameters) gives ``inf``. Lower is better.
    """
    return condition_number(hnas_ntk(model, batch))
