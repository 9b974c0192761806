"""snip: sum over Conv2d/Linear weights of |W ⊙ dL/dW|."""

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
    (r,) = compute_metrics(lambda: net, batch, ["snip"])
    assert r.status == "ok", r.error
    return r.value


def test_hand_computed() -> None:
    # x = (4, -1): logits (5, 5), p = (1/2, 1/2), y = 0: dL/dW = [[-2, .5], [2, -.5]]
    # |W ⊙ dL/dW| = |[[-2, -.5], [4, -1.5]]| -> 8
    net = linear_net([[1.0, -1.0], [2.0, 3.0]], [0.0, 0.0])
    batch = Batch(torch.tensor([4.0, -1.0]).reshape(1, 2, 1, 1), torch.tensor([0]), 2)
    assert _score(net, batch) == 8.0


def test_closed_form_batch_excludes_bias() -> None:
    g = torch.Generator().manual_seed(2)
    w, b = torch.randn(3, 5, generator=g), torch.randn(3, generator=g)
    x, y = torch.randn(4, 5, generator=g), torch.tensor([1, 1, 0, 2])
    grad = (F.softmax(x @ w.T + b, 1) - F.one_hot(y, 3)).T @ x / 4
    expected = float((w * grad).abs().sum())
    net = linear_net(w.tolist(), b.tolist())
    assert math.isclose(_score(net, Batch(x.reshape(4, 5, 1, 1), y, 3)), expected, rel_tol=1e-5)


def test_two_layers_sum_of_absolute_values() -> None:
    net = two_layer_linear([[1.0, -2.0], [3.0, 0.5]], [[-1.0, 2.0], [0.5, 1.0]], b1=[0.1, -0.2])
    batch = Batch(torch.tensor([[0.5, -1.0], [2.0, 1.0]]).reshape(2, 2, 1, 1), torch.tensor([1, 0]), 2)
    loss = F.cross_entropy(net(batch.inputs), batch.labels)
    ws = [net[1].weight, net[2].weight]
    expected = sum(float((w.detach() * g).abs().sum()) for w, g in zip(ws, torch.autograd.grad(loss, ws)))
    assert math.isclose(_score(net, batch), expected, rel_tol=1e-6)


def test_spec() -> None:
    spec = get_metric("snip")
    assert spec.needs_labels and spec.mode == "train" and spec.higher_is_better and "SNIP" in spec.reference


def test_frozen_weights_skipped_and_no_layers_is_error() -> None:
    net = two_layer_linear([[1.0, -2.0], [3.0, 0.5]], [[-1.0, 2.0], [0.5, 1.0]])
    net[1].requires_grad_(False)
    batch = Batch(torch.tensor([[0.5, -1.0], [2.0, 1.0]]).reshape(2, 2, 1, 1), torch.tensor([1, 0]), 2)
    loss = F.cross_entropy(net(batch.inputs), batch.labels)
    (g2,) = torch.autograd.grad(loss, [net[2].weight])
    assert math.isclose(_score(net, batch), float((net[2].weight.detach() * g2).abs().sum()), rel_tol=1e-6)
    (r,) = compute_metrics(lambda: nn.Sequential(nn.Flatten()), batch, ["snip"])
    assert r.status == "error" and "MetricError" in r.error
