"""Light-weight training angle of the final classifier (Yang et al., WACV 2023)."""

from __future__ import annotations

import torch.nn as nn

from raynas.data.batch import Batch
from raynas.metrics._lwt import TRIVIAL_COSINE, light_weight_train
from raynas.metrics.registry import register_metric


@register_metric(
    "lwt_angle",
    needs_labels=True,
    mode="train",
    higher_is_better=True,
    pass_kind="lwt",
    uses=("lwt",),
    reduce=lambda shared, batch: angle_score(shared["lwt"].cosine),
    reference="Yang, Yang, Jin, Chen. Revisiting Training-free NAS Metrics: An Efficient Training-based Method. "
    "WACV 2023",
)
def lwt_angle(model: nn.Module, batch: Batch) -> float:
    """cos(angle) of the last Linear's weight before vs. after 50 SGD steps on the batch; trivial nets -> -1.

    Higher (smaller angle) ranks better. A cosine >= 0.95 marks a trivial network whose classifier did not
    train (constant features); it gets -1, the lowest possible cosine, so it ranks last as in the paper.
    """
    return angle_score(light_weight_train(model, batch).cosine)


def angle_score(cosine: float) -> float:
    """The metric value of a classifier cosine: itself, or -1 for a trivial network (cosine >= 0.95)."""
    return cosine if cosine < TRIVIAL_COSINE else -1.0
