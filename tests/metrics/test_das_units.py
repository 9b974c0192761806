"""das_units: N_A, the number of ReLU activation units per sample."""

from __future__ import annotations

import torch

from raynas.data.batch import Batch
from raynas.metrics.das_units import das_units
from raynas.metrics.registry import get_metric
from raynas.testing import tiny_bn_convnet, two_relu_mlp


def test_units_of_mlp() -> None:
    x = torch.randn(4, 2, 1, 1)
    assert das_units(two_relu_mlp(), Batch(x, torch.zeros(4, dtype=torch.long), 2)) == 3.0


def test_units_of_conv_net_scale_with_resolution_not_values() -> None:
    model = tiny_bn_convnet(3, 4, width=4)
    labels = torch.zeros(2, dtype=torch.long)
    # ReLU inputs [4, H, W] and [4, ceil(H/2), ceil(W/2)] per sample
    assert das_units(model, Batch(torch.randn(2, 3, 8, 8), labels, 4)) == 4 * 64 + 4 * 16
    assert das_units(model, Batch(torch.randn(2, 3, 3, 3), labels, 4)) == 4 * 9 + 4 * 4
    assert das_units(model, Batch(torch.zeros(2, 3, 3, 3), labels, 4)) == 4 * 9 + 4 * 4


def test_spec() -> None:
    spec = get_metric("das_units")
    assert not spec.needs_labels and spec.higher_is_better
