"""plain: sum over Conv2d/Linear weights of dL/dW ⊙ W (signed), L = mean cross-entropy (NASLib's plain)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from raynas.data.batch import Batch
from raynas.metrics import get_metric
from raynas.metrics.engine import compute_metrics
from raynas.testing import linear_net


def test_closed_form_keeps_the_sign_and_excludes_the_bias() -> None:
    g = torch.Generator().manual_seed(2)
    w, b = torch.randn(3, 4, generator=g), torch.randn(3, generator=g)
    x, y = torch.randn(5, 4, generator=g), torch.tensor([0, 1, 2, 2, 1])
    grad = (F.softmax(x @ w.T + b, 1) - F.one_hot(y, 3)).T @ x / 5  # dL/dW of the mean CE
    expected = float((grad * w).sum())
    assert expected != float((grad * w).abs().sum())  # terms of both signs: the test tells plain from snip
    for fused in (False, True):
        (r,) = compute_metrics(lambda: linear_net(w.tolist(), b.tolist()), Batch(x.reshape(5, 4, 1, 1), y, 3),
                               ["plain"], fused=fused)
        assert r.status == "ok" and math.isclose(r.value, expected, rel_tol=1e-5), (fused, r)


def test_hand_computed() -> None:
    # W x = (5, 5) at x = (4, -1): p = (1/2, 1/2), dL/dW = [[-2, .5], [2, -.5]]; sum(dL/dW * W) = -2-.5+4-1.5
    (r,) = compute_metrics(lambda: linear_net([[1.0, -1.0], [2.0, 3.0]], [0.0, 0.0]),
                           Batch(torch.tensor([[4.0, -1.0]]).reshape(1, 2, 1, 1), torch.tensor([0]), 2), ["plain"])
    assert math.isclose(r.value, 0.0, abs_tol=1e-6)
    (r,) = compute_metrics(lambda: linear_net([[1.0, -1.0], [2.0, 4.0]], [0.0, 0.0]),
                           Batch(torch.tensor([[4.0, -1.0]]).reshape(1, 2, 1, 1), torch.tensor([0]), 2), ["plain"])
    # logits (5, 4): p0 = 1/(1+e^-1); dL/dW = (p - e0) x^T; sum(grad * W) = (p0 - 1)(4+1) + p1 (8-4)
    p0 = 1.0 / (1.0 + math.exp(-1.0))
    assert math.isclose(r.value, (p0 - 1) * 5 + (1 - p0) * 4, rel_tol=1e-5)


def test_spec() -> None:
    spec = get_metric("plain")
    assert spec.needs_labels and spec.needs_data and spec.bn == "keep" and spec.mode == "train"
    assert spec.pass_kind == "loss" and set(spec.uses) == {"weights", "weight_grads"}
