"""HNAS NTK condition number: lambda_max / lambda_min of HNAS's one-backward NTK of the true-class logit."""

from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn as nn

from raynas.data.batch import Batch
from raynas.metrics._ntk import condition_number_t
from raynas.metrics.ntk_trace import HNAS_REFERENCE, hnas_ntk
from raynas.metrics.registry import register_metric


def ntk_cond_reduce(shared: Mapping[str, Any], batch: Batch) -> torch.Tensor:
    """``lambda_max / lambda_min`` of the shared HNAS NTK ``shared["hnas_ntk"] [B, B]`` (0-dim float64)."""
    return condition_number_t(shared["hnas_ntk"])


@register_metric(
    "ntk_cond",
    needs="labels", needs_why="HNAS's NTK of the true-class logit logits[i, y_i]",
    needs_labels=True,
    higher_is_better=False,
    reference=HNAS_REFERENCE,
    pass_kind="ntk",
    uses=("hnas_ntk",),
    reduce=ntk_cond_reduce,
)
def ntk_cond(model: nn.Module, batch: Batch) -> float:
    """lambda_max(Theta) / lambda_min(Theta) of HNAS's NTK (Shu et al. 2022; their ``condnum`` measure).

    Same ``Theta [B, B]`` as ``ntk_trace`` (one backward, per-sample rows of every Conv2d/Linear weight and
    bias). Eigenvalues by ``eigvalsh`` in float64; a singular NTK (``lambda_min`` at rounding level, e.g. ``B``
    larger than the number of parameters) gives ``inf``, recorded as status ``nan``, where the reference's
    float32 eigenvalues give a rounding-noise ratio (or its NaN fallback, 100000). Lower is better.
    """
    return float(ntk_cond_reduce({"hnas_ntk": hnas_ntk(model, batch)}, batch))
