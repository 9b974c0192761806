"""NASWOT: log-determinant of the Hamming kernel of ReLU activation codes (label-free)."""

from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn as nn

from raynas.data.batch import Batch
from raynas.metrics._codes import hamming_kernel, log_abs_det_t
from raynas.metrics.registry import register_metric


def naswot_reduce(shared: Mapping[str, Any], batch: Batch) -> torch.Tensor:
    """``log|det K_H|`` (0-dim float64) of the shared ``shared["relu_kernel"] = (K_H [B, B], N_A)``."""
    kernel, _n_units = shared["relu_kernel"]
    return log_abs_det_t(kernel)


@register_metric(
    "naswot",
    needs="nothing",
    batchable=True,
    needs_labels=False,
    higher_is_better=True,
    reference="Mellor, Turner, Storkey, Crowley. Neural Architecture Search without Training. ICML 2021",
    pass_kind="loss",
    uses=("relu_kernel",),
    reduce=naswot_reduce,
)
def naswot(model: nn.Module, batch: Batch) -> float:
    """log|det K_H| of the ReLU-code Hamming kernel over the batch (Mellor et al. 2021, v2 score).

    For ``inputs [B, C, H, W]`` one forward pass gives each sample a binary code ``c_i [N_A]``: the concatenation
    over every ``nn.ReLU`` call of the flattened ``(ReLU input > 0)``. With
    ``K_H[i, j] = N_A - Hamming(c_i, c_j)`` (``[B, B]``, float64) the score is ``log|det K_H|`` (slogdet).
    Identical codes make ``K_H`` singular and the score ``-inf``. Networks must use ``nn.ReLU`` modules
    (functional relu is invisible to hooks). This is the paper's score, not the variant vendored in HNAS/RoBoT,
    and not exactly the released code's either: that one also hooks modules merely named after ReLU (NAS-Bench-201's
    ``ReLUConvBN``, so conv-op codes count twice) and skips branches that do not reach the output; it is
    registered as ``naswot_code`` (same ranks on the parity archs, log-det +5 to +11 there).
    """
    return float(naswot_reduce({"relu_kernel": hamming_kernel(model, batch.inputs)}, batch))
