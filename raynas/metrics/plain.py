"""plain: sum over the Conv2d/Linear weights of ``dL/dW ⊙ W`` (NAS-Bench-Suite-Zero's ``plain``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from raynas.data.batch import Batch
from raynas.metrics._layers import grads_or_zeros, layer_weights, task_loss
from raynas.metrics.registry import register_metric


def plain_reduce(shared: Mapping[str, Any], batch: Batch) -> torch.Tensor:
    """``sum_l sum(g_l ⊙ W_l)`` (0-dim) of the shared ``weight_grads`` and ``weights``."""
    terms = zip(shared["weight_grads"], shared["weights"])
    return sum((g * w.detach()).sum() for g, w in terms)  # type: ignore[return-value]


@register_metric(
    "plain",
    needs="loss",
    needs_labels=True,
    higher_is_better=True,
    pass_kind="loss",
    uses=("weights", "weight_grads"),
    reduce=plain_reduce,
    reference="Abdelfattah, Mehrotra, Dudziak, Lane. Zero-Cost Proxies for Lightweight NAS. ICLR 2021 (the "
    "'plain' baseline); as NAS-Bench-Suite-Zero computes it: automl/NASLib "
    "naslib/predictors/utils/pruners/measures/plain.py",
)
def plain(model: nn.Module, batch: Batch) -> float:
    """``sum_l sum(dL/dW_l ⊙ W_l)`` over the Conv2d/Linear weights (signed, no absolute value).

    ``L`` is the mean cross-entropy of the logits on the whole batch, one train-mode forward/backward with
    BatchNorm kept (NASLib's ``compute_plain_per_weight``: ``bn=True``, ``split_data=1``; a layer the loss does
    not reach contributes 0, as its ``zeros_like``). Unlike snip, the terms keep their sign, so they cancel:
    the value can be near 0 or negative for a good network.
    """
    weights = layer_weights(model)
    grads = grads_or_zeros(task_loss(model, batch), weights)
    return float(plain_reduce({"weights": weights, "weight_grads": grads}, batch))
