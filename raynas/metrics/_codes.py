"""Shared helper: binary ReLU activation codes collected with forward pre-hooks.

Used by ``naswot``, ``das_*`` and ``linear_regions``. For one forward pass over ``x [B, ...]`` the *code* of
sample ``i`` is the concatenation, over every call of every ``nn.ReLU`` module (in call order), of the flattened
indicator ``(ReLU input > 0)``; its length ``N_A`` is the number of activation units of the network.

Only ``nn.ReLU`` **modules** are seen: a network that calls ``torch.nn.functional.relu`` (or ``torch.relu``)
directly would be invisible to the hooks, so such networks are rejected when no ``nn.ReLU`` runs at all and are
silently under-counted otherwise. The NAS-Bench-201 and DARTS networks of raynas use ``nn.ReLU`` modules throughout.

Pre-hooks (not forward hooks) are used so ``nn.ReLU(inplace=True)`` cannot overwrite the input before it is
read; ``input > 0`` and ``output > 0`` agree anyway, since ``relu(z) > 0`` iff ``z > 0``.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator, cast

import torch
import torch.nn as nn

from raynas.errors import MetricError

CodeCallback = Callable[[torch.Tensor], None]
ErrorCallback = Callable[[MetricError], None]


def relu_modules(model: nn.Module) -> list[nn.ReLU]:
    """Every ``nn.ReLU`` submodule of ``model``; raises :class:`MetricError` when there is none."""
    relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
    if not relus:
        raise MetricError(
            "the network has no nn.ReLU modules; activation-code metrics need nn.ReLU modules "
            "(functional F.relu calls cannot be hooked)"
        )
    return relus


@contextmanager
def relu_code_hooks(
    model: nn.Module, batch_size: int, callback: CodeCallback, on_error: ErrorCallback | None = None
) -> Iterator[None]:
    """While active, each ``nn.ReLU`` call passes its code block ``[B, n_l]`` (bool) to ``callback``.

    A ReLU input whose leading dimension is not the batch size raises :class:`MetricError`, or, with
    ``on_error``, is reported there and skipped, so a forward pass shared with other metrics goes on.
    """

    def hook(_module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        z = args[0]
        if z.dim() == 0 or z.shape[0] != batch_size:
            err = MetricError(
                f"a ReLU input has leading dimension {tuple(z.shape)[:1]}, expected the batch size {batch_size}"
            )
            if on_error is None:
                raise err
            on_error(err)
            return
        with torch.no_grad():  # the fused pass runs with autograd on; codes never need a graph
            callback(z.detach().reshape(batch_size, -1) > 0)

    handles = [m.register_forward_pre_hook(hook) for m in relu_modules(model)]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


class HammingAccumulator:
    """Code callback building the NASWOT kernel ``K_H [B, B]`` (float64) and counting ``N_A`` call by call.

    ``K_H[i, j] = N_A - Hamming(c_i, c_j)`` is accumulated per ReLU call so memory stays ``O(B^2)`` plus one
    layer's block: with ``s = 2c - 1`` in ``{-1, +1}``, ``s_i . s_j = n_l - 2 d_l(i, j)``, hence the block's
    contribution ``c c^T + (1-c)(1-c)^T = (n_l + s s^T) / 2`` needs a single matmul (float64: exact integers).
    ``with_kernel=False`` only counts (``kernel`` stays None).
    """

    def __init__(self, batch_size: int, device: torch.device, with_kernel: bool = True):
        self.kernel = torch.zeros(batch_size, batch_size, dtype=torch.float64, device=device) if with_kernel else None
        self.n_units = 0

    def __call__(self, code: torch.Tensor) -> None:
        if self.kernel is not None:
            s = code.to(torch.float64) * 2.0 - 1.0
            self.kernel.add_((s @ s.T + code.shape[1]) * 0.5)
        self.n_units += int(code.shape[1])


def hamming_kernel(model: nn.Module, inputs: torch.Tensor) -> tuple[torch.Tensor, int]:
    """The NASWOT kernel ``K_H [B, B]`` (float64) and the code length ``N_A`` for ``inputs [B, ...]``.

    See :class:`HammingAccumulator` for how the kernel is accumulated.
    """
    b = int(inputs.shape[0])
    acc = HammingAccumulator(b, inputs.device)
    with torch.no_grad(), relu_code_hooks(model, b, acc):
        model(inputs)
    if acc.n_units == 0:
        raise MetricError("no nn.ReLU module ran during the forward pass")
    return cast(torch.Tensor, acc.kernel), acc.n_units  # built: with_kernel defaults to True


def activation_codes(model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """The code matrix ``[B, N_A]`` (bool) of ``inputs [B, ...]``: one row per sample."""
    b = int(inputs.shape[0])
    blocks: list[torch.Tensor] = []
    with torch.no_grad(), relu_code_hooks(model, b, blocks.append):
        model(inputs)
    if not blocks:
        raise MetricError("no nn.ReLU module ran during the forward pass")
    return torch.cat(blocks, dim=1)


def count_units(model: nn.Module, inputs: torch.Tensor) -> int:
    """``N_A``: the code length for ``inputs [B, ...]`` without storing the codes."""
    b = int(inputs.shape[0])
    widths: list[int] = []
    with torch.no_grad(), relu_code_hooks(model, b, lambda code: widths.append(int(code.shape[1]))):
        model(inputs)
    if not widths:
        raise MetricError("no nn.ReLU module ran during the forward pass")
    return sum(widths)


def log_abs_det(kernel: torch.Tensor) -> float:
    """``log|det K|`` via ``slogdet`` in float64; ``-inf`` for a singular kernel (e.g. two identical codes)."""
    return float(log_abs_det_t(kernel))


def log_abs_det_t(kernel: torch.Tensor) -> torch.Tensor:
    """:func:`log_abs_det` as a 0-dim float64 tensor on the kernel's device (no host sync)."""
    _sign, logabs = torch.linalg.slogdet(kernel.to(torch.float64))
    return logabs
