"""ZiCo: inverse coefficient of variation of the weight gradients across batches (Li et al., ICLR 2023)."""

from __future__ import annotations

import torch
import torch.nn as nn

from raynas.data.batch import Batch
from raynas.errors import MetricError, NonFiniteError
from raynas.metrics._layers import weight_layers
from raynas.metrics.registry import register_metric


def zico_of_gradients(per_layer: list[list[torch.Tensor]]) -> torch.Tensor:
    """``sum_l log sum_{i: std_i > 0} mean_k |g_{k,i}| / std_k g_{k,i}`` over layers ``l`` (0-dim, float64).

    ``per_layer[l]`` holds the layer's flattened gradient of each batch ``k``; ``std`` is the
    population standard deviation over the batches (numpy's default, as the authors'); a layer whose sum is 0
    (no weight varies) is skipped. :class:`NonFiniteError` (status ``nan``) when no layer contributes: ZiCo is
    then undefined (the reference returns 0, e.g. for a cell of only ``none`` ops, whose logits are constant).
    """
    total = torch.zeros((), dtype=torch.float64)
    used = 0
    for grads in per_layer:
        g = torch.stack(grads)
        k = g.shape[0]
        # numpy's mean and population std, op for op: sum / k, then sqrt(sum((g - mean)^2) / k)
        mean = g.sum(dim=0) / k
        d = g - mean
        std = torch.sqrt((d * d).sum(dim=0) / k)
        nz = std != 0
        tmpsum = (g.abs().sum(dim=0)[nz] / k / std[nz]).to(torch.float64).sum()
        if float(tmpsum) != 0.0:
            total = total.to(tmpsum.device) + torch.log(tmpsum)
            used += 1
    if used == 0:
        raise NonFiniteError("ZiCo: no Conv2d/Linear weight gradient varies between the batches (undefined)")
    return total


@register_metric(
    "zico",
    needs="loss",
    needs_labels=True,
    dtype=torch.float64,  # see the docstring: float32 rounding moves the score by percents
    higher_is_better=True,
    reference="Li, Li, Zhang, Marculescu. ZiCo: Zero-shot NAS via Inverse Coefficient of Variation on Gradients. "
    "ICLR 2023; SLDGroup/ZiCo ZeroShotProxy/compute_zico.py (getzico, caculate_zico)",
)
def zico(model: nn.Module, batch: Batch) -> float:
    """ZiCo of the Conv2d/Linear weights over the batch's two halves, taken as the authors' two batches.

    Each half ``k`` (samples ``[k*B//2, (k+1)*B//2)``) gets its own train-mode forward and backward of the task's loss
    (mean cross-entropy for classification, :meth:`raynas.tasks.Task.loss_fn`), giving
    ``g_k = dL_k/dW`` per weight; the score is :func:`zico_of_gradients` of those (the authors loop over the
    batches of their loader and take the statistics over them; NAS-Bench-Suite-Zero's and MeCo's ``zico`` split
    one batch in two, as here). Layers the loss does not reach (no gradient) are skipped, as in AZ-NAS's
    NAS-Bench-201 revision of the authors' file (the original fails on them).

    Computed in float64 (network and batch): the ratio ``(|g_1| + |g_2|) / |g_1 - g_2|`` of nearly equal gradients
    turns float32 rounding into percents of the score (the authors' float32 code gives 209.7 on one thread and
    205.2 on two for the parity fixture's NAS-Bench-201 #13714); in float64 its runs agree to 1e-15, and the parity
    fixture compares float64 runs of both.

    Cost of that choice (issue 32): float64 convolutions cost about x2.5 the float32 ones on a CPU, so zico is
    slower than the authors' float32 code (``scripts/bench_metric_cost.py``, ``docs/benchmarks.md``). The float64
    value cannot be had at the float32 cost: on NAS-Bench-201 #13291 (C=16, N=5, digits batch 64) float32 passes
    give 645.675 on one thread and 646.033 on two against float64's 641.797 (6.0e-3 / 6.6e-3 off), and float32
    passes with float64 statistics (the gradients cast before the mean and std) give 645.678, the same 6.0e-3 off:
    the rounding is in the float32 gradients themselves, whose two halves' difference the score divides by.

    Not in a shared pass: with train-mode BatchNorm a half-batch forward is not a slice of the full-batch
    forward, so the two halves cannot be read off the ``"loss"`` pass's backward.
    """
    n = batch.size
    if n < 2:
        raise MetricError(f"ZiCo needs a batch of at least 2 samples (two halves), got {n}")
    layers = [m for m in weight_layers(model) if m.weight.requires_grad]
    if not layers:
        raise MetricError(f"{type(model).__name__} has no trainable Conv2d/Linear weights to score")
    per_layer: list[list[torch.Tensor] | None] = [[] for _ in layers]
    task = batch.task  # never None: a Batch always carries its task (classification by default)
    for k in range(2):
        lo, hi = k * n // 2, (k + 1) * n // 2
        output = model(batch.inputs[lo:hi])
        task.check_output(output, hi - lo)  # type: ignore[union-attr]
        grads = torch.autograd.grad(task.loss_fn(output, batch.targets[lo:hi]),  # type: ignore[union-attr,index]
                                    [m.weight for m in layers], allow_unused=True)
        for i, g in enumerate(grads):
            slot = per_layer[i]
            if g is None or slot is None:
                per_layer[i] = None
            else:
                slot.append(g.detach().reshape(-1))
    return float(zico_of_gradients([s for s in per_layer if s is not None]))
