"""NTK trace norm of the per-sample Jacobian: sqrt(trace(Theta) / B), rows d f(x_i)[y_i] / d theta (B backwards)."""

from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn as nn

from raynas.data.batch import Batch
from raynas.metrics._ntk import conv_linear_params, ntk, trace_norm_t, true_class_logit
from raynas.metrics.ntk_trace import HNAS_REFERENCE
from raynas.metrics.registry import register_metric


def jacobian_ntk(model: nn.Module, batch: Batch) -> torch.Tensor:
    """``Theta [B, B]`` (float64): ``Theta_ij = g_i . g_j``, ``g_i = d logits[i, y_i] / d theta``.

    ``theta`` = weights and biases of every conv and ``nn.Linear`` module (BatchNorm affine parameters are not
    included). Gradients come from one batch forward (BN in train mode couples the samples) and ``B`` backward
    passes.
    """
    return ntk(model, batch, true_class_logit, conv_linear_params(model))


def ntk_trace_jacobian_reduce(shared: Mapping[str, Any], batch: Batch) -> torch.Tensor:
    """``sqrt(trace(Theta) / B)`` of ``shared["hnas_jacobian_ntk"] [B, B]`` (0-dim float64)."""
    return trace_norm_t(shared["hnas_jacobian_ntk"])


@register_metric(
    "ntk_trace_jacobian",
    variant_of="ntk_trace",  # a raynas-only diagnostic twin: opt-in (group "diagnostic"), not in "all"
    needs="labels", needs_why="the NTK of the true-class logit logits[i, y_i]",
    needs_labels=True,
    higher_is_better=True,
    reference=HNAS_REFERENCE + "; raynas variant: the per-sample Jacobian instead of the one-backward rows",
    pass_kind="ntk",
    uses=("hnas_jacobian_ntk",),
    reduce=ntk_trace_jacobian_reduce,
)
def ntk_trace_jacobian(model: nn.Module, batch: Batch) -> float:
    """sqrt(trace(Theta) / B) of the empirical NTK of the true-class logit, rows = per-sample Jacobians.

    ``g_i = d f_{y_i}(x_i) / d theta`` through the train-mode batch graph (``B`` backward passes), ``theta`` = all
    conv/linear weights and biases; ``Theta = G G^T [B, B]`` in float64. Why a separate name: HNAS's code
    (``ntk_trace``) takes sample ``i``'s share of ONE batch backward instead, which differs from this Jacobian
    when BatchNorm couples the samples (``ntk_cond`` 23.3 vs 1165 on NAS-Bench-201 index 0); in eval mode both agree.
    This is the textbook empirical NTK; it costs ``B`` backward passes per architecture.
    """
    return float(ntk_trace_jacobian_reduce({"hnas_jacobian_ntk": jacobian_ntk(model, batch)}, batch))
