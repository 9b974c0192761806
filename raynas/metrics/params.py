"""Parameter count: the simplest baseline proxy."""

from __future__ import annotations

import torch.nn as nn

from raynas.data.batch import Batch
from raynas.metrics.registry import register_metric


@register_metric(
    "params",
    needs="nothing",
    batchable=True,
    needs_labels=False,
    needs_data=False,
    higher_is_better=True,
    reference="Abdelfattah, Mehrotra, Dudziak, Lane. Zero-Cost Proxies for Lightweight NAS. ICLR 2021 (baseline)",
)
def params(model: nn.Module, batch: Batch) -> float:
    """Number of trainable parameters: sum of ``p.numel()`` over parameters with ``requires_grad`` (raw count).

    Shared parameters are counted once (``model.parameters()`` deduplicates). BatchNorm affine parameters count
    (the spec keeps BN). The batch is not used.
    """
    return float(sum(p.numel() for p in model.parameters() if p.requires_grad))
