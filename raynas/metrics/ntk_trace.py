"""HNAS NTK trace norm: sqrt(trace(Theta) / B) of HNAS's one-backward NTK of the true-class logit."""

from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn as nn

from raynas.data.batch import Batch
from raynas.metrics._ntk import logits_of, per_sample_outputs, trace_norm_t, true_class_logit
from raynas.metrics._ntk_decomposed import capture_layer_calls, decomposed_ntk
from raynas.metrics.registry import register_metric

HNAS_REFERENCE = (
    "Shu, Dai, Wu, Low. Unifying and Boosting Gradient-Based Training-Free Neural Architecture Search. NeurIPS 2022 "
    "(shuyao95/HNAS, foresight/pruners/measures/ntk_trace.py and condnum.py)"
)


def hnas_ntk(model: nn.Module, batch: Batch) -> torch.Tensor:
    """``Theta [B, B]`` (float64) of HNAS: rows ``g_i`` from ONE backward of ``sum_i logits[i, y_i]``.

    ``g_i`` is sample ``i``'s share of that batch gradient for every conv/``nn.Linear`` weight and bias (layer
    input ``a_i`` times output gradient ``b_i``; :mod:`raynas.metrics._ntk_decomposed`); BN parameters excluded.
    """
    with capture_layer_calls(model) as calls:
        logits = logits_of(model, batch)
    return decomposed_ntk(calls, per_sample_outputs(logits, batch, true_class_logit))


def ntk_trace_reduce(shared: Mapping[str, Any], batch: Batch) -> torch.Tensor:
    """``sqrt(trace(Theta) / B)`` of the shared HNAS NTK ``shared["hnas_ntk"] [B, B]`` (0-dim float64)."""
    return trace_norm_t(shared["hnas_ntk"])


@register_metric(
    "ntk_trace",
    needs="labels", needs_why="HNAS's NTK of the true-class logit logits[i, y_i]",
    needs_labels=True,
    higher_is_better=True,
    reference=HNAS_REFERENCE,
    pass_kind="ntk",
    uses=("hnas_ntk",),
    reduce=ntk_trace_reduce,
)
def ntk_trace(model: nn.Module, batch: Batch) -> float:
    """sqrt(trace(Theta) / B) of HNAS's NTK (Shu et al. 2022), exactly as their code computes it.

    One train-mode forward of ``inputs [B, C, H, W]``, ONE backward of ``sum_i f(x_i)[y_i]``, per-sample rows
    ``g_i`` of every Conv2d/Linear weight and bias read off that backward (HNAS's ``autograd_hacks``), ``Theta =
    G G^T [B, B]`` in float64 (the reference: float32). ``trace(Theta) / B`` is the mean squared row norm (higher
    is better). ``ntk_trace_jacobian`` is the same statistic of the per-sample Jacobian (``B`` backward passes).
    """
    return float(ntk_trace_reduce({"hnas_ntk": hnas_ntk(model, batch)}, batch))
