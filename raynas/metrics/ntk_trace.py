"""HNAS NTK trace norm: sqrt(trace(Theta) / B) of the true-class-logit NTK."""

from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn as nn

from raynas.data.batch import Batch
from raynas.metrics._ntk import conv_linear_params, ntk, trace_norm_t, true_class_logit
from raynas.metrics.registry import register_metric

HNAS_REFERENCE = (
    "Shu, Dai, Wu, Low. Unifying and Boosting Gradient-Based Training-Free Neural Architecture Search. NeurIPS 2022"
)


def hnas_ntk(model: nn.Module, batch: Batch) -> torch.Tensor:
    """``Theta [B, B]`` (float64): ``Theta_ij = g_i . g_j``, ``g_i = d logits[i, y_i] / d theta``.

    ``theta`` = weights and biases of every conv and ``nn.Linear`` module (BatchNorm affine parameters are not
    included). Gradients come from one batch forward (BN in train mode couples the samples) and ``B`` backward
    passes.
    """
    return ntk(model, batch, true_class_logit, conv_linear_params(model))


def ntk_trace_reduce(shared: Mapping[str, Any], batch: Batch) -> torch.Tensor:
    """``sqrt(trace(Theta) / B)`` of the shared HNAS NTK ``shared["hnas_ntk"] [B, B]`` (0-dim float64)."""
    return trace_norm_t(shared["hnas_ntk"])


@register_metric(
    "ntk_trace",
    needs_labels=True,
    higher_is_better=True,
    reference=HNAS_REFERENCE,
    pass_kind="ntk",
    uses=("hnas_ntk",),
    reduce=ntk_trace_reduce,
)
def ntk_trace(model: nn.Module, batch: Batch) -> float:
    """sqrt(trace(Theta) / B) of the HNAS NTK of the true-class logit (Shu et al. 2022).

    ``g_i = d f_{y_i}(x_i) / d theta`` for ``inputs [B, C, H, W]`` and labels ``y [B]``, ``theta`` = all conv/linear
    weights and biases; ``Theta = G G^T [B, B]`` in float64. ``trace(Theta) / B`` is the mean squared per-sample
    gradient norm, so the score ranks like ``grad_norm`` (higher is better).
    """
    return float(ntk_trace_reduce({"hnas_ntk": hnas_ntk(model, batch)}, batch))
