"""Fisher: the BlockSwap channel-saliency estimate summed over every Conv2d/Linear output channel."""

from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn as nn

from raynas.data.batch import Batch
from raynas.errors import MetricError
from raynas.metrics._layers import LayerOutput, cross_entropy, grads_or_zeros, record_outputs, weight_layers
from raynas.metrics.registry import register_metric


def fisher_score(acts: list[LayerOutput], grads: list[torch.Tensor]) -> torch.Tensor:
    """``sum_layers sum_channels 0.5 * mean_b (sum_{h,w} a ⊙ g)^2`` (0-dim float64) of outputs and their grads."""
    total: torch.Tensor | None = None
    for (module, a), g in zip(acts, grads):
        prod = a.detach() * g
        if isinstance(module, nn.Linear):
            prod = prod.movedim(-1, 1)  # channels to dim 1, like Conv2d
        per_sample = prod.flatten(2).sum(2) if prod.dim() > 2 else prod  # [B, C]
        term = (0.5 * per_sample.pow(2).mean(0)).sum().to(torch.float64)
        total = term if total is None else total + term
    return total if total is not None else torch.zeros((), dtype=torch.float64)


def fisher_reduce(shared: Mapping[str, Any], batch: Batch) -> torch.Tensor:
    """Fisher (0-dim float64) of ``shared["fisher"] = (layer outputs, dL/d outputs)`` from the loss pass."""
    acts, grads = shared["fisher"]
    return fisher_score(acts, grads)


@register_metric(
    "fisher",
    needs_labels=True,
    higher_is_better=True,
    pass_kind="loss",
    uses=("fisher",),
    reduce=fisher_reduce,
    reference="Turner, Crowley, O'Boyle, Storkey, Gray. BlockSwap: Fisher-guided Block Substitution for Network "
    "Compression on a Budget. ICLR 2020 (as a proxy: Abdelfattah et al., ICLR 2021)",
)
def fisher(model: nn.Module, batch: Batch) -> float:
    """``sum_layers sum_channels 0.5 * mean_b (sum_{h,w} a ⊙ g)^2`` (Turner et al. 2020; Theis et al. 2018).

    For every call of an ``nn.Conv2d`` (output ``a [B, C, H, W]``, channel dim 1) or ``nn.Linear`` (output
    ``a [B, C]`` or ``[B, ..., C]``, channel dim -1), ``g = dL/da`` with ``L`` the mean cross-entropy on the
    whole batch (train mode). The per-channel Fisher estimate is ``0.5 * mean_over_batch((sum over the
    non-batch, non-channel positions of a*g)^2)``; the score sums it over channels and layers.

    Choice: the zero-cost paper hooks the activation of each layer; here "activation" is precisely the raw
    output of each Conv2d/Linear (before BN/ReLU), the same layers whose weights the other proxies score.
    The outputs are recorded with :func:`raynas.metrics._layers.record_outputs` (hooked outputs are cloned, so
    an in-place op downstream cannot overwrite the stored ``a``).
    """
    layers = weight_layers(model)
    if not layers:
        raise MetricError(f"{type(model).__name__} has no Conv2d/Linear layers to score")
    with record_outputs(layers) as acts:
        loss = cross_entropy(model, batch)
    grads = grads_or_zeros(loss, [a for _, a in acts])
    return float(fisher_reduce({"fisher": (acts, grads)}, batch))
