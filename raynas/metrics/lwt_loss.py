"""Light-weight training loss (Yang et al., WACV 2023)."""

from __future__ import annotations

import torch.nn as nn

from raynas.data.batch import Batch
from raynas.metrics._lwt import light_weight_train
from raynas.metrics.lwt_angle import REVISIT_REFERENCE
from raynas.metrics.registry import register_metric


@register_metric(
    "lwt_loss",
    needs="labels",
    needs_why="the cross-entropy light-weight training of the nn.Linear classifier that lwt_angle reads",
    needs_labels=True,
    mode="train",
    higher_is_better=False,
    pass_kind="lwt",
    uses=("lwt",),
    reduce=lambda shared, batch: shared["lwt"].loss_score,
    reference=REVISIT_REFERENCE,
)
def lwt_loss(model: nn.Module, batch: Batch) -> float:
    """Cross-entropy of the last of 50 full-batch SGD steps on the batch (lower ranks better); trivial -> 100.

    The authors' score is the negated loss with -100 for trivial networks (a cell of only skip/none edges, or a
    classifier cosine >= 0.95); as a loss that is 100, which ranks them last.
    """
    return light_weight_train(model, batch).loss_score
