"""SynFlow: data-free synaptic flow of the sign-linearised network."""

from __future__ import annotations

import torch
import torch.nn as nn

from raynas.data.batch import Batch
from raynas.metrics._layers import grads_or_zeros, layer_weights
from raynas.metrics.registry import register_metric


@register_metric(
    "synflow",
    needs="nothing",
    batchable=True,
    needs_labels=False,
    needs_data=False,
    # BN would normalise the all-ones signal away and float32 overflows on deep nets: the engine removes BN and
    # casts to float64 before the call.
    bn="remove",
    mode="eval",
    dtype=torch.float64,
    higher_is_better=True,
    reference="Tanaka, Kunin, Yamins, Ganguli. Pruning neural networks without any data by iteratively "
    "conserving synaptic flow. NeurIPS 2020",
)
def synflow(model: nn.Module, batch: Batch) -> float:
    """``sum_l sum |W_l ⊙ dR/dW_l|`` with ``R = sum(f_|θ|(1))`` (Tanaka et al. 2020; Abdelfattah et al. 2021).

    Every parameter of the model (weights, biases, anything left) is replaced in place by its absolute value
    (sign linearisation; the engine hands over a private copy). The input is all ones ``[1, C, H, W]`` with the
    batch's shape, dtype and device; ``R`` is the sum of the output logits. The score sums ``|W ⊙ dR/dW|`` over
    the Conv2d/Linear weights. Input values, labels and the batch size are not used.

    Every BatchNorm is removed (registered ``bn="remove"``), which equals zero-cost-nas's ``synflow`` measure on
    any network whose BNs its ``copynet(bn=False)`` reaches (parity fixture: exact). A quirk of the reference:
    its own ``nasbench2`` NAS-Bench-201 network has a ``get_prunable_copy`` of its own that drops the stem, cell and head
    BNs but keeps the four BNs of the two ResNet reduction blocks, so the synflow values zero-cost-nas (and
    NB-Suite-Zero) report for NAS-Bench-201 include those BNs; raynas removes them all, as the paper defines it.
    """
    with torch.no_grad():
        for p in model.parameters():
            p.abs_()
    weights = layer_weights(model)
    x = torch.ones((1, *batch.inputs.shape[1:]), dtype=batch.inputs.dtype, device=batch.inputs.device)
    r = model(x).sum()
    grads = grads_or_zeros(r, weights)
    return float(sum((w.detach() * g).abs().sum() for w, g in zip(weights, grads)))
