"""ntk_cond (HNAS): exact condition numbers of closed-form NTKs; singular NTKs give inf."""

from __future__ import annotations

import math

import pytest
import torch

from raynas.data.batch import Batch
from raynas.metrics._ntk import condition_number
from raynas.metrics.ntk_cond import ntk_cond
from raynas.metrics.registry import get_metric
from raynas.testing import linear_bn_classifier, linear_classifier


def test_linear_cond_closed_form() -> None:
    # Theta = [[2,1,0],[1,2,0],[0,0,5]]: eigenvalues 1, 3, 5
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 0.0]]).view(3, 2, 1, 1)
    batch = Batch(x, torch.tensor([0, 0, 1]), 2)
    assert ntk_cond(linear_classifier(2, 2), batch) == pytest.approx(5.0, rel=1e-6)


def test_same_label_pair() -> None:
    # Theta = X X^T + 1 = [[2,2],[2,3]]: eigenvalues (5 +- sqrt 17) / 2
    batch = Batch(torch.tensor([[1.0, 0.0], [1.0, 1.0]]).view(2, 2, 1, 1), torch.tensor([1, 1]), 3)
    expected = (5 + math.sqrt(17)) / (5 - math.sqrt(17))
    assert ntk_cond(linear_classifier(2, 3), batch) == pytest.approx(expected, rel=1e-6)


def test_bn_model_uses_linear_weight_only() -> None:
    batch = Batch(torch.tensor([[1.0, 0.0], [1.0, 1.0]]).view(2, 2, 1, 1), torch.tensor([0, 0]), 2)
    expected = (7 + 3 * math.sqrt(5)) / 2  # cond of [[1,1],[1,2]]
    assert ntk_cond(linear_bn_classifier().eval(), batch) == pytest.approx(expected, rel=1e-6)


def test_singular_ntk_is_inf() -> None:
    # no bias, same label: Theta = X X^T with x3 = x1 + x2 -> rank 2
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]).view(3, 2, 1, 1)
    batch = Batch(x, torch.zeros(3, dtype=torch.long), 2)
    assert ntk_cond(linear_classifier(2, 2, bias=False), batch) == math.inf
    assert condition_number(torch.zeros(2, 2, dtype=torch.float64)) == math.inf
    assert condition_number(torch.diag(torch.tensor([2.0, 8.0], dtype=torch.float64))) == 4.0


def test_spec() -> None:
    spec = get_metric("ntk_cond")
    assert spec.needs_labels and not spec.higher_is_better
