"""fisher (zero-cost-nas): each channel's Fisher estimate counted once per weight of that channel."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from raynas.data.batch import Batch
from raynas.metrics import get_metric
from raynas.metrics.engine import compute_metrics
from raynas.testing import TinyConvNet, linear_net


def _score(net: nn.Module, batch: Batch, name: str = "fisher", fused: bool = False) -> float:
    (r,) = compute_metrics(lambda: net, batch, [name], fused=fused)
    assert r.status == "ok", r.error
    return r.value


def test_hand_computed_linear_counts_each_channel_fan_in_times() -> None:
    # as in test_fisher_channel: per-channel terms 25/8 + 25/8 = 6.25; each channel has 2 weights -> 12.5
    net = linear_net([[1.0, -1.0], [2.0, 3.0]], [0.0, 0.0])
    batch = Batch(torch.tensor([4.0, -1.0]).reshape(1, 2, 1, 1), torch.tensor([0]), 2)
    assert _score(net, batch) == 12.5


class _ThreeToTwoToTwo(nn.Module):
    """Flatten -> Linear(3, 2) -> Linear(2, 2): fan-ins 3 and 2."""

    def __init__(self, w1: torch.Tensor, w2: torch.Tensor):
        super().__init__()
        self.l1, self.l2 = nn.Linear(3, 2, bias=False), nn.Linear(2, 2, bias=False)
        with torch.no_grad():
            self.l1.weight.copy_(w1)
            self.l2.weight.copy_(w2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.l2(self.l1(x.flatten(1)))


def test_layers_are_weighted_by_their_fan_in() -> None:
    w1 = torch.tensor([[1.0, -2.0, 0.5], [3.0, 0.5, -1.0]])
    w2 = torch.tensor([[-1.0, 2.0], [0.5, 1.0]])
    x, y = torch.tensor([[0.5, -1.0, 2.0], [2.0, 1.0, 0.0], [-1.0, 0.0, 1.0]]), torch.tensor([1, 0, 0])
    a1 = x @ w1.T
    a2 = a1 @ w2.T
    g2 = (F.softmax(a2, 1) - F.one_hot(y, 2)) / 3  # dL/da2 for the mean CE over B = 3
    g1 = g2 @ w2
    t1, t2 = (float(0.5 * ((a * g) ** 2).mean(0).sum()) for a, g in [(a1, g1), (a2, g2)])
    batch = Batch(x.reshape(3, 3, 1, 1), y, 2)
    net = _ThreeToTwoToTwo(w1, w2)
    assert math.isclose(_score(net, batch), 3 * t1 + 2 * t2, rel_tol=1e-5)
    assert math.isclose(_score(net, batch, "fisher_channel"), t1 + t2, rel_tol=1e-5)


@pytest.mark.parametrize("fused", [False, True])
def test_conv_fan_in_is_cin_times_kernel(fused: bool) -> None:
    # a single conv layer: fisher = C_in * kh * kw * fisher_channel (no other weight layer)
    conv = nn.Conv2d(3, 2, 3, padding=1)
    net = nn.Sequential(conv, nn.AdaptiveAvgPool2d(1), nn.Flatten())
    g = torch.Generator().manual_seed(4)
    batch = Batch(torch.randn(4, 3, 5, 5, generator=g), torch.tensor([0, 1, 1, 0]), 2)
    torch.manual_seed(0)
    assert math.isclose(_score(net, batch, fused=fused), 27 * _score(net, batch, "fisher_channel", fused=fused),
                        rel_tol=1e-6)


def test_fused_equals_unfused_on_a_conv_net() -> None:
    batch = Batch(torch.randn(4, 3, 6, 6, generator=torch.Generator().manual_seed(6)), torch.arange(4), 4)
    a = _score(TinyConvNet(bn=True, inplace=False), batch)
    assert a > 0 and a == pytest.approx(_score(TinyConvNet(bn=True, inplace=False), batch, fused=True), rel=1e-6)


def test_spec() -> None:
    spec = get_metric("fisher")
    assert spec.needs_labels and spec.mode == "train" and spec.higher_is_better
    assert "zero-cost-nas" in spec.reference and spec.pass_kind == "loss"
