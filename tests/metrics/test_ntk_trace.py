"""ntk_trace (HNAS): closed-form NTK of a linear classifier; BN parameters excluded; batch-forward gradients."""

from __future__ import annotations

import math

import pytest
import torch

from raynas.data.batch import Batch
from raynas.metrics._ntk import conv_linear_params, per_sample_gradients, true_class_logit
from raynas.metrics.ntk_trace import hnas_ntk, ntk_trace
from raynas.metrics.registry import get_metric
from raynas.testing import linear_bn_classifier, linear_classifier, tiny_bn_convnet

# Theta_ij = [y_i == y_j] (x_i . x_j + 1) for the true-class logit of a Linear layer with bias
X = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 0.0]]).view(3, 2, 1, 1)
Y = torch.tensor([0, 0, 1])
THETA = torch.tensor([[2.0, 1.0, 0.0], [1.0, 2.0, 0.0], [0.0, 0.0, 5.0]], dtype=torch.float64)


def test_linear_ntk_closed_form() -> None:
    torch.manual_seed(0)  # the NTK of a linear model does not depend on its weights
    model = linear_classifier(2, 2)
    batch = Batch(X, Y, 2)
    assert torch.allclose(hnas_ntk(model, batch), THETA, atol=1e-6)
    assert ntk_trace(model, batch) == pytest.approx(math.sqrt(9.0 / 3.0), rel=1e-6)


def test_batchnorm_parameters_are_excluded() -> None:
    # eval-mode BN with eps=0 is exactly gamma*z+beta; HNAS differentiates only the Linear weight:
    # Theta = X X^T = [[1,1],[1,2]] (including gamma would add x_i0 x_j0)
    model = linear_bn_classifier().eval()
    batch = Batch(torch.tensor([[1.0, 0.0], [1.0, 1.0]]).view(2, 2, 1, 1), torch.tensor([0, 0]), 2)
    assert len(conv_linear_params(model)) == 1
    assert ntk_trace(model, batch) == pytest.approx(math.sqrt(3.0 / 2.0), rel=1e-6)


def test_rows_are_gradients_of_the_batch_forward() -> None:
    # with BN in train mode samples interact; rows of G must sum to the gradient of sum_i f_{y_i}(x_i)
    # computed from the same batch forward (single-sample forwards would not)
    torch.manual_seed(3)
    model = tiny_bn_convnet(3, 4).train()
    batch = Batch(torch.randn(4, 3, 6, 6), torch.tensor([0, 1, 2, 3]), 4)
    params = conv_linear_params(model)
    g = per_sample_gradients(model, batch, true_class_logit, params)
    assert g.shape == (4, sum(p.numel() for p in params))
    total = torch.autograd.grad(true_class_logit(model(batch.inputs), batch).sum(), params)
    assert torch.allclose(g.sum(0), torch.cat([t.reshape(-1) for t in total]), atol=1e-5)
    assert all(p.grad is None for p in model.parameters())  # autograd.grad leaves .grad alone


def test_spec() -> None:
    spec = get_metric("ntk_trace")
    assert spec.needs_labels and spec.higher_is_better and "Shu" in spec.reference
