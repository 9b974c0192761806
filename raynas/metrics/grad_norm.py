"""grad_norm: sum of per-layer gradient norms of the training loss."""

from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn as nn

from raynas.data.batch import Batch
from raynas.metrics._layers import grads_or_zeros, layer_weights, task_loss
from raynas.metrics.registry import register_metric


def grad_norm_reduce(shared: Mapping[str, Any], batch: Batch) -> torch.Tensor:
    """``sum_l ||g_l||_2`` (0-dim) of the shared weight gradients ``shared["weight_grads"]``."""
    return sum(g.norm() for g in shared["weight_grads"])  # type: ignore[return-value]


@register_metric(
    "grad_norm",
    needs="loss",
    batchable=True,
    needs_labels=True,
    higher_is_better=True,
    pass_kind="loss",
    uses=("weight_grads",),
    reduce=grad_norm_reduce,
    reference="Abdelfattah, Mehrotra, Dudziak, Lane. Zero-Cost Proxies for Lightweight NAS. ICLR 2021",
)
def grad_norm(model: nn.Module, batch: Batch) -> float:
    """``sum_l ||dL/dW_l||_2`` over the Conv2d/Linear weights ``W_l`` (Abdelfattah et al., ICLR 2021).

    ``L`` is the mean cross-entropy of the logits ``[B, K]`` on the whole batch (one forward/backward pass, train
    mode); ``||.||_2`` is the Frobenius norm of each weight's gradient (not squared, not normalised).
    """
    weights = layer_weights(model)
    grads = grads_or_zeros(task_loss(model, batch), weights)
    return float(grad_norm_reduce({"weight_grads": grads}, batch))
