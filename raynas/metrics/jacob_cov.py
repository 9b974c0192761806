"""jacob_cov: eigenvalue score of the correlation of input Jacobians (NASWOT v1)."""

from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn as nn

from raynas.data.batch import Batch
from raynas.errors import MetricError
from raynas.metrics.registry import register_metric

#: regulariser ``k`` of the eigenvalue score (Mellor et al. 2020, v1)
K = 1e-5


def jacob_cov_score(jac: torch.Tensor) -> torch.Tensor:
    """The eigenvalue score (0-dim float64) of the input Jacobian ``jac [B, ...]``; NaN if ``corrcoef`` is not finite.

    Branch-free (no host sync): a non-finite correlation matrix is swapped for the identity before ``eigvalsh``
    (which may fail to converge on NaN) and the result replaced by NaN afterwards.
    """
    b = int(jac.shape[0])
    corr = torch.corrcoef(jac.reshape(b, -1).to(torch.float64))
    finite = torch.isfinite(corr).all()
    v = torch.linalg.eigvalsh(torch.where(finite, corr, torch.eye(b, dtype=corr.dtype, device=corr.device)))
    score = -(torch.log(v + K) + 1.0 / (v + K)).sum()
    return torch.where(finite, score, torch.full_like(score, float("nan")))


def jacob_cov_reduce(shared: Mapping[str, Any], batch: Batch) -> torch.Tensor:
    """The score of the shared ``shared["input_jac"] [B, C, H, W]`` (``d(sum of logits)/d inputs``)."""
    check_batch(batch)
    return jacob_cov_score(shared["input_jac"])


def check_batch(batch: Batch) -> None:
    """jacob_cov's correlation needs at least two samples."""
    if batch.size < 2:
        raise MetricError(f"jacob_cov needs a batch of at least 2 samples, got {batch.size}")


@register_metric(
    "jacob_cov",
    needs="nothing",
    batchable=True,
    needs_labels=False,
    higher_is_better=True,
    pass_kind="loss",
    uses=("input_jac",),
    reduce=jacob_cov_reduce,
    reference="Mellor, Turner, Storkey, Crowley. Neural Architecture Search without Training. arXiv:2006.04647v1 "
    "(2020)",
)
def jacob_cov(model: nn.Module, batch: Batch) -> float:
    """``-sum_i (log(v_i + k) + 1/(v_i + k))``, ``v = eig(corrcoef(J))``, ``k = 1e-5`` (Mellor et al. 2020, v1).

    ``J [B, D]`` (``D = C*H*W``): row ``i`` is ``d(sum of all logits)/d x_i``, flattened, from one backward pass
    (train mode). For a network that treats samples independently (no BN in train mode) this is
    ``d(sum_k logits[i, k])/d x_i``; with train-mode BN it includes the cross-sample terms, as Mellor's code does.
    ``C = corrcoef(J) [B, B]`` (rows are the variables) and ``v`` its eigenvalues (symmetric solver), all in
    float64. A constant Jacobian row makes ``C`` undefined (NaN), which the engine records as status ``nan``.
    """
    check_batch(batch)
    x = batch.inputs.detach().clone().requires_grad_(True)
    logits = model(x)
    (jac,) = torch.autograd.grad(logits.sum(), x, allow_unused=True)
    if jac is None:
        raise MetricError("the logits do not depend on the inputs")
    return float(jacob_cov_reduce({"input_jac": jac}, batch))
