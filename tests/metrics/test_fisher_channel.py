"""fisher_channel: sum over Conv2d/Linear output channels of 0.5 * mean_b (sum_{h,w} a ⊙ dL/da)^2."""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from raynas.data.batch import Batch
from raynas.metrics import get_metric
from raynas.metrics.engine import compute_metrics
from raynas.testing import TinyConvNet, linear_net, two_layer_linear


def _score(net: nn.Module, batch: Batch) -> float:
    (r,) = compute_metrics(lambda: net, batch, ["fisher_channel"])
    assert r.status == "ok", r.error
    return r.value


def test_hand_computed_linear() -> None:
    # a = logits = (5, 5) at x = (4, -1); g = p - e_0 = (-1/2, 1/2); a*g = (-5/2, 5/2) -> 0.5 * (25/4 + 25/4)
    net = linear_net([[1.0, -1.0], [2.0, 3.0]], [0.0, 0.0])
    batch = Batch(torch.tensor([4.0, -1.0]).reshape(1, 2, 1, 1), torch.tensor([0]), 2)
    assert _score(net, batch) == 6.25


def test_two_layers_closed_form() -> None:
    w1, b1 = torch.tensor([[1.0, -2.0], [3.0, 0.5]]), torch.tensor([0.1, -0.2])
    w2, b2 = torch.tensor([[-1.0, 2.0], [0.5, 1.0]]), torch.tensor([0.3, 0.0])
    x, y = torch.tensor([[0.5, -1.0], [2.0, 1.0], [-1.0, 0.0]]), torch.tensor([1, 0, 0])
    a1 = x @ w1.T + b1
    a2 = a1 @ w2.T + b2
    g2 = (F.softmax(a2, 1) - F.one_hot(y, 2)) / 3  # dL/da2 for the mean CE over B = 3
    g1 = g2 @ w2  # dL/da1
    expected = float(sum(0.5 * ((a * g) ** 2).mean(0).sum() for a, g in [(a1, g1), (a2, g2)]))
    net = two_layer_linear(w1.tolist(), w2.tolist(), b1.tolist(), b2.tolist())
    assert math.isclose(_score(net, Batch(x.reshape(3, 2, 1, 1), y, 2)), expected, rel_tol=1e-5)


def test_conv_sums_over_positions_before_squaring() -> None:
    # Conv1x1(1 -> 2, no bias) -> global mean pool -> logits z[b, c] = w_c * mean(x_b).
    # dL/da[b, c, h, w] = u[b, c] / (B*H*W) with u = p - onehot, so sum_{h,w} a*g = u[b, c] * z[b, c] / B.
    conv = nn.Conv2d(1, 2, 1, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([1.5, -0.5]).reshape(2, 1, 1, 1))
    net = nn.Sequential(conv, nn.AdaptiveAvgPool2d(1), nn.Flatten())
    g = torch.Generator().manual_seed(4)
    x, y = torch.randn(4, 1, 3, 3, generator=g), torch.tensor([0, 1, 1, 0])
    z = x.mean((1, 2, 3))[:, None] * torch.tensor([1.5, -0.5])
    per = (F.softmax(z, 1) - F.one_hot(y, 2)) * z / 4
    expected = float(0.5 * (per**2).mean(0).sum())
    assert math.isclose(_score(net, Batch(x, y, 2)), expected, rel_tol=1e-5)


class _Residual(nn.Module):
    """Conv3x3 with a residual added in place (``y += x``) or out of place: the same function."""

    def __init__(self, inplace: bool):
        super().__init__()
        self.inplace = inplace
        self.conv = nn.Conv2d(2, 2, 3, padding=1)
        with torch.no_grad():
            self.conv.weight.copy_(torch.linspace(-1.0, 1.0, 36).reshape(2, 2, 3, 3))
            self.conv.bias.copy_(torch.tensor([0.2, -0.1]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        if self.inplace:
            y += x
        else:
            y = y + x
        return y.mean((2, 3))


def test_inplace_ops_after_the_layer_do_not_change_the_score() -> None:
    # an in-place op downstream must not overwrite the stored activation a (the conv output, not conv + x)
    batch = Batch(torch.randn(4, 2, 4, 4, generator=torch.Generator().manual_seed(5)), torch.tensor([0, 1, 1, 0]), 2)
    a = _score(_Residual(inplace=False), batch)
    assert a > 0 and math.isclose(a, _score(_Residual(inplace=True), batch), rel_tol=1e-6)
    conv_batch = Batch(torch.randn(4, 3, 6, 6, generator=torch.Generator().manual_seed(6)), torch.arange(4), 4)
    b = _score(TinyConvNet(bn=False, inplace=False), conv_batch)
    assert b > 0 and math.isclose(b, _score(TinyConvNet(bn=False, inplace=True), conv_batch), rel_tol=1e-6)


def test_spec() -> None:
    spec = get_metric("fisher_channel")
    assert spec.needs_labels and spec.mode == "train" and spec.higher_is_better and "Turner" in spec.reference
    assert spec.uses == get_metric("fisher").uses == ("fisher",)  # one shared quantity, two weightings
