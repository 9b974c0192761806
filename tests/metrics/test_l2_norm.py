"""l2_norm: sum over Conv2d/Linear modules of ||W||_F (NASLib's l2_norm), data-free."""

from __future__ import annotations

import math

import torch
from torch import nn

from raynas.data.batch import Batch
from raynas.metrics import get_metric
from raynas.metrics.engine import compute_metrics
from raynas.testing import two_layer_linear


def _batch() -> Batch:
    return Batch(torch.randn(2, 2, 1, 1), torch.tensor([0, 1]), 2)


def test_sums_per_layer_frobenius_norms_not_one_global_norm() -> None:
    net = two_layer_linear([[3.0, 4.0], [0.0, 0.0]], [[1.0, 0.0], [0.0, 0.0]])
    (r,) = compute_metrics(lambda: net, _batch(), ["l2_norm"])
    assert r.status == "ok" and r.value == 6.0  # 5 + 1; the global norm would be sqrt(26)


def test_frozen_weights_count_biases_and_bn_do_not() -> None:
    conv = nn.Conv2d(2, 1, 1, bias=True)
    with torch.no_grad():
        conv.weight.fill_(2.0)
        conv.bias.fill_(100.0)
    conv.weight.requires_grad_(False)
    net = nn.Sequential(conv, nn.BatchNorm2d(1), nn.Flatten(), nn.Linear(1, 2, bias=False))
    with torch.no_grad():
        net[3].weight.copy_(torch.tensor([[0.0], [2.0]]))
    (r,) = compute_metrics(lambda: net, _batch(), ["l2_norm"])
    assert math.isclose(r.value, math.sqrt(8.0) + 2.0, rel_tol=1e-7)


def test_no_weight_layer_is_an_error() -> None:
    (r,) = compute_metrics(lambda: nn.Sequential(nn.Flatten()), _batch(), ["l2_norm"])
    assert r.status == "error" and "no Conv2d/Linear" in r.error


def test_spec_is_data_free() -> None:
    spec = get_metric("l2_norm")
    assert not spec.needs_data and not spec.needs_labels and spec.higher_is_better
