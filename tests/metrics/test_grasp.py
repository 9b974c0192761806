"""grasp: sum over Conv2d/Linear weights of -W ⊙ (H g), g = dL/dW, H the Hessian over the weights."""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.func import functional_call

from raynas.data.batch import Batch
from raynas.metrics import get_metric
from raynas.metrics.engine import compute_metrics
from raynas.testing import linear_net


def _score(net: nn.Module, batch: Batch) -> float:
    (r,) = compute_metrics(lambda: net, batch, ["grasp"])
    assert r.status == "ok", r.error
    return r.value


def test_hand_computed() -> None:
    # W = [[1, 0], [0, 0]], b = (0, 1), x = (1, 0): Wx = (1, 0), logits (1, 1), p = (1/2, 1/2), y = 0.
    # For one linear layer H V = S V x x^T with S = diag(p) - p p^T; g = u x^T with u = p - e_0 = (-1/2, 1/2),
    # so H g = |x|^2 (S u) x^T = (-1/4, 1/4) x^T and -sum W ⊙ Hg = -(S u) . (W x) = 1/4.
    net = linear_net([[1.0, 0.0], [0.0, 0.0]], [0.0, 1.0])
    batch = Batch(torch.tensor([1.0, 0.0]).reshape(1, 2, 1, 1), torch.tensor([0]), 2)
    assert math.isclose(_score(net, batch), 0.25, rel_tol=1e-6)


def test_closed_form_linear_batch() -> None:
    g = torch.Generator().manual_seed(3)
    w, b = torch.randn(3, 4, generator=g, dtype=torch.float64), torch.randn(3, generator=g, dtype=torch.float64)
    x, y = torch.randn(5, 4, generator=g, dtype=torch.float64), torch.tensor([0, 2, 1, 1, 0])
    p = F.softmax(x @ w.T + b, 1)
    grad = (p - F.one_hot(y, 3)).T @ x / 5  # [3, 4]
    hg = torch.zeros_like(w)
    for i in range(5):  # mean CE: H V = (1/B) sum_i S_i V x_i x_i^T
        s = torch.diag(p[i]) - torch.outer(p[i], p[i])
        hg += torch.outer(s @ grad @ x[i], x[i]) / 5
    expected = float(-(w * hg).sum())
    net = linear_net(w.tolist(), b.tolist())
    assert math.isclose(_score(net, Batch(x.float().reshape(5, 4, 1, 1), y, 3)), expected, rel_tol=1e-4)


def test_matches_functional_hvp_on_relu_mlp() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3)).double()
    batch = Batch(torch.randn(5, 4, 1, 1, dtype=torch.float64), torch.tensor([0, 2, 1, 1, 0]), 3)
    names = ["1.weight", "3.weight"]
    params = dict(net.named_parameters())

    def loss(*ws: torch.Tensor) -> torch.Tensor:
        out = functional_call(net, {**params, **dict(zip(names, ws))}, (batch.inputs,))
        return F.cross_entropy(out, batch.labels)

    ws = tuple(params[n].detach() for n in names)
    wg = tuple(t.clone().requires_grad_() for t in ws)
    g = torch.autograd.grad(loss(*wg), wg)
    _, hg = torch.autograd.functional.hvp(loss, ws, g)
    expected = float(sum(-(w * h).sum() for w, h in zip(ws, hg)))
    assert expected != 0.0
    # the engine runs grasp in float32: compare at float32 precision
    assert math.isclose(_score(net.float(), Batch(batch.inputs.float(), batch.labels, 3)), expected, rel_tol=1e-4)


def test_spec() -> None:
    spec = get_metric("grasp")
    assert spec.needs_labels and spec.mode == "train" and spec.higher_is_better and "Wang" in spec.reference
