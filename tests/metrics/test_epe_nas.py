"""epe_nas: per-class log-|corrcoef| of the input Jacobians (NASLib's EPE-NAS), against numpy's corrcoef."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from raynas.data.batch import Batch
from raynas.metrics import get_metric
from raynas.metrics.engine import compute_metrics
from raynas.metrics.epe_nas import K, epe_score
from raynas.testing import linear_net, tiny_bn_convnet


def _numpy_score(jac: np.ndarray, labels: np.ndarray, n_classes: int) -> float:
    """The paper's formula written with numpy (classes in order of first appearance)."""
    scores = []
    for c in dict.fromkeys(labels.tolist()):
        rows = jac[labels == c]
        if rows.shape[0] == 1:
            if n_classes > 100:
                continue
            scores.append(math.log(1.0 + K))
            continue
        s = float(np.sum(np.log(np.abs(np.corrcoef(rows)) + K)))
        scores.append(s / rows.shape[0] if n_classes > 100 else s)
    if n_classes <= 100:
        return float(sum(abs(s) for s in scores))
    return float(sum(abs(a - b) for a in scores for b in scores) / len(scores))


@pytest.mark.parametrize("n_classes", [10, 120])
def test_score_equals_numpy_corrcoef(n_classes: int) -> None:
    g = torch.Generator().manual_seed(0)
    jac = torch.randn(9, 2, 3, 3, generator=g)
    labels = torch.tensor([3, 1, 3, 0, 1, 3, 7, 0, 1])  # classes of 3, 3, 2 samples and one single sample
    got = float(epe_score(jac, labels, n_classes))
    want = _numpy_score(jac.reshape(9, -1).double().numpy(), labels.numpy(), n_classes)
    assert math.isclose(got, want, rel_tol=1e-12)


def test_identical_jacobians_give_the_count_of_pairs() -> None:
    # a linear net without bias: every sample's Jacobian is sum_k W_k, so every correlation is 1
    net = linear_net([[1.0, -2.0, 0.5], [0.0, 3.0, 1.0]], [0.0, 0.0])
    x = torch.tensor([[1.0, 2.0, 3.0], [-1.0, 0.0, 2.0], [4.0, 1.0, 0.0], [2.0, 2.0, 2.0]]).reshape(4, 3, 1, 1)
    (r,) = compute_metrics(lambda: net, Batch(x, torch.tensor([0, 0, 1, 1]), 2), ["epe_nas"])
    assert r.status == "ok" and math.isclose(r.value, 2 * 4 * math.log(1 + K), rel_tol=1e-9)


def test_constant_jacobian_row_is_status_nan() -> None:
    net = linear_net([[0.0, 0.0], [0.0, 0.0]], [1.0, 0.0])  # logits ignore the input: zero Jacobians
    (r,) = compute_metrics(lambda: net, Batch(torch.randn(4, 2, 1, 1), torch.tensor([0, 0, 1, 1]), 2), ["epe_nas"])
    assert r.status == "nan" and r.value is None


def test_fused_equals_unfused_on_a_bn_convnet() -> None:
    g = torch.Generator().manual_seed(1)
    batch = Batch(torch.randn(8, 3, 8, 8, generator=g), torch.tensor([0, 1, 2, 3, 0, 1, 2, 2]), 4)
    (a,) = compute_metrics(lambda: tiny_bn_convnet(3, 4), batch, ["epe_nas"], seed=2)
    (b,) = compute_metrics(lambda: tiny_bn_convnet(3, 4), batch, ["epe_nas"], seed=2, fused=True)
    assert a.status == b.status == "ok" and b.value == pytest.approx(a.value, rel=1e-9)


def test_no_input_dependence_is_an_error() -> None:
    class Const(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.b = nn.Parameter(torch.zeros(2))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.b.expand(x.shape[0], 2)

    (r,) = compute_metrics(Const, Batch(torch.randn(2, 1, 1, 1), torch.tensor([0, 1]), 2), ["epe_nas"])
    assert r.status == "error" and "do not depend on the inputs" in r.error


def test_spec() -> None:
    spec = get_metric("epe_nas")
    assert spec.needs_labels and spec.mode == "train" and spec.pass_kind == "loss" and spec.uses == ("input_jac",)
