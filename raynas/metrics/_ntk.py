"""Shared helper: empirical NTK from per-sample gradients of ONE batch forward pass.

``Theta = G G^T`` where row ``g_i`` of ``G [B, P]`` is the gradient of a per-sample scalar ``s_i`` (chosen by the
metric: true-class logit for HNAS, sum of logits for TE-NAS) with respect to a chosen parameter list.

Why not ``torch.func.vmap(grad(...))``: with BatchNorm in train mode every logit depends on the whole batch
through the batch statistics, so a per-sample functional call would compute a different quantity. The defined
quantity is the gradient of ``s_i`` taken from the *batch* forward; it is obtained with ``B`` backward passes over
one graph (``retain_graph``), exactly as the HNAS and TE-NAS references do.
"""

from __future__ import annotations

import math
from typing import Callable, Iterable

import torch
import torch.nn as nn

from raynas.data.batch import Batch
from raynas.errors import MetricError

#: per-sample scalar outputs ``[B]`` from the logits ``[B, K]`` and the batch
OutputFn = Callable[[torch.Tensor, Batch], torch.Tensor]

#: columns of ``G`` converted to float64 at a time when forming ``G G^T`` (bounds the float64 copy)
_GRAM_CHUNK = 1 << 20


def unique_trainable(params: Iterable[nn.Parameter]) -> list[nn.Parameter]:
    """``params`` with duplicates (tied weights) and frozen parameters dropped, order kept."""
    seen: set[int] = set()
    out: list[nn.Parameter] = []
    for p in params:
        if p.requires_grad and id(p) not in seen:
            seen.add(id(p))
            out.append(p)
    return out


def conv_linear_params(model: nn.Module) -> list[nn.Parameter]:
    """Weights and biases of every convolution and ``nn.Linear`` module (the HNAS parameter set)."""
    mods = [m for m in model.modules() if isinstance(m, (nn.modules.conv._ConvNd, nn.Linear))]
    return unique_trainable(p for m in mods for p in m.parameters(recurse=False))


def weight_params(model: nn.Module) -> list[nn.Parameter]:
    """Every parameter whose qualified name ends with ``"weight"``, BatchNorm weights included (TE-NAS set)."""
    return unique_trainable(p for name, p in model.named_parameters() if name.endswith("weight"))


def logits_of(model: nn.Module, batch: Batch) -> torch.Tensor:
    """``model(batch.inputs)`` checked to be logits ``[B, K]``."""
    out = model(batch.inputs)
    if not isinstance(out, torch.Tensor) or out.dim() != 2 or out.shape[0] != batch.size:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise MetricError(f"NTK metrics need logits of shape [B, K] with B={batch.size}, got {shape}")
    return out


def per_sample_gradients(
    model: nn.Module, batch: Batch, output: OutputFn, params: list[nn.Parameter]
) -> torch.Tensor:
    """``G [B, P]``: row ``i`` is ``d output(logits)[i] / d params`` from one batch forward, flattened.

    Parameters that do not influence ``output[i]`` contribute zeros.
    """
    if not params:
        raise MetricError("no parameters selected for the NTK (the network has none of the required kind)")
    scalars = output(logits_of(model, batch), batch)
    if scalars.shape != (batch.size,):
        raise MetricError(f"per-sample outputs must have shape [{batch.size}], got {tuple(scalars.shape)}")
    rows = []
    for i in range(batch.size):
        grads = torch.autograd.grad(scalars[i], params, retain_graph=i < batch.size - 1, allow_unused=True)
        rows.append(torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1) for p, g in zip(params, grads)]))
    return torch.stack(rows)


def gram(g: torch.Tensor) -> torch.Tensor:
    """``G G^T [B, B]`` in float64, converting ``G [B, P]`` in column chunks to bound memory."""
    b, p = g.shape
    theta = torch.zeros(b, b, dtype=torch.float64, device=g.device)
    for start in range(0, p, _GRAM_CHUNK):
        block = g[:, start : start + _GRAM_CHUNK].to(torch.float64)
        theta.add_(block @ block.T)
    return theta


def ntk(model: nn.Module, batch: Batch, output: OutputFn, params: list[nn.Parameter]) -> torch.Tensor:
    """The empirical NTK ``Theta [B, B]`` (float64) of ``output`` w.r.t. ``params``."""
    return gram(per_sample_gradients(model, batch, output, params))


def condition_number(theta: torch.Tensor) -> float:
    """``lambda_max / lambda_min`` of the PSD ``theta [B, B]`` (``eigvalsh``, float64); ``inf`` if singular.

    ``theta`` is the exact float64 Gram matrix of the (rounded) gradients, so its computed eigenvalues are
    accurate to about ``B * eps64 * lambda_max``; a smaller ``lambda_min`` (e.g. ``B`` > number of parameters,
    or linearly dependent gradients) is indistinguishable from zero and gives ``inf``, which the engine records
    as non-finite instead of a huge or negative ratio made of rounding noise.
    """
    eig = torch.linalg.eigvalsh(theta.to(torch.float64))
    lo, hi = float(eig[0]), float(eig[-1])
    if hi <= 0.0 or lo <= hi * theta.shape[0] * torch.finfo(torch.float64).eps:
        return math.inf
    return hi / lo


def true_class_logit(logits: torch.Tensor, batch: Batch) -> torch.Tensor:
    """``[B]``: ``logits[i, y_i]`` (HNAS)."""
    if batch.size and int(batch.labels.max()) >= logits.shape[1]:
        raise MetricError(f"label {int(batch.labels.max())} has no logit: the network outputs {logits.shape[1]}")
    return logits.gather(1, batch.labels.view(-1, 1).to(logits.device)).squeeze(1)


def logit_sum(logits: torch.Tensor, batch: Batch) -> torch.Tensor:
    """``[B]``: ``sum_k logits[i, k]`` (TE-NAS: backward of ``ones_like`` on sample ``i``'s logits)."""
    return logits.sum(dim=1)
