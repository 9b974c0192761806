"""Shared helpers of the zero-cost proxies: which tensors count as "weights", and the task loss they all use.

"Weights" throughout the zero-cost metrics (Abdelfattah et al., ICLR 2021) are the ``.weight`` tensors of every
``nn.Conv2d`` and ``nn.Linear``: biases, BatchNorm affine parameters and other parameters are excluded.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Iterable, Iterator

import torch
import torch.nn as nn

from raynas.data.batch import Batch
from raynas.errors import MetricError

#: layer types whose ``.weight`` is a "weight" for the zero-cost proxies
WEIGHT_LAYERS: tuple[type[nn.Module], ...] = (nn.Conv2d, nn.Linear)


def init_in_logical_order(weight: torch.Tensor, init: Callable[[torch.Tensor], Any]) -> None:
    """Apply the in-place random initialiser ``init`` (e.g. ``nn.init.normal_``) to ``weight`` as it would draw
    into a contiguous tensor of the same shape.

    Why: torch fills a tensor's random numbers in its memory order, so the same seed gives a ``channels_last``
    weight other values at each logical index than a contiguous one (a whole re-initialised network, then a
    metric value, that depends on the memory format: vkdnw in float64 moved 9.9 %, issue 32). The draws go into a
    contiguous buffer and are copied in, for the same values whatever the layout.

    Args:
        weight: the parameter (any shape and memory format), written in place under ``torch.no_grad()``.
        init: an initialiser that draws in place into the tensor it is given.
    """
    if weight.is_contiguous():
        init(weight)
        return
    buf = torch.empty(weight.shape, dtype=weight.dtype, device=weight.device)
    init(buf)
    with torch.no_grad():
        weight.copy_(buf)


def weight_layers(model: nn.Module) -> list[nn.Module]:
    """Every ``nn.Conv2d``/``nn.Linear`` submodule of ``model`` (module order, each module once)."""
    return [m for m in model.modules() if isinstance(m, WEIGHT_LAYERS)]


def layer_weights(model: nn.Module) -> list[torch.Tensor]:
    """The trainable ``.weight`` of every Conv2d/Linear layer; raises :class:`MetricError` if there are none.

    Frozen weights (``requires_grad=False``) are skipped: autograd cannot differentiate with respect to them.
    """
    weights = [m.weight for m in weight_layers(model) if m.weight.requires_grad]
    if not weights:
        raise MetricError(f"{type(model).__name__} has no trainable Conv2d/Linear weights to score")
    return weights


def task_loss(model: nn.Module, batch: Batch) -> torch.Tensor:
    """The batch task's loss of ``model(batch.inputs)`` against ``batch.targets`` (0-dim).

    Classification: the mean cross-entropy of the logits ``[B, K]`` against ``batch.labels`` ``[B]``, exactly as
    before the task contract. Any task: :meth:`raynas.tasks.Task.loss_fn` (mean reduction), after
    :meth:`~raynas.tasks.Task.check_output` checked the output ``[B, *task.output_shape]``. Mean (not sum)
    reduction: every gradient-based proxy in this package sees ``dL/dW`` averaged over the batch.
    """
    task = batch.task
    output = model(batch.inputs)
    task.check_output(output, batch.size)  # type: ignore[union-attr]  # a Batch always has its task
    return task.loss_fn(output, batch.targets)  # type: ignore[union-attr,arg-type]


#: the name every loss-based metric used before the task contract (a classification batch's task loss)
cross_entropy = task_loss


def grads_or_zeros(outputs: torch.Tensor, inputs: list[torch.Tensor], **kwargs: bool) -> list[torch.Tensor]:
    """``torch.autograd.grad(outputs, inputs)`` with zeros for inputs the output does not depend on.

    A layer on a path that does not reach the logits (e.g. an unused branch) then contributes 0 to a sum-over-
    layers score instead of aborting the whole metric.
    """
    grads = torch.autograd.grad(outputs, inputs, allow_unused=True, **kwargs)
    return [torch.zeros_like(t) if g is None else g for t, g in zip(inputs, grads)]


#: one recorded layer call: the module and its raw output (``[B, C, H, W]`` conv, ``[B, ..., C]`` linear)
LayerOutput = tuple[nn.Module, torch.Tensor]


@contextmanager
def forward_hooks(modules: Iterable[nn.Module], hook: Callable[..., Any]) -> Iterator[None]:
    """``hook`` registered as a forward hook on every module of ``modules`` while the block runs, removed on any
    exit (an exception inside a hooked forward included), so a scored network never keeps a metric's hook."""
    handles = [m.register_forward_hook(hook) for m in modules]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def run_hooked(model: nn.Module, x: torch.Tensor, modules: Iterable[nn.Module], hook: Callable[..., Any]) -> None:
    """One no-grad forward of ``x`` through ``model`` with ``hook`` on ``modules`` (what counting metrics do)."""
    with forward_hooks(modules, hook), torch.no_grad():
        model(x)


@contextmanager
def record_outputs(layers: list[nn.Module]) -> Iterator[list[LayerOutput]]:
    """While active, every call of a module in ``layers`` appends ``(module, output)`` to the yielded list.

    Why the clone: each hooked output is replaced by a clone before the rest of the network sees it, so an
    in-place op downstream (``ReLU(inplace=True)``) cannot overwrite the stored output. The clone's backward
    is the identity, so gradients of everything else are unchanged.
    """
    outputs: list[LayerOutput] = []

    def keep(module: nn.Module, _inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> torch.Tensor:
        outputs.append((module, output))
        return output.clone()

    with forward_hooks(layers, keep):
        yield outputs


def hessian_gradient(
    g: list[torch.Tensor], grads_with_graph: list[torch.Tensor], weights: list[torch.Tensor]
) -> list[torch.Tensor] | None:
    """``H g`` per weight: ``d(sum_l <g_l, dL/dW_l>)/dW`` with ``g`` held constant (GraSP's Hessian-vector product).

    ``grads_with_graph`` are ``dL/dW`` from a ``create_graph=True`` backward (same shapes as ``weights``);
    ``g`` is any constant direction (GraSP: the detached first-order gradient). ``None`` when the loss is
    (piecewise) linear in the weights, i.e. the product has no graph and ``Hg = 0``.
    """
    z = sum((gi * gr).sum() for gi, gr in zip(g, grads_with_graph))
    if not isinstance(z, torch.Tensor) or not z.requires_grad:
        return None
    return grads_or_zeros(z, weights)
