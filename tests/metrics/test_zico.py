"""ZiCo: the formula over the batch's two halves, float64, and its statuses."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from raynas.data.batch import Batch
from raynas.metrics import get_metric
from raynas.metrics.engine import compute_metrics
from raynas.metrics.zico import zico_of_gradients
from raynas_tests.nb201 import tiny_nb201


def _batch(n: int = 8, seed: int = 0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    return Batch(torch.randn(n, 3, 8, 8, generator=g), torch.arange(n) % 4, 4)


def test_formula_on_two_gradients() -> None:
    g1, g2 = torch.tensor([1.0, -2.0, 3.0, 0.5]), torch.tensor([3.0, -2.0, 1.0, -0.5])
    # per weight: mean|g| / std over the two (std = |g1 - g2| / 2), the weight with equal gradients skipped
    expected = math.log(2 / 1 + 2 / 1 + 0.5 / 0.5)
    h1, h2 = torch.tensor([[1.0, 2.0]]), torch.tensor([[2.0, 2.0]])
    expected += math.log(1.5 / 0.5)
    got = zico_of_gradients([[g1, g2], [h1.reshape(-1), h2.reshape(-1)]])
    assert float(got) == pytest.approx(expected, rel=1e-12)


def test_metric_uses_the_two_halves_of_the_batch() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 6), nn.ReLU(), nn.Linear(6, 4))
    b = _batch()
    grads = []
    for lo, hi in ((0, 4), (4, 8)):
        m = net.double()
        loss = F.cross_entropy(m(b.inputs[lo:hi].double()), b.labels[lo:hi])
        grads.append([g.numpy().reshape(-1) for g in torch.autograd.grad(loss, [m[1].weight, m[3].weight])])
    expected = 0.0
    for layer in range(2):
        a = np.stack([grads[0][layer], grads[1][layer]])
        std, mean = a.std(axis=0), np.abs(a).mean(axis=0)
        expected += math.log(np.sum(mean[std != 0] / std[std != 0]))
    (r,) = compute_metrics(lambda: net.float(), b, ["zico"])
    assert r.status == "ok" and r.value == pytest.approx(expected, rel=1e-9)


def test_constant_logits_are_a_nan_status_and_one_sample_an_error() -> None:
    none = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
    (r,) = compute_metrics(lambda: tiny_nb201(none, C=4, N=1), _batch(), ["zico"])
    assert r.status == "nan" and "undefined" in r.error
    (r,) = compute_metrics(lambda: tiny_nb201(C=4, N=1), _batch().head(1), ["zico"])
    assert r.status == "error" and "at least 2" in r.error


def test_metadata_float64_and_fused_equal() -> None:
    spec = get_metric("zico")
    assert spec.dtype == torch.float64 and spec.needs_labels and spec.pass_kind == "own"
    plain = compute_metrics(lambda: tiny_nb201(C=4, N=1), _batch(), ["zico", "grad_norm"], seed=1)
    fast = compute_metrics(lambda: tiny_nb201(C=4, N=1), _batch(), ["zico", "grad_norm"], seed=1, fused=True)
    assert plain[0].value == fast[0].value and plain[0].status == "ok"
