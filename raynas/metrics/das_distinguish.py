"""DAS atomic term: distinguishing ability, the log-det of the normalised Hamming kernel (label-free)."""

from __future__ import annotations

import torch.nn as nn

from raynas.data.batch import Batch
from raynas.metrics._codes import hamming_kernel, log_abs_det
from raynas.metrics.das_units import DAS_REFERENCE
from raynas.metrics.registry import register_metric


def distinguish_and_units(model: nn.Module, batch: Batch) -> tuple[float, int]:
    """``(log|det(K_H / N_A)|, N_A)`` from one forward pass over ``batch.inputs [B, C, H, W]``."""
    kernel, n_units = hamming_kernel(model, batch.inputs)
    return log_abs_det(kernel / n_units), n_units


@register_metric("das_distinguish", needs_labels=False, higher_is_better=True, reference=DAS_REFERENCE)
def das_distinguish(model: nn.Module, batch: Batch) -> float:
    """log|det K_D|, K_D = K_H / N_A: the distinguishing ability of DAS (Liu et al. 2022).

    ``K_D[i, j] = 1 - Hamming(c_i, c_j) / N_A`` (``[B, B]``, float64, unit diagonal) is the NASWOT kernel with
    the number of activation units divided out, so it measures only how differently the network's ReLUs
    respond to the ``B`` inputs; ``log|det K_D| <= 0`` (Hadamard's inequality), ``-inf`` if two codes coincide. ``naswot = das_distinguish + B * log(das_units)``.
    """
    value, _n_units = distinguish_and_units(model, batch)
    return value
