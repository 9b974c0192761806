"""grad_norm: sum over Conv2d/Linear weights of ||dL/dW||_2, L = mean cross-entropy."""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from raynas.data.batch import Batch
from raynas.metrics import get_metric
from raynas.metrics.engine import compute_metrics
from raynas.testing import linear_net, two_layer_linear


def _score(net: nn.Module, batch: Batch) -> float:
    (r,) = compute_metrics(lambda: net, batch, ["grad_norm"])
    assert r.status == "ok", r.error
    return r.value


def _one_sample(x: tuple[float, float], y: int) -> Batch:
    return Batch(torch.tensor([x]).reshape(1, 2, 1, 1), torch.tensor([y]), 2)


def test_hand_computed_equal_logits() -> None:
    # W x = (5, 5) at x = (4, -1): p = (1/2, 1/2), dL/dW = (p - e_0) x^T = [[-2, .5], [2, -.5]]
    net = linear_net([[1.0, -1.0], [2.0, 3.0]], [0.0, 0.0])
    assert math.isclose(_score(net, _one_sample((4.0, -1.0), 0)), math.sqrt(8.5), rel_tol=1e-6)


def test_hand_computed_zero_weights() -> None:
    # W = 0: p = (1/2, 1/2), dL/dW = (-.5, .5)^T (1, 2) -> ||.|| = sqrt(.25 + 1 + .25 + 1)
    net = linear_net([[0.0, 0.0], [0.0, 0.0]], [0.0, 0.0])
    assert math.isclose(_score(net, _one_sample((1.0, 2.0), 0)), math.sqrt(2.5), rel_tol=1e-6)


def test_closed_form_batch_excludes_bias() -> None:
    g = torch.Generator().manual_seed(1)
    w, b = torch.randn(3, 5, generator=g), torch.randn(3, generator=g)
    x, y = torch.randn(4, 5, generator=g), torch.tensor([0, 2, 1, 2])
    # dL/dW = (1/B) (softmax(XW^T + b) - onehot(y))^T X for the mean cross-entropy
    expected = ((F.softmax(x @ w.T + b, 1) - F.one_hot(y, 3)).T @ x / 4).norm()
    net = linear_net(w.tolist(), b.tolist())
    assert math.isclose(_score(net, Batch(x.reshape(4, 5, 1, 1), y, 3)), float(expected), rel_tol=1e-5)


def test_sums_per_layer_norms() -> None:
    net = two_layer_linear([[1.0, -2.0], [3.0, 0.5]], [[-1.0, 2.0], [0.5, 1.0]])
    batch = Batch(torch.tensor([[0.5, -1.0], [2.0, 1.0]]).reshape(2, 2, 1, 1), torch.tensor([1, 0]), 2)
    loss = F.cross_entropy(net(batch.inputs), batch.labels)
    g1, g2 = torch.autograd.grad(loss, [net[1].weight, net[2].weight])
    expected = float(g1.norm() + g2.norm())
    assert expected != float(torch.cat([g1.flatten(), g2.flatten()]).norm())  # the test can tell the two apart
    assert math.isclose(_score(net, batch), expected, rel_tol=1e-6)


def test_spec() -> None:
    spec = get_metric("grad_norm")
    assert spec.needs_labels and spec.needs_data and spec.mode == "train" and spec.bn == "keep"
