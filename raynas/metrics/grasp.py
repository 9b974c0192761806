"""GraSP: gradient signal preservation, Hessian-gradient product with the weights."""

from __future__ import annotations

import torch.nn as nn

from raynas.data.batch import Batch
from raynas.metrics._layers import cross_entropy, grads_or_zeros, layer_weights
from raynas.metrics.registry import register_metric


@register_metric(
    "grasp",
    needs_labels=True,
    higher_is_better=True,
    reference="Wang, Zhang, Grosse. Picking Winning Tickets Before Training by Preserving Gradient Flow. ICLR 2020",
)
def grasp(model: nn.Module, batch: Batch) -> float:
    """``sum_l sum (-W_l ⊙ (H g)_l)`` over the Conv2d/Linear weights (Wang et al. 2020, zero-cost sign).

    ``g = dL/dW`` (first pass, detached), ``H = d^2L/dW^2`` restricted to the weights, both from the mean
    cross-entropy on the whole batch (train mode; the two forward passes see the same batch). ``Hg`` is computed
    as ``d(sum_l <g_l, dL/dW_l>)/dW`` with a second, graph-building pass. GraSP prunes the weights with the
    highest ``W ⊙ Hg``; following Abdelfattah et al. (ICLR 2021, Eq. 2) the proxy is the sum of ``-W ⊙ Hg``
    and higher is better.
    """
    weights = layer_weights(model)
    g = [t.detach() for t in grads_or_zeros(cross_entropy(model, batch), weights)]
    grads = grads_or_zeros(cross_entropy(model, batch), weights, create_graph=True)
    z = sum((gi * gr).sum() for gi, gr in zip(g, grads))
    if not z.requires_grad:  # loss is (piecewise) linear in the weights: Hg = 0
        return 0.0
    hg = grads_or_zeros(z, weights)
    return float(sum((-w.detach() * h).sum() for w, h in zip(weights, hg)))
