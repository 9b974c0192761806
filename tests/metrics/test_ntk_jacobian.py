"""ntk_trace_jacobian / ntk_cond_jacobian: the per-sample-Jacobian NTK (B backward passes over one forward)."""

from __future__ import annotations

import math

import pytest
import torch

from raynas.data.batch import Batch
from raynas.metrics._ntk import conv_linear_params, per_sample_gradients, true_class_logit
from raynas.metrics.ntk_cond_jacobian import ntk_cond_jacobian
from raynas.metrics.ntk_trace_jacobian import jacobian_ntk, ntk_trace_jacobian
from raynas.metrics.registry import get_metric
from raynas.testing import linear_classifier, tiny_bn_convnet

X = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 0.0]]).view(3, 2, 1, 1)
Y = torch.tensor([0, 0, 1])
THETA = torch.tensor([[2.0, 1.0, 0.0], [1.0, 2.0, 0.0], [0.0, 0.0, 5.0]], dtype=torch.float64)


def test_linear_ntk_closed_form() -> None:
    torch.manual_seed(0)
    model = linear_classifier(2, 2)
    batch = Batch(X, Y, 2)
    assert torch.allclose(jacobian_ntk(model, batch), THETA, atol=1e-6)
    assert ntk_trace_jacobian(model, batch) == pytest.approx(math.sqrt(9.0 / 3.0), rel=1e-6)
    assert ntk_cond_jacobian(model, batch) == pytest.approx(5.0, rel=1e-6)  # eigenvalues 1, 3, 5


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



def test_specs() -> None:
    for name in ("ntk_trace_jacobian", "ntk_cond_jacobian"):
        spec = get_metric(name)
        assert spec.uses == ("hnas_jacobian_ntk",) and "variant" in spec.reference
    assert get_metric("ntk_trace_jacobian").higher_is_better and not get_metric("ntk_cond_jacobian").higher_is_better
