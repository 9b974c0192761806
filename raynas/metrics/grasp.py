"""GraSP: gradient signal preservation, Hessian-gradient product with the weights."""

from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn as nn

from raynas.data.batch import Batch
from raynas.metrics._layers import grads_or_zeros, hessian_gradient, layer_weights, task_loss
from raynas.metrics.registry import register_metric


def grasp_reduce(shared: Mapping[str, Any], batch: Batch) -> torch.Tensor:
    """``sum_l sum (-W_l ⊙ (Hg)_l)`` (0-dim) of ``shared["weights"]`` and ``shared["hvp"]`` (None: ``Hg = 0``)."""
    hg = shared["hvp"]
    if hg is None:  # loss is (piecewise) linear in the weights
        return torch.zeros((), device=batch.inputs.device)
    return sum((-w.detach() * h).sum() for w, h in zip(shared["weights"], hg))  # type: ignore[return-value]


@register_metric(
    "grasp",
    needs="loss",
    batchable=True,
    needs_labels=True,
    higher_is_better=True,
    pass_kind="loss",
    uses=("weights", "hvp"),
    reduce=grasp_reduce,
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
    g = [t.detach() for t in grads_or_zeros(task_loss(model, batch), weights)]
    grads = grads_or_zeros(task_loss(model, batch), weights, create_graph=True)
    hg = hessian_gradient(g, grads, weights)
    return float(grasp_reduce({"weights": weights, "hvp": hg}, batch))
