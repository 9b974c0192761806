"""SNIP: connection sensitivity summed over all weights."""

from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn as nn

from raynas.data.batch import Batch
from raynas.metrics._layers import grads_or_zeros, layer_weights, task_loss
from raynas.metrics.registry import register_metric


def snip_reduce(shared: Mapping[str, Any], batch: Batch) -> torch.Tensor:
    """``sum_l sum |W_l ⊙ g_l|`` (0-dim) of the shared ``shared["weights"]`` and ``shared["weight_grads"]``."""
    return sum(  # type: ignore[return-value]
        (w.detach() * g).abs().sum() for w, g in zip(shared["weights"], shared["weight_grads"])
    )


@register_metric(
    "snip",
    needs="loss",
    batchable=True,
    needs_labels=True,
    higher_is_better=True,
    pass_kind="loss",
    uses=("weights", "weight_grads"),
    reduce=snip_reduce,
    reference="Lee, Ajanthan, Torr. SNIP: Single-shot Network Pruning based on Connection Sensitivity. ICLR 2019",
)
def snip(model: nn.Module, batch: Batch) -> float:
    """``sum_l sum |W_l ⊙ dL/dW_l|`` over the Conv2d/Linear weights (Lee et al. 2019, as a zero-cost proxy).

    ``L`` is the mean cross-entropy on the whole batch (train mode). This is the saliency ``|dL/dc|`` of SNIP's
    connection masks at ``c = 1``, summed over every weight (Abdelfattah et al., ICLR 2021, Eq. 1).
    """
    weights = layer_weights(model)
    grads = grads_or_zeros(task_loss(model, batch), weights)
    return float(snip_reduce({"weights": weights, "weight_grads": grads}, batch))
