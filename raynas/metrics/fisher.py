"""fisher: the zero-cost proxy of Abdelfattah et al. (zero-cost-nas), each channel's Fisher value per weight."""

from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn as nn

from raynas.data.batch import Batch
from raynas.metrics._fisher import channel_estimates, layer_outputs_and_grads
from raynas.metrics._layers import LayerOutput
from raynas.metrics.registry import register_metric


def fisher_score(acts: list[LayerOutput], grads: list[torch.Tensor]) -> torch.Tensor:
    """``sum_layers fan_in(layer) * sum_channels 0.5 * mean_b (sum_{h,w} a ⊙ g)^2`` (0-dim float64).

    ``fan_in`` is the number of weights of one output channel, ``weight[0].numel()`` (``C_in/groups * kh * kw``
    for a conv, ``in_features`` for a Linear).
    """
    total = torch.zeros((), dtype=torch.float64)
    for module, est in channel_estimates(acts, grads):
        total = total.to(est.device) + est.sum().to(torch.float64) * module.weight[0].numel()
    return total


def fisher_reduce(shared: Mapping[str, Any], batch: Batch) -> torch.Tensor:
    """fisher (0-dim float64) of ``shared["fisher"] = (layer outputs, dL/d outputs)`` from the loss pass."""
    acts, grads = shared["fisher"]
    return fisher_score(acts, grads)


@register_metric(
    "fisher",
    needs="loss",
    batchable=True,
    needs_labels=True,
    higher_is_better=True,
    pass_kind="loss",
    uses=("fisher",),
    reduce=fisher_reduce,
    reference="Abdelfattah, Mehrotra, Dudziak, Lane. Zero-Cost Proxies for Lightweight NAS. ICLR 2021 "
    "(SamsungLabs/zero-cost-nas, foresight/pruners/measures/fisher.py; saliency of Turner et al., ICLR 2020)",
)
def fisher(model: nn.Module, batch: Batch) -> float:
    """zero-cost-nas's fisher: per-channel Fisher estimates, each broadcast over the channel's weights, summed.

    For every call of an ``nn.Conv2d`` (output ``a [B, C, H, W]``) or ``nn.Linear`` (``a [B, ..., C]``),
    ``g = dL/da`` with ``L`` the mean cross-entropy on the whole batch (train mode, BN kept; ``a`` is the raw
    layer output, before BN/ReLU). Channel ``k``'s estimate ``0.5 * mean_b (sum_{h,w} a_k g_k)^2`` is given to
    each of the channel's ``weight[0].numel()`` weights, as the reference does to fit its per-weight API, and
    the score sums over all weights: ``sum_layers fan_in * sum_channels estimate``. This is the fisher of
    zero-cost-nas, NAS-Bench-Suite-Zero and RoBoT; ``fisher_channel`` counts each channel once.
    """
    acts, grads = layer_outputs_and_grads(model, batch)
    return float(fisher_score(acts, grads))
