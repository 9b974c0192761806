"""DAS: a weighted combination of the two atomic terms of NASWOT (label-free).

Liu et al. (2022) decompose the NASWOT score as
``log|det K_H| = log|det K_D| + B * log N_A`` (``K_D = K_H / N_A``, ``B`` the batch size): NASWOT implicitly
weights the activation-unit count by ``B``. DAS re-weights the two atomic terms:

    das_score(distinguish, units, alpha, beta) = alpha * distinguish + beta * log(units)

``alpha = 1, beta = B`` recovers NASWOT exactly. NOTE: the paper's full text was not available while this was
written; the defaults below (``alpha = beta = 1``: equal weight on distinguishing ability and log unit count,
independent of the batch size) are this implementation's choice, not verified against the paper's tuned
values. Change :data:`DEFAULT_ALPHA` / :data:`DEFAULT_BETA` (or call :func:`das_score`) to use others.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, TypeVar

import torch
import torch.nn as nn

from raynas.data.batch import Batch
from raynas.errors import MetricError
from raynas.metrics._codes import hamming_kernel
from raynas.metrics.das_distinguish import distinguish_and_units_t
from raynas.metrics.das_units import DAS_REFERENCE
from raynas.metrics.registry import register_metric

#: weight of the distinguishing ability ``log|det K_D|``
DEFAULT_ALPHA = 1.0
#: weight of ``log N_A`` (NASWOT corresponds to ``beta = B``)
DEFAULT_BETA = 1.0


Score = TypeVar("Score", float, torch.Tensor)


def das_score(distinguish: Score, units: float, alpha: float = DEFAULT_ALPHA, beta: float = DEFAULT_BETA) -> Score:
    """``alpha * distinguish + beta * log(units)`` for ``distinguish = log|det K_D|`` and ``units = N_A > 0``.

    ``distinguish`` may be a float or a 0-dim tensor (the fused engine's reduction; same float64 arithmetic).
    """
    if units <= 0:
        raise MetricError(f"the number of activation units must be positive, got {units}")
    return alpha * distinguish + beta * math.log(units)


def das_reduce(shared: Mapping[str, Any], batch: Batch) -> torch.Tensor:
    """DAS (0-dim float64) of the shared ``shared["relu_kernel"] = (K_H [B, B], N_A)``."""
    distinguish, units = distinguish_and_units_t(shared["relu_kernel"])
    return das_score(distinguish, units)


@register_metric(
    "das",
    needs="nothing",
    needs_labels=False,
    higher_is_better=True,
    reference=DAS_REFERENCE,
    pass_kind="loss",
    uses=("relu_kernel",),
    reduce=das_reduce,
)
def das(model: nn.Module, batch: Batch) -> float:
    """DAS = alpha * log|det(K_H / N_A)| + beta * log N_A with the module defaults (Liu et al. 2022).

    Both terms come from one forward pass over ``batch.inputs [B, C, H, W]``: ``K_H [B, B]`` is the NASWOT
    Hamming kernel of the ReLU codes and ``N_A`` their length (see ``das_distinguish``, ``das_units``).
    """
    return float(das_reduce({"relu_kernel": hamming_kernel(model, batch.inputs)}, batch))
