"""naswot_code: NASWOT exactly as Mellor et al.'s released code computes it (``search.py`` ``hook_logdet``)."""

from __future__ import annotations

import torch
import torch.nn as nn

from raynas.data.batch import Batch
from raynas.errors import MetricError
from raynas.metrics._codes import HammingAccumulator, log_abs_det_t
from raynas.metrics.registry import register_metric


def code_modules(model: nn.Module) -> list[nn.Module]:
    """Modules the reference hooks: every module whose ``str(type(m))`` contains ``"ReLU"``.

    That matches ``nn.ReLU`` and also composite modules named after it, e.g. NAS-Bench-201's ``ReLUConvBN``, whose
    input is the input of its own inner ReLU: that ReLU's code is then counted twice.
    """
    mods = [m for m in model.modules() if "ReLU" in str(type(m))]
    if not mods:
        raise MetricError("the network has no module whose type name contains 'ReLU' (naswot_code hooks those)")
    return mods


def reached_by_backward(model: nn.Module, mods: list[nn.Module], inputs: torch.Tensor) -> list[nn.Module]:
    """The modules of ``mods`` whose output receives a gradient from ``sum(logits)`` (one forward + backward).

    The reference counts a module only once its backward hook has fired in this pass, so a module on a branch
    that never reaches the logits (a cell node with no path to the output) adds nothing.
    """
    outputs: list[tuple[nn.Module, torch.Tensor]] = []

    def keep(module: nn.Module, _inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        if isinstance(output, torch.Tensor) and output.requires_grad:
            outputs.append((module, output))

    handles = [m.register_forward_hook(keep) for m in mods]
    try:
        logits = model(inputs.detach().clone().requires_grad_(True))
    finally:
        for h in handles:
            h.remove()
    if not outputs:
        return []
    grads = torch.autograd.grad(logits.sum(), [o for _, o in outputs], allow_unused=True)
    hit = {id(m) for (m, _), g in zip(outputs, grads) if g is not None}
    return [m for m in mods if id(m) in hit]


@register_metric(
    "naswot_code",
    needs="nothing",
    needs_labels=False,
    higher_is_better=True,
    reference="Mellor, Turner, Storkey, Crowley. Neural Architecture Search without Training. ICML 2021 "
    "(BayesWatch/nas-without-training, search.py hook_logdet; raynas variant name, see docstring)",
)
def naswot_code(model: nn.Module, batch: Batch) -> float:
    """log|det K_H| with the released code's choice of units: ``naswot`` as ``search.py`` computes it.

    ``K_H[i, j] = sum over hooked calls of (N_l - Hamming(c_i, c_j))`` for ``inputs [B, C, H, W]``, where a
    call's code is ``(module input > 0)`` flattened, for every module whose type name contains "ReLU" and
    that the backward of ``sum(logits)`` reaches (:func:`code_modules`, :func:`reached_by_backward`); score
    ``log|det K_H|`` (slogdet). Why a separate name: ``naswot`` follows the paper (each ReLU unit once); the
    code's name match also hooks ``ReLUConvBN`` blocks, so every conv op's ReLU code counts twice (on NAS-Bench-201,
    +44 in log-det, same ranks on the 12 parity archs), and it skips branches that do not reach the output.
    """
    mods = reached_by_backward(model, code_modules(model), batch.inputs)
    b = batch.size
    acc = HammingAccumulator(b, batch.inputs.device)

    def hook(_module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        z = args[0]
        acc(z.detach().reshape(b, -1) > 0)

    handles = [m.register_forward_pre_hook(hook) for m in mods]
    try:
        with torch.no_grad():
            model(batch.inputs)
    finally:
        for h in handles:
            h.remove()
    if acc.n_units == 0:
        raise MetricError("no hooked module is reached by the backward of the logits")
    return float(log_abs_det_t(acc.kernel))  # type: ignore[arg-type]  # with_kernel defaults to True
