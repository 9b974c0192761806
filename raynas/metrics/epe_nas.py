"""epe_nas: per-class correlation score of the input Jacobians (EPE-NAS, as NAS-Bench-Suite-Zero computes it)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from raynas.data.batch import Batch
from raynas.errors import MetricError
from raynas.metrics.registry import register_metric

#: the regulariser ``k`` inside ``log(|corr| + k)``
K = 1e-5
#: above this many classes the reference switches to its normalised pairwise form (its ``n_classes > 100``)
MANY_CLASSES = 100


def _corrcoef(rows: torch.Tensor) -> torch.Tensor:
    """``np.corrcoef(rows)`` (rows are the variables), float64, clipped to [-1, 1]; NaN for a constant row."""
    x = rows - rows.mean(dim=1, keepdim=True)
    c = x @ x.T
    d = torch.sqrt(torch.diagonal(c))
    return (c / d[:, None] / d[None, :]).clamp(-1.0, 1.0)


def epe_score(jac: torch.Tensor, labels: torch.Tensor, n_classes: int) -> torch.Tensor:
    """The EPE-NAS score (0-dim float64) of ``jac [B, ...]`` grouped by ``labels [B]``; NaN propagates.

    Per class ``c`` present (in order of first appearance), ``s_c = sum_ij log(|corrcoef(J_c)_ij| + k)`` over
    the correlation matrix of that class's flattened Jacobian rows (a class with one sample: ``corrcoef`` of one
    variable is 1, so ``s_c = log(1 + k)``). Up to 100 classes the score is ``sum_c |s_c|``. Above, each ``s_c``
    is divided by its number of rows, single-sample classes are skipped (the reference's ``len()`` of a 0-d
    array raises inside its ``try`` and the class is dropped) and the score is
    ``sum_c sum_c' |s_c - s_c'| / (number of classes kept)``.
    """
    flat = jac.reshape(jac.shape[0], -1).to(torch.float64)
    order: list[int] = []
    for y in labels.tolist():
        if y not in order:
            order.append(y)
    many = n_classes > MANY_CLASSES
    per_class: list[torch.Tensor] = []
    for y in order:
        rows = flat[labels == y]
        if rows.shape[0] == 1:
            if many:
                continue
            x = rows[0] - rows[0].mean()
            corr = (x @ x) / (x @ x)  # corrcoef of a single variable: 1, NaN if it is constant
            s = torch.log(corr.abs() + K)
        else:
            s = torch.log(_corrcoef(rows).abs() + K).sum()
            if many:
                s = s / rows.shape[0]
        per_class.append(s)
    if not per_class:
        return torch.zeros((), dtype=torch.float64, device=flat.device)
    s_all = torch.stack(per_class)
    if not many:
        return s_all.abs().sum()
    return (s_all[:, None] - s_all[None, :]).abs().sum() / len(per_class)


def epe_nas_reduce(shared: Mapping[str, Any], batch: Batch) -> torch.Tensor:
    """The score of the shared ``input_jac`` (``d(sum of logits)/d inputs``) grouped by the batch's labels."""
    return epe_score(shared["input_jac"], batch.labels, batch.num_classes)


@register_metric(
    "epe_nas",
    needs="labels", needs_why="it groups the input Jacobians by class label",
    needs_labels=True,
    higher_is_better=True,
    pass_kind="loss",
    uses=("input_jac",),
    reduce=epe_nas_reduce,
    reference="Lopes, Alirezazadeh, Alexandre. EPE-NAS: Efficient Performance Estimation Without Training for "
    "Neural Architecture Search. ICANN 2021; automl/NASLib naslib/predictors/utils/pruners/measures/epe_nas.py "
    "(from VascoLopes/EPE-NAS search.py)",
)
def epe_nas(model: nn.Module, batch: Batch) -> float:
    """``sum_c |sum_ij log(|corrcoef(J_c)|_ij + 1e-5)|`` (up to 100 classes; see :func:`epe_score` above).

    ``J [B, C*H*W]``: row ``i`` is ``d(sum of all logits)/d x_i`` from one train-mode forward/backward with BN
    kept (NASLib's ``get_batch_jacobian``: ``y.backward(ones_like(y))``), grouped by the batch's labels; the
    number of classes that picks the formula is ``batch.num_classes`` (NASLib reads the logits' width
    ``y.shape[-1]``: the same number for every network raynas builds, whose classifier has the batch's classes).
    All in float64 (NASLib's ``np.corrcoef``). A constant Jacobian row (a network whose logits ignore a sample) makes the
    correlation NaN: status ``nan``, as NASLib's value is NaN there.
    """
    x = batch.inputs.detach().clone().requires_grad_(True)
    logits = model(x)
    if logits.dim() != 2:
        raise MetricError(f"model must return logits [B, K], got shape {tuple(logits.shape)}")
    (jac,) = torch.autograd.grad(logits.sum(), x, allow_unused=True)
    if jac is None:
        raise MetricError("the logits do not depend on the inputs")
    return float(epe_nas_reduce({"input_jac": jac}, batch))
