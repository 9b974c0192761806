"""das_distinguish: log|det(K_H / N_A)| pinned by hand."""

from __future__ import annotations

import math

import pytest
import torch

from raynas.data.batch import Batch
from raynas.metrics.das_distinguish import das_distinguish
from raynas.metrics.das_units import das_units
from raynas.metrics.naswot import naswot
from raynas.metrics.registry import get_metric
from raynas.testing import tiny_bn_convnet, two_relu_mlp

X3 = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, -1.0]]).view(3, 2, 1, 1)


def test_value_by_hand() -> None:
    # K_H = [[3,1,0],[1,3,2],[0,2,3]], det 12, N_A = 3 -> det(K_H / 3) = 12 / 27
    batch = Batch(X3, torch.zeros(3, dtype=torch.long), 2)
    assert das_distinguish(two_relu_mlp(), batch) == pytest.approx(math.log(4.0 / 9.0), abs=1e-12)


def test_decomposition_of_naswot() -> None:
    torch.manual_seed(1)
    model = tiny_bn_convnet(3, 4)
    batch = Batch(torch.randn(6, 3, 8, 8), torch.zeros(6, dtype=torch.long), 4)
    d, u, w = das_distinguish(model, batch), das_units(model, batch), naswot(model, batch)
    assert d <= 1e-9  # Hadamard: unit-diagonal PSD kernel has det <= 1
    assert w == pytest.approx(d + batch.size * math.log(u), rel=1e-12)


def test_spec() -> None:
    spec = get_metric("das_distinguish")
    assert not spec.needs_labels and spec.higher_is_better and "DAS" in spec.reference
