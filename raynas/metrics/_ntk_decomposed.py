"""HNAS's NTK: per-sample gradients read off ONE backward pass (the per-example decomposition of a batch gradient).

HNAS (Shu et al., NeurIPS 2022; shuyao95/HNAS, ``foresight/pruners/measures/ntk_trace.py`` with
``tools/autograd_hacks.py``) backpropagates ``S = sum_i f(x_i)[y_i]`` once and, for every ``nn.Conv2d`` and
``nn.Linear``, forms sample ``i``'s weight gradient from that layer's input ``a_i`` and the gradient ``b_i = dS/d
out_i`` of its output: ``g_i = b_i a_i^T`` (a conv: ``sum over positions`` of the outer product of the unfolded
input patch and the output gradient; its bias: ``b_i`` summed over positions). The rows ``g_i`` add up to the batch
gradient ``dS/d theta``. With BatchNorm in train mode ``b_i`` carries the other samples' outputs through the batch
statistics, so ``g_i`` is NOT ``d f(x_i)[y_i] / d theta`` (that Jacobian is ``ntk_trace_jacobian``'s); in eval
mode the two coincide.

Cost: one forward and one backward for all ``B`` rows (no loop over samples); memory: one layer's rows
``[B, P_layer]`` at a time, accumulated into the float64 Gram ``Theta [B, B]``.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
import torch.nn as nn
import torch.nn.functional as F

from raynas.errors import MetricError

#: one recorded layer call: the module, its input ``[B, ...]`` (detached) and its output (in the graph)
LayerCall = tuple[nn.Module, torch.Tensor, torch.Tensor]


@contextmanager
def capture_layer_calls(model: nn.Module) -> Iterator[list[LayerCall]]:
    """While active, every call of an ``nn.Conv2d`` / ``nn.Linear`` of ``model`` appends ``(module, input, output)``.

    Raises :class:`MetricError` for other convolution types (the decomposition is defined for 2-d convolutions
    with zero padding, as in the reference): their parameters would otherwise be left out silently.
    """
    calls: list[LayerCall] = []
    layers = []
    for m in model.modules():
        if isinstance(m, nn.modules.conv._ConvNd) and not isinstance(m, nn.Conv2d):
            raise MetricError(f"HNAS's NTK decomposition supports Conv2d and Linear layers, found {type(m).__name__}")
        if isinstance(m, nn.Conv2d) and (m.padding_mode != "zeros" or isinstance(m.padding, str)):
            raise MetricError(
                f"HNAS's NTK decomposition needs numeric zero padding, got {m.padding!r} / {m.padding_mode}"
            )
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            layers.append(m)
    if not layers:
        raise MetricError(f"{type(model).__name__} has no Conv2d/Linear layers for the NTK")

    def keep(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        calls.append((module, inputs[0].detach(), output))

    handles = [m.register_forward_hook(keep) for m in layers]
    try:
        yield calls
    finally:
        for h in handles:
            h.remove()


def _layer_rows(module: nn.Module, a: torch.Tensor, b: torch.Tensor) -> list[tuple[nn.Parameter, torch.Tensor]]:
    """Per-sample gradients ``[B, *p.shape]`` of ``module``'s weight (and bias) for one call (input ``a``,
    output gradient ``b``)."""
    n = a.shape[0]
    if isinstance(module, nn.Linear):
        a2, b2 = a.reshape(n, -1, a.shape[-1]), b.reshape(n, -1, b.shape[-1])  # [B, T, in], [B, T, out]
        out = [(module.weight, torch.einsum("nto,nti->noi", b2, a2))]
        if module.bias is not None:
            out.append((module.bias, b2.sum(1)))
        return out
    conv: nn.Conv2d = module  # type: ignore[assignment]
    cols = F.unfold(a, conv.kernel_size, dilation=conv.dilation, padding=conv.padding, stride=conv.stride)
    g = conv.groups
    bl = b.reshape(n, g, conv.out_channels // g, -1)  # [B, G, C_out/G, L]
    al = cols.reshape(n, g, cols.shape[1] // g, -1)  # [B, G, C_in/G*kh*kw, L]
    w = torch.einsum("ngol,ngkl->ngok", bl, al).reshape(n, *conv.weight.shape)
    out = [(conv.weight, w)]
    if conv.bias is not None:
        out.append((conv.bias, b.reshape(n, conv.out_channels, -1).sum(2)))
    return out


def decomposed_ntk(calls: list[LayerCall], scalars: torch.Tensor, *, retain_graph: bool = False) -> torch.Tensor:
    """``Theta [B, B]`` (float64) of the rows of ONE backward of ``scalars.sum()`` (``scalars [B]``), see module doc.

    A module called several times gets, per sample, the sum of its calls' gradients (the gradient of a shared
    weight) before entering the Gram matrix; frozen parameters are left out, as the Jacobian NTK leaves them out.
    """
    calls = [c for c in calls if c[2].requires_grad]  # a frozen layer on a frozen input: nothing to differentiate
    outputs = [out for _, _, out in calls]
    if not outputs:
        raise MetricError("no Conv2d/Linear output depends on trainable parameters: the NTK is empty")
    grads = torch.autograd.grad(scalars.sum(), outputs, retain_graph=retain_graph, allow_unused=True)
    rows: dict[int, tuple[nn.Parameter, torch.Tensor]] = {}
    for (module, a, _), b in zip(calls, grads):
        if b is None:  # this call does not reach the outputs: zero rows
            continue
        for p, r in _layer_rows(module, a, b):
            if p.requires_grad:
                prev = rows.get(id(p))
                rows[id(p)] = (p, r if prev is None else prev[1] + r)
    n = scalars.shape[0]
    theta = torch.zeros(n, n, dtype=torch.float64, device=scalars.device)
    for _, r in rows.values():
        flat = r.reshape(n, -1).to(torch.float64)
        theta.add_(flat @ flat.T)
    return theta
