"""swap: number of distinct sample-wise activation patterns of the ReLUs on 4-d feature maps (SWAP-Score)."""

from __future__ import annotations

import torch
from torch import nn

from raynas.data.batch import Batch
from raynas.metrics import get_metric
from raynas.metrics.engine import compute_metrics
from raynas.metrics.swap import pack_patterns
from raynas.testing import tiny_bn_convnet


def _score(net: nn.Module, x: torch.Tensor):  # type: ignore[no-untyped-def]
    (r,) = compute_metrics(lambda: net, Batch(x, torch.zeros(x.shape[0], dtype=torch.long), 2), ["swap"])
    return r


def relu_probe() -> nn.Module:
    """ReLU straight on the input map, then a pool and a classifier (whose ReLU-free head adds no unit)."""
    return nn.Sequential(nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(1, 2))


def test_hand_counted_patterns() -> None:
    # 3 samples, 4 units (one channel, 2x2): unit patterns over the samples (+, -, +), (+, -, +), (-, -, -),
    # (+, +, -) -> 3 distinct
    x = torch.tensor([[1.0, 2.0, -1.0, 3.0], [-1.0, -2.0, -1.0, 1.0], [5.0, 1.0, -3.0, -1.0]]).reshape(3, 1, 2, 2)
    r = _score(relu_probe(), x)
    assert r.status == "ok" and r.value == 3.0


def test_relu_on_vectors_is_not_counted() -> None:
    net = nn.Sequential(nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(1, 4), nn.ReLU(), nn.Linear(4, 2))
    x = torch.tensor([[1.0, 2.0, -1.0, 3.0], [-1.0, -2.0, -1.0, 1.0], [5.0, 1.0, -3.0, -1.0]]).reshape(3, 1, 2, 2)
    assert _score(net, x).value == 3.0


def test_packing_beyond_64_samples_equals_the_float_unique() -> None:
    g = torch.Generator().manual_seed(0)
    active = torch.rand(70, 500, generator=g) < 0.02  # sparse: many units share a pattern
    codes = pack_patterns(active)
    assert codes.shape == (500, 2)
    want = torch.unique(active.float().T, dim=0).shape[0]
    assert torch.unique(codes, dim=0).shape[0] == want and want < 500


def test_bn_convnet_counts_are_at_most_the_units_and_reproducible() -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(6, 3, 8, 8, generator=g)
    a, b = _score(tiny_bn_convnet(3, 2), x), _score(tiny_bn_convnet(3, 2), x)
    assert a.status == "ok" and a.value == b.value and 1 <= a.value <= 4 * 64 + 4 * 16


def test_no_relu_is_an_error() -> None:
    r = _score(nn.Sequential(nn.Flatten(), nn.Linear(4, 2)), torch.randn(2, 1, 2, 2))
    assert r.status == "error" and "no nn.ReLU" in r.error


def test_spec() -> None:
    spec = get_metric("swap")
    assert spec.needs_data and not spec.needs_labels and spec.mode == "train" and spec.bn == "keep"
