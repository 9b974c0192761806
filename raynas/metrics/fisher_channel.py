"""fisher_channel: the BlockSwap channel-saliency estimate summed once per Conv2d/Linear output channel."""

from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn as nn

from raynas.data.batch import Batch
from raynas.metrics._fisher import channel_estimates, layer_outputs_and_grads
from raynas.metrics._layers import LayerOutput
from raynas.metrics.registry import register_metric


def channel_fisher_score(acts: list[LayerOutput], grads: list[torch.Tensor]) -> torch.Tensor:
    """``sum_layers sum_channels 0.5 * mean_b (sum_{h,w} a ⊙ g)^2`` (0-dim float64)."""
    total = torch.zeros((), dtype=torch.float64)
    for _, est in channel_estimates(acts, grads):
        total = total.to(est.device) + est.sum().to(torch.float64)
    return total


def fisher_channel_reduce(shared: Mapping[str, Any], batch: Batch) -> torch.Tensor:
    """fisher_channel (0-dim float64) of ``shared["fisher"] = (layer outputs, dL/d outputs)``."""
    acts, grads = shared["fisher"]
    return channel_fisher_score(acts, grads)


@register_metric(
    "fisher_channel",
    needs="loss",
    needs_labels=True,
    higher_is_better=True,
    pass_kind="loss",
    uses=("fisher",),
    reduce=fisher_channel_reduce,
    reference="Turner, Crowley, O'Boyle, Storkey, Gray. BlockSwap: Fisher-guided Block Substitution for Network "
    "Compression on a Budget. ICLR 2020 (per-channel sum; raynas variant, see docstring)",
)
def fisher_channel(model: nn.Module, batch: Batch) -> float:
    """``sum_layers sum_channels 0.5 * mean_b (sum_{h,w} a ⊙ g)^2``: each output channel counted once.

    For every call of an ``nn.Conv2d`` (output ``a [B, C, H, W]``) or ``nn.Linear`` (``a [B, ..., C]``),
    ``g = dL/da`` with ``L`` the mean cross-entropy on the whole batch (train mode, BN kept).

    Why a separate name: this is the BlockSwap saliency as the paper writes it, one term per channel. The
    zero-cost proxy everybody compares against (zero-cost-nas, NAS-Bench-Suite-Zero, RoBoT) broadcasts each
    channel's value over all ``C_in * kh * kw`` weights of that channel before summing: that is ``fisher``.
    The two differ by a per-layer factor, so their ranks of architectures differ (Spearman 0.87 on 12 NAS-Bench-201 archs).
    """
    acts, grads = layer_outputs_and_grads(model, batch)
    return float(channel_fisher_score(acts, grads))
