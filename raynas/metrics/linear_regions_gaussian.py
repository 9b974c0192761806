"""linear_regions_gaussian: distinct ReLU activation patterns over 1000 Gaussian 3x3 inputs (data-free)."""

from __future__ import annotations

import torch
import torch.nn as nn

from raynas.data.batch import Batch
from raynas.metrics._regions import count_patterns, input_channels
from raynas.metrics.registry import register_metric

#: number of Gaussian inputs whose activation patterns are counted (one forward pass)
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
    "linear_regions_gaussian",
    variant_of="linear_regions",  # a raynas-only diagnostic twin: opt-in (group "diagnostic"), not in "all"
    needs="nothing",
    needs_labels=False,
    needs_data=False,
    higher_is_better=True,
    thin_model=True,
    reference=(
        "Chen, Gong, Wang. Neural Architecture Search on ImageNet in Four GPU Hours: A Theoretically Inspired "
        "Perspective (TE-NAS). ICLR 2021 (raynas variant: Gaussian inputs instead of image crops, see docstring)"
    ),
)
def linear_regions_gaussian(model: nn.Module, batch: Batch) -> float:
    """Number of distinct ReLU activation patterns over 1000 Gaussian 3x3 inputs, in one forward pass.

    Inputs ``[1000, C, 3, 3]`` (``C``: the channels of the model's first Conv2d, else the batch's; only the
    device and dtype of the batch are used otherwise); each sample's pattern is its code (``ReLU input > 0``
    over all ``nn.ReLU`` modules); the score is the number of unique patterns, at most 1000. Counted on the
    space's thin network (TE-NAS's: NAS-Bench-201 one C=1 cell without stem). Why a separate name: it needs no data,
    where TE-NAS's own count (``linear_regions``) uses 3 x 1000 crops of real images.
    """
    x = gaussian_inputs(input_channels(model, int(batch.inputs.shape[1])), device=batch.inputs.device,
                        dtype=batch.inputs.dtype)
    return float(count_patterns(model, [x]))
