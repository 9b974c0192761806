"""Zero-cost proxies (group A) through the engine on a small conv net with BatchNorm."""

from __future__ import annotations

import math

import torch

from raynas.data.batch import Batch
from raynas.metrics.engine import compute_metrics
from raynas.testing import TinyConvNet

NAMES = ["params", "flops", "grad_norm", "snip", "grasp", "fisher", "synflow", "jacob_cov"]


def test_all_finite_and_reproducible() -> None:
    g = torch.Generator().manual_seed(0)
    batch = Batch(torch.randn(6, 3, 8, 8, generator=g), torch.tensor([0, 1, 2, 3, 0, 1]), 4)
    first = compute_metrics(TinyConvNet, batch, NAMES, seed=5)
    second = compute_metrics(TinyConvNet, batch, NAMES, seed=5)
    for r in first:
        assert r.status == "ok", (r.metric, r.error)
        assert math.isfinite(r.value)
    assert [r.value for r in first] == [r.value for r in second]
    values = {r.metric: r.value for r in first}
    assert values["params"] == 292.0 and values["flops"] == 9232.0
    for name in ["grad_norm", "snip", "fisher", "synflow"]:
        assert values[name] > 0, name
