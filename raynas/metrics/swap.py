"""swap: SWAP-Score, the number of distinct sample-wise activation patterns of the ReLU units."""

from __future__ import annotations

import torch
from torch import nn

from raynas.data.batch import Batch
from raynas.errors import MetricError, NonFiniteError
from raynas.metrics._layers import run_hooked
from raynas.metrics.registry import register_metric

#: samples packed into one int64 code word (bit b of word w = sample 64 w + b is active)
_WORD = 64


def pack_patterns(active: torch.Tensor) -> torch.Tensor:
    """``active [B, n]`` (bool, sample x unit) -> ``[n, ceil(B/64)]`` int64: each unit's pattern over the batch
    as bit words (two units have equal rows iff their activation patterns over the batch are equal)."""
    b, n = active.shape
    words = []
    for start in range(0, b, _WORD):
        bits = active[start:start + _WORD].to(torch.int64)
        shifts = torch.arange(bits.shape[0], device=bits.device, dtype=torch.int64)[:, None]
        words.append((bits << shifts).sum(dim=0))  # disjoint bits: the sum is the bitwise or, no carries
    return torch.stack(words, dim=1) if words else torch.zeros((n, 0), dtype=torch.int64, device=active.device)


def count_patterns(model: nn.Module, x: torch.Tensor) -> int:
    """Distinct patterns over the batch ``x`` of every unit of every ``nn.ReLU`` module applied to a 4-d map."""
    codes: list[torch.Tensor] = []
    finite: list[torch.Tensor] = []

    def hook(_m: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        if isinstance(inputs, tuple) and inputs[0].dim() == 4:  # the reference's ``len(input[0].size()) == 4``
            flat = output.detach().reshape(output.shape[0], -1)
            finite.append(torch.isfinite(flat).all())
            codes.append(pack_patterns(flat > 0))  # sign(ReLU output) is 0 or 1

    relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
    if not relus:
        raise MetricError(f"{type(model).__name__} has no nn.ReLU module: no activation pattern to count")
    run_hooked(model, x, relus, hook)
    if not codes:
        raise MetricError("no nn.ReLU module ran on a [B, C, H, W] feature map during the forward pass")
    if not bool(torch.stack(finite).all()):
        raise NonFiniteError("a ReLU output is not finite: its sign pattern is undefined")
    return int(torch.unique(torch.cat(codes), dim=0).shape[0])


@register_metric(
    "swap",
    needs="nothing",
    needs_labels=False,
    needs_data=True,
    bn="keep",
    mode="train",
    higher_is_better=True,
    reference="Peng, Song, Fayek, Ciesielski, Chang. SWAP-NAS: Sample-Wise Activation Patterns for Ultra-fast "
    "NAS. ICLR 2024; pym1024/SWAP src/metrics/swap.py (SWAP, regular=False)",
)
def swap(model: nn.Module, batch: Batch) -> float:
    """``|unique rows of sign(A)^T|``: ``A [B, N]`` holds every unit of every ReLU on a 4-d map, per sample.

    As ``SWAP.forward`` of the authors' ``swap.py``: forward hooks on every ``nn.ReLU`` whose input is
    ``[B, C, H, W]`` record its output; the outputs, flattened per sample and concatenated, give ``A``; the
    score is the number of distinct columns of ``sign(A)`` (a unit's on/off pattern over the batch), i.e. the
    number of distinct sample-wise activation patterns. One forward without gradients in train mode (BN on
    batch statistics), on the batch's images; the labels are not used. The patterns are packed 64 samples to an
    int64 word before ``unique`` (same count, 32x less memory than the reference's float matrix).

    What is not applied: the authors' ``correlation.py`` re-initialises each network with ``N(0, 1)`` weights
    (``network_weight_gaussian_init``) before each of its 32 repeats and averages; raynas scores the network as
    the engine initialised it (as every other metric: the re-initialisation belongs to their benchmarking
    script, not to the SWAP class), and one forward is deterministic, so there is nothing to repeat.

    No ReLU (or none on a feature map): an error. A score of 1 is legitimate (e.g. every unit dead).
    """
    return float(count_patterns(model, batch.inputs))
