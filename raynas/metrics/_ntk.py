"""Shared helper: empirical NTK from per-sample gradients of ONE batch forward pass.

``Theta = G G^T`` where row ``g_i`` of ``G [B, P]`` is the gradient of a per-sample scalar ``s_i`` (chosen by the
metric: true-class logit for HNAS, sum of logits for TE-NAS) with respect to a chosen parameter list.

Why not ``torch.func.vmap(grad(...))``: with BatchNorm in train mode every logit depends on the whole batch
through the batch statistics, so a per-sample functional call would compute a different quantity. The defined
quantity is the gradient of ``s_i`` taken from the *batch* forward; it is obtained with ``B`` backward passes over
one graph (``retain_graph``), exactly as the HNAS and TE-NAS references do.

Two exact ways to get the rows (:func:`sample_gradients`), both differentiating that one graph:

* ``"loop"``: ``B`` backward passes, one per scalar ``s_i``;
* ``"batched"``: ``torch.autograd.grad(s, params, grad_outputs=I_B, is_grads_batched=True)``, i.e. autograd vmapped
  over the ``B`` one-hot cotangents ``e_i`` (``<e_i, s> = s_i``), in chunks of :data:`BATCHED_CHUNK` rows.
  It is the same graph, so train-mode BatchNorm is handled exactly. Ops without a batching rule make it raise;
  then the loop is used instead.

``"auto"`` picks ``"batched"`` on CUDA and ``"loop"`` elsewhere: measured single-thread CPU time for the
HNAS rows of a NAS-Bench-201 net (C=8, N=2, B=16, 32x32) was 1.5-1.7 s looped vs 2.2-2.4 s batched (0.6-0.7x), because a
CPU backward is already compute-bound and the vmapped kernels are not faster per FLOP. On a GPU one batched call
replaces ``B`` small, launch-bound backward passes.
"""

from __future__ import annotations

import logging
import math
from typing import Callable, Iterable, Literal

import torch
import torch.nn as nn

from raynas.data.batch import Batch
from raynas.errors import MetricError
from raynas.metrics._failures import is_oom

log = logging.getLogger(__name__)

#: per-sample scalar outputs ``[B]`` from the logits ``[B, K]`` and the batch
OutputFn = Callable[[torch.Tensor, Batch], torch.Tensor]

#: columns of ``G`` converted to float64 at a time when forming ``G G^T`` (bounds the float64 copy)
_GRAM_CHUNK = 1 << 20

#: cotangent rows per ``is_grads_batched`` call: bounds the vmapped backward's memory (it holds one activation
#: gradient per row, i.e. ``BATCHED_CHUNK`` times a normal backward)
BATCHED_CHUNK = 64

Method = Literal["auto", "loop", "batched"]


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
    """``model(batch.inputs)`` checked to be logits ``[B, K]`` (a class task), or the output ``[B, *output_shape]``
    of the batch's task (the sum-of-outputs NTK of TE-NAS reads any shape)."""
    out = model(batch.inputs)
    task = batch.task
    if task is not None and not task.is_class:
        task.check_output(out, batch.size)
        return out
    if not isinstance(out, torch.Tensor) or out.dim() != 2 or out.shape[0] != batch.size:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise MetricError(f"NTK metrics need logits of shape [B, K] with B={batch.size}, got {shape}")
    return out


def per_sample_gradients(
    model: nn.Module, batch: Batch, output: OutputFn, params: list[nn.Parameter], *, method: Method = "auto"
) -> torch.Tensor:
    """``G [B, P]``: row ``i`` is ``d output(logits)[i] / d params`` from one batch forward, flattened.

    Parameters that do not influence ``output[i]`` contribute zeros.
    """
    if not params:
        raise MetricError("no parameters selected for the NTK (the network has none of the required kind)")
    return sample_gradients(per_sample_outputs(logits_of(model, batch), batch, output), params, method=method)


def per_sample_outputs(logits: torch.Tensor, batch: Batch, output: OutputFn) -> torch.Tensor:
    """``output(logits, batch)`` checked to be ``[B]``."""
    scalars = output(logits, batch)
    if scalars.shape != (batch.size,):
        raise MetricError(f"per-sample outputs must have shape [{batch.size}], got {tuple(scalars.shape)}")
    return scalars


def sample_gradients(
    scalars: torch.Tensor,
    params: list[nn.Parameter],
    *,
    method: Method = "auto",
    retain_graph: bool = False,
    chunk: int = BATCHED_CHUNK,
) -> torch.Tensor:
    """``G [B, P]`` (row ``i`` = ``d scalars[i] / d params``, flattened; zeros where unused) for ``scalars [B]``.

    ``retain_graph=True`` keeps the graph for another call on the same forward (the fused NTK pass).
    ``"batched"`` falls back to ``"loop"`` when the vmapped backward raises (a missing batching rule); on an
    out-of-memory error it halves ``chunk`` (same rows) and, at one row per call, lets the error through so
    the caller can retry on a smaller batch.
    """
    if not params:
        raise MetricError("no parameters selected for the NTK (the network has none of the required kind)")
    if method == "auto":
        method = "batched" if scalars.device.type == "cuda" else "loop"
    chunk = max(1, min(chunk, int(scalars.shape[0])))
    while method == "batched":
        try:
            return _batched_rows(scalars, params, chunk)
        except (RuntimeError, NotImplementedError) as exc:
            if is_oom(exc) and chunk > 1:  # fewer cotangents per call first: same rows, less memory
                if scalars.device.type == "cuda":
                    torch.cuda.empty_cache()
                chunk = chunk // 2
                continue
            if is_oom(exc):
                raise
            log.warning("is_grads_batched failed (%s: %s); using %d backward passes", type(exc).__name__, exc,
                        scalars.shape[0])
            method = "loop"
    return _looped_rows(scalars, params, retain_graph)


def _numel(params: list[nn.Parameter]) -> int:
    return sum(p.numel() for p in params)


def _fill(out: torch.Tensor, grads: tuple[torch.Tensor | None, ...], params: list[nn.Parameter]) -> None:
    """Write per-parameter gradients ``[*lead, *p.shape]`` into ``out [*lead, P]`` side by side (zeros for
    ``None``), without building a concatenated copy first."""
    start = 0
    for p, g in zip(params, grads):
        n = p.numel()
        dst = out[..., start : start + n]
        if g is None:
            dst.zero_()
        else:
            dst.copy_(g.reshape(*out.shape[:-1], n))
        start += n


def _looped_rows(scalars: torch.Tensor, params: list[nn.Parameter], retain_graph: bool) -> torch.Tensor:
    # G is allocated once and filled row by row: stacking the rows would hold G twice at its peak (2 x 9.7 GB
    # for TransNAS-Bench-101's autoencoder, 38M weights at batch 64)
    b = scalars.shape[0]
    g = scalars.new_empty(b, _numel(params), dtype=params[0].dtype)
    for i in range(b):
        keep = retain_graph or i < b - 1
        grads = torch.autograd.grad(scalars[i], params, retain_graph=keep, allow_unused=True)
        _fill(g[i], grads, params)
        del grads
    return g


def _batched_rows(scalars: torch.Tensor, params: list[nn.Parameter], chunk: int) -> torch.Tensor:
    # the graph is always retained: a failure half-way must leave it intact for the looped fallback
    b = scalars.shape[0]
    eye = torch.eye(b, dtype=scalars.dtype, device=scalars.device)
    g = scalars.new_empty(b, _numel(params), dtype=params[0].dtype)
    for start in range(0, b, chunk):
        cot = eye[start : start + chunk]  # [n, B] one-hot cotangents: row k selects s_{start+k}
        grads = torch.autograd.grad(
            scalars, params, grad_outputs=cot, retain_graph=True, allow_unused=True, is_grads_batched=True
        )
        _fill(g[start : start + cot.shape[0]], grads, params)
        del grads
    return g


def gram(g: torch.Tensor) -> torch.Tensor:
    """``G G^T [B, B]`` in float64, converting ``G [B, P]`` in column chunks to bound memory."""
    b, p = g.shape
    theta = torch.zeros(b, b, dtype=torch.float64, device=g.device)
    for start in range(0, p, _GRAM_CHUNK):
        block = g[:, start : start + _GRAM_CHUNK].to(torch.float64)
        theta.add_(block @ block.T)
    return theta


def ntk(
    model: nn.Module, batch: Batch, output: OutputFn, params: list[nn.Parameter], *, method: Method = "auto"
) -> torch.Tensor:
    """The empirical NTK ``Theta [B, B]`` (float64) of ``output`` w.r.t. ``params``."""
    return gram(per_sample_gradients(model, batch, output, params, method=method))


def condition_number(theta: torch.Tensor) -> float:
    """``lambda_max / lambda_min`` of the PSD ``theta [B, B]`` (``eigvalsh``, float64); ``inf`` if singular.

    ``theta`` is the exact float64 Gram matrix of the (rounded) gradients, so its computed eigenvalues are
    accurate to about ``B * eps64 * lambda_max``; a smaller ``lambda_min`` (e.g. ``B`` > number of parameters,
    or linearly dependent gradients) is indistinguishable from zero and gives ``inf``, which the engine records
    as non-finite instead of a huge or negative ratio made of rounding noise.
    """
    return float(condition_number_t(theta))


def condition_number_t(theta: torch.Tensor) -> torch.Tensor:
    """:func:`condition_number` as a 0-dim float64 tensor on ``theta``'s device (no host sync)."""
    eig = torch.linalg.eigvalsh(theta.to(torch.float64))
    lo, hi = eig[0], eig[-1]
    singular = (hi <= 0.0) | (lo <= hi * theta.shape[0] * torch.finfo(torch.float64).eps)
    return torch.where(singular, torch.full_like(hi, math.inf), hi / lo)


def trace_norm_t(theta: torch.Tensor) -> torch.Tensor:
    """``sqrt(trace(theta) / B)`` as a 0-dim float64 tensor (HNAS's trace norm)."""
    return torch.sqrt(torch.trace(theta.to(torch.float64)) / theta.shape[0])


def true_class_logit(logits: torch.Tensor, batch: Batch) -> torch.Tensor:
    """``[B]``: ``logits[i, y_i]`` (HNAS); a class task only (``labels`` is None for any other)."""
    if batch.labels is None or logits.dim() != 2:
        raise MetricError("the true-class logit needs class labels [B] and logits [B, K]")
    if batch.size and int(batch.labels.max()) >= logits.shape[1]:
        raise MetricError(f"label {int(batch.labels.max())} has no logit: the network outputs {logits.shape[1]}")
    return logits.gather(1, batch.labels.view(-1, 1).to(logits.device)).squeeze(1)


def logit_sum(logits: torch.Tensor, batch: Batch) -> torch.Tensor:
    """``[B]``: ``sum_k logits[i, k]`` (TE-NAS: backward of ``ones_like`` on sample ``i``'s logits); the sum of
    every output element of sample ``i`` for a dense output ``[B, ...]`` (another task's head)."""
    return logits.sum(dim=1) if logits.dim() == 2 else logits.flatten(1).sum(dim=1)


#: the Jacobian NTKs (rows from ``B`` backward passes) by shared-quantity name: ``(per-sample output, parameter
#: selection)``; HNAS's own one-backward NTK (``hnas_ntk``) is :mod:`raynas.metrics._ntk_decomposed`
NTK_KINDS: dict[str, tuple[OutputFn, Callable[[nn.Module], list[nn.Parameter]]]] = {
    "hnas_jacobian_ntk": (true_class_logit, conv_linear_params),
    "tenas_ntk": (logit_sum, weight_params),
}
