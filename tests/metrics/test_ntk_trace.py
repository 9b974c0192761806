"""ntk_trace (HNAS): closed-form NTK of a linear classifier; BN parameters excluded; one-backward rows."""

from __future__ import annotations

import math

import pytest
import torch

from raynas.data.batch import Batch
from raynas.metrics._ntk import conv_linear_params, per_sample_gradients, true_class_logit
from raynas.metrics._ntk_decomposed import capture_layer_calls, decomposed_ntk
from raynas.metrics.ntk_trace import hnas_ntk, ntk_trace
from raynas.metrics.registry import get_metric
from raynas.errors import MetricError
from raynas.metrics.ntk_trace_jacobian import jacobian_ntk
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


def _rows_by_autograd(model: torch.nn.Module, batch: Batch) -> torch.Tensor:
    """Per-sample Jacobian rows of the conv/linear params, computed one sample at a time (no BN coupling)."""
    params = conv_linear_params(model)
    return per_sample_gradients(model, batch, true_class_logit, params, method="loop")


class _ConvZoo(torch.nn.Module):
    """Strided, dilated, grouped and biased convs, a Linear applied to a 3-d tensor, and one conv used twice."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = torch.nn.Conv2d(3, 4, 3, stride=2, padding=1)
        self.c2 = torch.nn.Conv2d(4, 4, 3, padding=2, dilation=2, groups=2, bias=False)
        self.shared = torch.nn.Conv2d(4, 4, 1)
        self.tok = torch.nn.Linear(4, 5)
        self.head = torch.nn.Linear(5, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.c1(x))
        h = self.shared(torch.tanh(self.shared(self.c2(h))))  # weight sharing: rows sum over the two calls
        t = self.tok(h.flatten(2).transpose(1, 2))  # [B, L, 5]
        return self.head(torch.tanh(t).mean(1))


def test_one_backward_rows_equal_per_sample_jacobians_without_batch_coupling() -> None:
    # without BatchNorm the samples do not interact, so HNAS's one-backward rows are the per-sample Jacobians
    torch.manual_seed(0)
    model = _ConvZoo()
    batch = Batch(torch.randn(5, 3, 7, 7), torch.tensor([0, 1, 2, 1, 0]), 3)
    rows = _rows_by_autograd(model, batch).double()
    assert torch.allclose(hnas_ntk(model, batch), rows @ rows.T, rtol=1e-5, atol=1e-6)
    assert torch.allclose(hnas_ntk(model, batch), jacobian_ntk(model, batch), rtol=1e-5, atol=1e-6)


def test_train_mode_bn_rows_are_shares_of_one_batch_gradient() -> None:
    # with BN in train mode the two definitions differ; HNAS's rows add up to the batch gradient of the sum
    torch.manual_seed(3)
    model = tiny_bn_convnet(3, 4).train()
    batch = Batch(torch.randn(4, 3, 6, 6), torch.tensor([0, 1, 2, 3]), 4)
    with capture_layer_calls(model) as calls:
        logits = model(batch.inputs)
    scalars = true_class_logit(logits, batch)
    theta = decomposed_ntk(calls, scalars, retain_graph=True)
    # sum_ij Theta_ij = |sum_i g_i|^2 = |d S / d theta|^2
    total = torch.autograd.grad(scalars.sum(), conv_linear_params(model))
    assert float(theta.sum()) == pytest.approx(float(sum((t.double() ** 2).sum() for t in total)), rel=1e-5)
    assert not torch.allclose(theta, jacobian_ntk(model, batch), rtol=1e-2)
    eval_model = model.eval()  # eval-mode BN: no coupling, the definitions agree
    assert torch.allclose(hnas_ntk(eval_model, batch), jacobian_ntk(eval_model, batch), rtol=1e-5, atol=1e-7)


def test_unsupported_layers_are_an_error_not_a_silent_omission() -> None:
    model = torch.nn.Sequential(torch.nn.Conv1d(3, 2, 1), torch.nn.Flatten(), torch.nn.Linear(2, 2))
    with pytest.raises(MetricError, match="Conv1d"):
        with capture_layer_calls(model):
            pass


def test_spec() -> None:
    spec = get_metric("ntk_trace")
    assert spec.needs_labels and spec.higher_is_better and "Shu" in spec.reference


def test_a_frozen_first_layer_is_left_out_not_an_error() -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 2, 1), torch.nn.Flatten(), torch.nn.Linear(2 * 4, 2))
    for p in model[0].parameters():
        p.requires_grad_(False)
    batch = Batch(torch.randn(3, 3, 2, 2), torch.tensor([0, 1, 0]), 2)
    assert torch.allclose(hnas_ntk(model, batch), jacobian_ntk(model, batch), rtol=1e-5, atol=1e-7)
