"""Light-weight training loss (Yang et al., WACV 2023)."""

from __future__ import annotations

import torch.nn as nn

from raynas.data.batch import Batch
from raynas.metrics._lwt import light_weight_train
from raynas.metrics.registry import register_metric


@register_metric(
    "lwt_loss",
    needs_labels=True,
    mode="train",
    higher_is_better=False,
    pass_kind="lwt",
    uses=("lwt",),
    reduce=lambda shared, batch: shared["lwt"].loss,
    reference="Yang, Yang, Jin, Chen. Revisiting Training-free NAS Metrics: An Efficient Training-based Method. "
    "WACV 2023",
)
def lwt_loss(model: nn.Module, batch: Batch) -> float:
    """Cross-entropy of the last of 50 full-batch SGD steps on the batch (lower ranks better).

    The raw loss: trivial networks (constant features) are not special-cased, their loss stays near the
    label entropy and ranks them low anyway.
    """
    return light_weight_train(model, batch).loss
