"""DAS atomic term: distinguishing ability, the log-det of the normalised Hamming kernel (label-free)."""

from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn as nn

from raynas.data.batch import Batch
from raynas.metrics._codes import hamming_kernel, log_abs_det_t
from raynas.metrics.das_units import DAS_REFERENCE
from raynas.metrics.registry import register_metric


def distinguish_and_units(model: nn.Module, batch: Batch) -> tuple[float, int]:
    """``(log|det(K_H / N_A)|, N_A)`` from one forward pass over ``batch.inputs [B, C, H, W]``."""
    distinguish, n_units = distinguish_and_units_t(hamming_kernel(model, batch.inputs))
    return float(distinguish), n_units


def distinguish_and_units_t(relu_kernel: tuple[torch.Tensor, int]) -> tuple[torch.Tensor, int]:
    """``(log|det(K_H / N_A)|`` as a 0-dim float64 tensor, ``N_A)`` from ``(K_H [B, B], N_A)``."""
    kernel, n_units = relu_kernel
    return log_abs_det_t(kernel / n_units), n_units


def das_distinguish_reduce(shared: Mapping[str, Any], batch: Batch) -> torch.Tensor:
    """``log|det K_D|`` (0-dim float64) of the shared ``shared["relu_kernel"] = (K_H [B, B], N_A)``."""
    return distinguish_and_units_t(shared["relu_kernel"])[0]


@register_metric(
    "das_distinguish",
    needs="nothing",
    needs_labels=False,
    higher_is_better=True,
    reference=DAS_REFERENCE,
    pass_kind="loss",
    uses=("relu_kernel",),
    reduce=das_distinguish_reduce,
)
def das_distinguish(model: nn.Module, batch: Batch) -> float:
    """log|det K_D|, K_D = K_H / N_A: the distinguishing ability of DAS (Liu et al. 2022).

    ``K_D[i, j] = 1 - Hamming(c_i, c_j) / N_A`` (``[B, B]``, float64, unit diagonal) is the NASWOT kernel with
    the number of activation units divided out, so it measures only how differently the network's ReLUs
    respond to the ``B`` inputs; ``log|det K_D| <= 0`` (Hadamard's inequality), ``-inf`` if two codes coincide. ``naswot = das_distinguish + B * log(das_units)``.
    """
    return float(das_distinguish_reduce({"relu_kernel": hamming_kernel(model, batch.inputs)}, batch))
