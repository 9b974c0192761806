"""TE-NAS linear-region count: distinct ReLU activation patterns over 3 x 1000 one-channel 3x3 image crops."""

from __future__ import annotations

import torch
import torch.nn as nn

from raynas.data.batch import Batch
from raynas.metrics._regions import count_patterns, input_channels, region_inputs
from raynas.metrics.registry import register_metric

#: TE-NAS's ``Linear_Region_Collector(input_size=(1000, 1, 3, 3), sample_batch=3)``: 3 forwards of 1000 crops
CHUNK, CHUNKS, SPATIAL = 1000, 3, 3


@register_metric(
    "linear_regions",
    needs="nothing",
    needs_labels=False,
    higher_is_better=True,
    thin_model=True,
    reference=(
        "Chen, Gong, Wang. Neural Architecture Search on ImageNet in Four GPU Hours: A Theoretically Inspired "
        "Perspective (TE-NAS). ICLR 2021 (VITA-Group/TENAS, lib/procedures/linear_region_counter.py, "
        "prune_tenas.py)"
    ),
)
def linear_regions(model: nn.Module, batch: Batch) -> float:
    """Number of distinct ReLU activation patterns over 3,000 3x3 crops of the batch's images (TE-NAS).

    As TE-NAS counts: 3 forward passes (train mode: BN on each pass's statistics) of 1000 inputs
    ``[1000, C, 3, 3]``, each a random 3x3 window of ``C`` random channels of a random batch image (``C``: the
    model's first Conv2d's input channels; 1 without a conv, and for the thin network), drawn from ``torch.initial_seed()``; a
    sample's pattern is ``ReLU input > 0`` over all ``nn.ReLU`` modules; the score is the number of unique
    patterns among the 3,000 (so at most 3,000). It is counted on the space's thin network, TE-NAS's
    ``model_config_thin``: NAS-Bench-201 one cell at C=1 without stem, then BN-ReLU-pool-Linear.
    """
    channels = input_channels(model, 1)  # TE-NAS: RandChannel(1)
    x = region_inputs("crops", CHUNK * CHUNKS, channels, torch.initial_seed(), batch.inputs, SPATIAL)
    x = x.to(device=batch.inputs.device, dtype=batch.inputs.dtype)
    return float(count_patterns(model, list(x.split(CHUNK))))
