"""TE-NAS NTK condition number: NTK of the summed logits w.r.t. every ``*weight`` parameter (BN included)."""

from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn as nn

from raynas.data.batch import Batch
from raynas.metrics._ntk import condition_number_t, logit_sum, ntk, weight_params
from raynas.metrics.registry import register_metric


def tenas_ntk_cond_reduce(shared: Mapping[str, Any], batch: Batch) -> torch.Tensor:
    """``lambda_max / lambda_min`` of the shared TE-NAS NTK ``shared["tenas_ntk"] [B, B]`` (0-dim float64)."""
    return condition_number_t(shared["tenas_ntk"])


@register_metric(
    "tenas_ntk_cond",
    needs="nothing",
    needs_labels=False,
    higher_is_better=False,
    pass_kind="ntk",
    uses=("tenas_ntk",),
    reduce=tenas_ntk_cond_reduce,
    reference=(
        "Chen, Gong, Wang. Neural Architecture Search on ImageNet in Four GPU Hours: "
        "A Theoretically Inspired Perspective (TE-NAS). ICLR 2021"
    ),
)
def tenas_ntk_cond(model: nn.Module, batch: Batch) -> float:
    """lambda_max / lambda_min of the TE-NAS NTK (Chen et al. 2021).

    ``g_i = d (sum_k logits[i, k]) / d theta`` with ``theta`` = every parameter whose name ends with ``"weight"``
    (conv, linear AND BatchNorm weights; biases excluded), from one batch forward over ``inputs [B, C, H, W]``;
    ``Theta = G G^T [B, B]`` in float64, eigenvalues by ``eigvalsh``; singular -> ``inf``. Labels are not used.
    Differs from HNAS's ``ntk_cond`` in the output (all logits vs the true-class logit) and the parameters.
    """
    theta = ntk(model, batch, logit_sum, weight_params(model))
    return float(tenas_ntk_cond_reduce({"tenas_ntk": theta}, batch))
