"""SNIP: connection sensitivity summed over all weights."""

from __future__ import annotations

import torch.nn as nn

from raynas.data.batch import Batch
from raynas.metrics._layers import cross_entropy, grads_or_zeros, layer_weights
from raynas.metrics.registry import register_metric


@register_metric(
    "snip",
    needs_labels=True,
    higher_is_better=True,
    reference="Lee, Ajanthan, Torr. SNIP: Single-shot Network Pruning based on Connection Sensitivity. ICLR 2019",
)
def snip(model: nn.Module, batch: Batch) -> float:
    """``sum_l sum |W_l ⊙ dL/dW_l|`` over the Conv2d/Linear weights (Lee et al. 2019, as a zero-cost proxy).

    ``L`` is the mean cross-entropy on the whole batch (train mode). This is the saliency ``|dL/dc|`` of SNIP's
    connection masks at ``c = 1``, summed over every weight (Abdelfattah et al., ICLR 2021, Eq. 1).
    """
    weights = layer_weights(model)
    grads = grads_or_zeros(cross_entropy(model, batch), weights)
    return float(sum((w.detach() * g).abs().sum() for w, g in zip(weights, grads)))
