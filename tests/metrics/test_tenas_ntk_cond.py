"""tenas_ntk_cond: summed-logit NTK over every ``*weight`` parameter, BatchNorm weights included."""

from __future__ import annotations

import math

import pytest
import torch

from raynas.data.batch import Batch
from raynas.metrics._ntk import logit_sum, ntk, weight_params
from raynas.metrics.ntk_cond import ntk_cond
from raynas.metrics.registry import get_metric
from raynas.metrics.tenas_ntk_cond import tenas_ntk_cond
from raynas.testing import linear_bn_classifier, linear_classifier

X2 = torch.tensor([[1.0, 0.0], [1.0, 1.0]]).view(2, 2, 1, 1)
COND_XXT = (7 + 3 * math.sqrt(5)) / 2  # cond of X X^T = [[1,1],[1,2]]


def test_linear_closed_form_excludes_bias_and_ignores_labels() -> None:
    # d(sum_k logit_k)/dW = 1_K x^T -> Theta = K X X^T (bias excluded; with it: K (X X^T + 1))
    model = linear_classifier(2, 3)
    theta = ntk(model, Batch(X2, torch.tensor([0, 0]), 3), logit_sum, weight_params(model))
    assert torch.allclose(theta, 3 * torch.tensor([[1.0, 1.0], [1.0, 2.0]], dtype=torch.float64), atol=1e-6)
    for labels in ([0, 0], [2, 1]):
        assert tenas_ntk_cond(model, Batch(X2, torch.tensor(labels), 3)) == pytest.approx(COND_XXT, rel=1e-6)
    # HNAS's NTK on the same model and data differs: true-class logit, bias included
    assert ntk_cond(model, Batch(X2, torch.tensor([0, 0]), 3)) != pytest.approx(COND_XXT, rel=1e-3)


def test_batchnorm_weights_are_included() -> None:
    # eval BN (eps=0): Theta = X diag(2 + s^2) X^T = [[3,3],[3,9]] -> cond 3 + 2 sqrt 2;
    # without the BN weight it would be 2 X X^T -> cond (7 + 3 sqrt 5) / 2
    model = linear_bn_classifier((1.0, 2.0)).eval()
    names = [n for n, p in model.named_parameters() if any(p is q for q in weight_params(model))]
    assert names == ["1.weight", "2.weight"]
    batch = Batch(X2, torch.tensor([0, 1]), 2)
    assert tenas_ntk_cond(model, batch) == pytest.approx(3 + 2 * math.sqrt(2), rel=1e-6)
    linear_only = ntk(model, batch, logit_sum, [model[1].weight])
    assert float(torch.linalg.cond(linear_only)) == pytest.approx(COND_XXT, rel=1e-6)


def test_spec() -> None:
    spec = get_metric("tenas_ntk_cond")
    assert not spec.higher_is_better and "TE-NAS" in spec.reference
