"""Light-weight training angle of the final classifier (Yang et al., WACV 2023)."""

from __future__ import annotations

import torch.nn as nn

from raynas.data.batch import Batch
from raynas.metrics._lwt import light_weight_train
from raynas.metrics.registry import register_metric

REVISIT_REFERENCE = (
    "Yang, Yang, Jin, Chen. Revisiting Training-free NAS Metrics: An Efficient Training-based Method. WACV 2023 "
    "(taoyang1122/Revisit_TrainingFree_NAS, evaluate_anglefc.py)"
)


@register_metric(
    "lwt_angle",
    needs="labels",
    needs_why="the angle of the nn.Linear classifier after light-weight training with cross-entropy",
    needs_labels=True,
    mode="train",
    higher_is_better=True,
    pass_kind="lwt",
    uses=("lwt",),
    reduce=lambda shared, batch: shared["lwt"].angle_score,
    reference=REVISIT_REFERENCE,
)
def lwt_angle(model: nn.Module, batch: Batch) -> float:
    """cos(angle) of the last Linear's weight before vs. after 50 SGD steps on the batch; trivial nets -> 0.

    Higher (smaller angle) ranks better. As in the authors' code, a trivial network scores 0: one with a cell
    of only skip/none edges (not trained at all), or whose classifier cosine is >= 0.95 (it did not train).
    """
    return light_weight_train(model, batch).angle_score
