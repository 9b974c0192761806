"""Shared core of the Fisher metrics: per-channel Fisher estimates of every Conv2d/Linear call.

``fisher`` (zero-cost-nas) and ``fisher_channel`` (the per-channel BlockSwap sum) differ only in how they weight
each channel's estimate; both read the same recorded ``(layer output, dL/d output)`` pairs.
"""

from __future__ import annotations

from typing import Iterator

import torch
import torch.nn as nn

from raynas.data.batch import Batch
from raynas.errors import MetricError
from raynas.metrics._layers import LayerOutput, grads_or_zeros, record_outputs, task_loss, weight_layers


def channel_estimates(acts: list[LayerOutput], grads: list[torch.Tensor]) -> Iterator[tuple[nn.Module, torch.Tensor]]:
    """``(module, 0.5 * mean_b (sum_{h,w} a ⊙ g)^2)`` per recorded call: the estimate per output channel ``[C]``.

    ``a`` is a call's raw output (``[B, C, H, W]`` for Conv2d, ``[B, ..., C]`` for Linear, channels moved to
    dim 1) and ``g = dL/da``, ``L`` the mean cross-entropy on the batch.
    """
    for (module, a), g in zip(acts, grads):
        prod = a.detach() * g
        if isinstance(module, nn.Linear):
            prod = prod.movedim(-1, 1)  # channels to dim 1, like Conv2d
        per_sample = prod.flatten(2).sum(2) if prod.dim() > 2 else prod  # [B, C]
        yield module, 0.5 * per_sample.pow(2).mean(0)


def layer_outputs_and_grads(model: nn.Module, batch: Batch) -> tuple[list[LayerOutput], list[torch.Tensor]]:
    """One train-mode CE forward/backward of ``model`` on ``batch``: every Conv2d/Linear call's output and its grad."""
    layers = weight_layers(model)
    if not layers:
        raise MetricError(f"{type(model).__name__} has no Conv2d/Linear layers to score")
    with record_outputs(layers) as acts:
        loss = task_loss(model, batch)
    return acts, grads_or_zeros(loss, [a for _, a in acts])
