"""AZ-NAS progressivity: one of AZ-NAS's four terms, read off the shared AZ-NAS pass."""

from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn as nn

from raynas.data.batch import Batch
from raynas.metrics._az import AZ_FEATURE_METRIC, az_nas_terms
from raynas.metrics.registry import register_metric


def az_nas_progressivity_reduce(shared: Mapping[str, Any], batch: Batch) -> torch.Tensor:
    """The progressivity term of the shared ``shared["az"]`` (:class:`raynas.metrics._az.AZTerms`)."""
    return shared["az"].progressivity


@register_metric("az_nas_progressivity", reduce=az_nas_progressivity_reduce,
                 **AZ_FEATURE_METRIC)  # type: ignore[arg-type]
def az_nas_progressivity(model: nn.Module, batch: Batch) -> float:
    """``min_l (H_l - H_{l-1})``: the smallest gain in spectral entropy from one cell feature to the next
    (AZ-NAS's progressivity ``s^P``; ``H_l`` as in ``az_nas_expressivity``).

    One train-mode forward of ``randn`` of the batch's shape (the batch's values and labels are not used) and one
    vector-Jacobian product per cell, after the authors' re-initialisation of the engine's private copy (Kaiming
    normal, fan-in, drawn under the engine's seed, as their ``compute_nas_score`` does inside the call; see
    :func:`raynas.metrics._az.az_nas_terms` for why). The parity suite checks both the formula on given
    weights and this whole pipeline against the authors' code. Needs a network
    with ``stem`` and ``cells`` (else status ``error``).
    """
    return float(az_nas_progressivity_reduce({"az": az_nas_terms(model, batch)}, batch))
