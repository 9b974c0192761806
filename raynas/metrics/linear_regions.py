"""TE-NAS linear-region count: distinct ReLU activation patterns over Gaussian 3x3 inputs (data-free)."""

from __future__ import annotations

import torch
import torch.nn as nn

from raynas.data.batch import Batch
from raynas.metrics._codes import activation_codes
from raynas.metrics.registry import register_metric

#: number of Gaussian inputs whose activation patterns are counted (TE-NAS uses 1000)
N_SAMPLES = 1000
#: spatial size of the inputs: tiny, so that the patterns of a deep network stay countable
SPATIAL = 3


def gaussian_inputs(channels: int, *, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """``[N_SAMPLES, channels, 3, 3]`` standard normal, from a generator seeded with ``torch.initial_seed()``.

    The engine calls ``torch.manual_seed(seed)`` before each metric, so the inputs are reproducible; they are
    drawn on the CPU so every device sees the same numbers.
    """
    gen = torch.Generator(device="cpu").manual_seed(torch.initial_seed())
    x = torch.randn(N_SAMPLES, channels, SPATIAL, SPATIAL, generator=gen, dtype=torch.float64)
    return x.to(device=device, dtype=dtype)


@register_metric(
    "linear_regions",
    needs_labels=False,
    needs_data=False,
    higher_is_better=True,
    thin_model=True,
    reference=(
        "Chen, Gong, Wang. Neural Architecture Search on ImageNet in Four GPU Hours: "
        "A Theoretically Inspired Perspective (TE-NAS). ICLR 2021"
    ),
)
def linear_regions(model: nn.Module, batch: Batch) -> float:
    """Number of distinct ReLU activation patterns over 1000 Gaussian inputs (TE-NAS, Chen et al. 2021).

    Inputs ``[N_SAMPLES=1000, C, 3, 3]`` (``C = batch.inputs.shape[1]``; only the channel count, device and dtype
    of the batch are used) go through one forward pass; each sample's pattern is its code ``[N_A]`` (concatenated
    ``ReLU input > 0`` over all ``nn.ReLU`` modules); the score is the number of unique rows of the code matrix
    ``[1000, N_A]``, an estimate of how many linear regions of the piecewise-linear network the input
    distribution visits. The network must accept 3x3 inputs (e.g. global adaptive pooling before the classifier).

    Saturation: the count is at most ``N_SAMPLES``; a full-width network (e.g. 7 conv layers of 16-64 channels)
    already gives 1000 distinct patterns. TE-NAS therefore counts regions on a *thin* copy of the architecture
    (NB201: ``C=1, N=1``, no stem); this function counts on whatever model it is given, so reproducing TE-NAS
    means building that thin network in the model factory.
    """
    x = gaussian_inputs(int(batch.inputs.shape[1]), device=batch.inputs.device, dtype=batch.inputs.dtype)
    codes = activation_codes(model, x)
    return float(torch.unique(codes.to(torch.uint8), dim=0).shape[0])
