"""das: alpha * distinguish + beta * log(units); defaults and the NASWOT special case."""

from __future__ import annotations

import math

import pytest
import torch

from raynas.data.batch import Batch
from raynas.errors import MetricError
from raynas.metrics import das as das_module
from raynas.metrics.das import das, das_score
from raynas.metrics.das_distinguish import das_distinguish
from raynas.metrics.das_units import das_units
from raynas.metrics.naswot import naswot
from raynas.metrics.registry import get_metric
from raynas.testing import tiny_bn_convnet, two_relu_mlp

X3 = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, -1.0]]).view(3, 2, 1, 1)


def test_das_score_formula() -> None:
    assert das_score(-2.0, math.e**3, alpha=0.5, beta=2.0) == pytest.approx(-1.0 + 6.0)
    assert das_score(-2.0, 1.0) == pytest.approx(-2.0 * das_module.DEFAULT_ALPHA)
    with pytest.raises(MetricError):
        das_score(0.0, 0.0)


def test_registered_das_uses_defaults() -> None:
    assert (das_module.DEFAULT_ALPHA, das_module.DEFAULT_BETA) == (1.0, 1.0)
    batch = Batch(X3, torch.zeros(3, dtype=torch.long), 2)
    # log(12/27) + log(3) = log(4/3)
    assert das(two_relu_mlp(), batch) == pytest.approx(math.log(4.0 / 3.0), abs=1e-12)


def test_beta_equal_batch_size_recovers_naswot() -> None:
    torch.manual_seed(2)
    model = tiny_bn_convnet(3, 4)
    batch = Batch(torch.randn(5, 3, 8, 8), torch.zeros(5, dtype=torch.long), 4)
    d, u = das_distinguish(model, batch), das_units(model, batch)
    assert das_score(d, u, alpha=1.0, beta=batch.size) == pytest.approx(naswot(model, batch), rel=1e-12)
    assert das(model, batch) == pytest.approx(das_score(d, u), rel=1e-12)


def test_spec() -> None:
    spec = get_metric("das")
    assert not spec.needs_labels and spec.higher_is_better
