"""Counting rules of other tools, applied to real TNB101 modules (the tests' independent references).

``tensorwatch_counts`` re-states, with PyTorch forward hooks, how NASLib counts ``params`` / ``flops`` for its
zero-cost tables (``naslib/predictors/utils/pruners/predictive.py`` -> tensorwatch ``ModelStats``, whose
``torchstat`` hooks wrap every leaf module; ``compute_flops.py`` gives the per-layer rule). Written from reading
that code, not copied.
"""

from __future__ import annotations

import torch
import torch.nn as nn


def tensorwatch_counts(model: nn.Module, input_shape: tuple[int, ...], device: str = "meta") -> tuple[int, int]:
    """``(params, flops)`` of ``model`` as tensorwatch's ModelStats counts them for one input of ``input_shape``.

    Per leaf module, the values of its *last* call are kept (tensorwatch overwrites its per-module buffers at each
    call), and a leaf never called counts nothing, not even its parameters. FLOPs per call: Conv2d
    ``kh kw C_in (C_out / groups) h_out w_out`` (+ ``C_out h_out w_out`` with a bias); affine BatchNorm2d twice
    its input elements; ReLU / LeakyReLU its input elements; AdaptiveAvgPool2d ``sum over output cells of
    C (rows + 1)(cols + 1)``; Linear ``in x out``; anything else 0. ``device="meta"`` runs the forward on shapes
    only (fast at 256x256; the model must have been built on that device).
    """
    per_module: dict[nn.Module, tuple[int, int]] = {}

    def hook(m: nn.Module, inputs: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        x = inputs[0]
        f = 0
        if isinstance(m, nn.Conv2d):
            kh, kw = m.kernel_size
            f = kh * kw * x.shape[1] * (out.shape[1] // m.groups) * out.shape[2] * out.shape[3]
            if m.bias is not None:
                f += out.shape[1] * out.shape[2] * out.shape[3]
        elif isinstance(m, nn.BatchNorm2d):
            f = x.numel() * (2 if m.affine else 1)
        elif isinstance(m, (nn.ReLU, nn.LeakyReLU)):
            f = x.numel()
        elif isinstance(m, nn.AdaptiveAvgPool2d):
            oh, ow = out.shape[2], out.shape[3]
            h, w = x.shape[2], x.shape[3]
            for i in range(oh):
                y0, y1 = (i * h) // oh, -(-((i + 1) * h) // oh)
                for j in range(ow):
                    x0, x1 = (j * w) // ow, -(-((j + 1) * w) // ow)
                    f += x.shape[0] * x.shape[1] * (y1 - y0 + 1) * (x1 - x0 + 1)
        elif isinstance(m, nn.Linear):
            f = x.shape[-1] * out.shape[-1]
        per_module[m] = (sum(p.numel() for p in m.parameters(recurse=False)), f)

    leaves = [m for m in model.modules() if not list(m.children())]
    handles = [m.register_forward_hook(hook) for m in leaves]
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(input_shape, device=device))
    finally:
        for h in handles:
            h.remove()
    return sum(p for p, _ in per_module.values()), sum(f for _, f in per_module.values())
