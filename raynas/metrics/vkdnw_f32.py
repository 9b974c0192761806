"""vkdnw_f32: :mod:`raynas.metrics.vkdnw` in float32, as VKDNW's authors ran it (Tybl & Neumann, CVPR 2025)."""

from __future__ import annotations

import torch
from torch import nn

from raynas.data.batch import Batch
from raynas.metrics.registry import register_metric
from raynas.metrics.vkdnw import REFERENCE, fisher_entropy


@register_metric(
    "vkdnw_f32",
    needs_labels=False,
    needs_data=True,
    bn="keep",
    mode="eval",
    dtype=torch.float32,
    higher_is_better=True,
    reference=REFERENCE + "; float32, as the authors ran it",
)
def vkdnw_f32(model: nn.Module, batch: Batch) -> float:
    """:func:`vkdnw` in float32, as the authors' code runs it: their published numbers' precision.

    Which reference it matches: ``compute_vkdnw_score.py`` (NAS-Bench-201 folder, ``p=1``,
    ``params_grad_len=128``) run as released, in float32; equal to it on the parity fixture on ONE CPU thread.
    Why a separate metric: the entropy reads the deciles of the Fisher spectrum, whose small singular values are
    float32 rounding noise; the value therefore depends on the summation order (2e-5 relative between one and two
    threads, up to a factor 2 against float64 on DARTS networks), i.e. on the thread count and device. Use it to
    reproduce the authors' float32 numbers; ``vkdnw`` (float64) is the resolved value of the same definition.
    """
    return fisher_entropy(model, batch)
