"""DAS atomic term: the number of activation units N_A (label-free)."""

from __future__ import annotations

from typing import Any, Mapping

import torch.nn as nn

from raynas.data.batch import Batch
from raynas.metrics._codes import count_units
from raynas.metrics.registry import register_metric

DAS_REFERENCE = (
    "Liu, Li, Sun, Liu. DAS: Neural Architecture Search via Distinguishing Activation Score. arXiv:2212.12132, 2022"
)


def das_units_reduce(shared: Mapping[str, Any], batch: Batch) -> float:
    """``N_A`` from the shared ``shared["relu_units"]`` (an int known from shapes: no device sync)."""
    return float(shared["relu_units"])


@register_metric(
    "das_units",
    needs="nothing",
    needs_labels=False,
    higher_is_better=True,
    reference=DAS_REFERENCE,
    pass_kind="loss",
    uses=("relu_units",),
    reduce=das_units_reduce,
)
def das_units(model: nn.Module, batch: Batch) -> float:
    """N_A: the number of ReLU activation units per sample (length of the NASWOT code), DAS (Liu et al. 2022).

    DAS decouples NASWOT's kernel ``K_H = N_A * K_D`` into this count and the distinguishing ability
    ``log|det K_D|`` (metric ``das_distinguish``): ``log|det K_H| = B log N_A + log|det K_D|``. ``N_A`` is the
    total number of elements entering ``nn.ReLU`` modules in one forward pass, per sample, for
    ``inputs [B, C, H, W]``; it depends on the architecture and the input resolution, not on the values.
    """
    return das_units_reduce({"relu_units": count_units(model, batch.inputs)}, batch)
