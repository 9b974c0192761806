"""Activation-pattern and NTK metrics through the engine on a small conv net with BatchNorm."""

from __future__ import annotations

import math

import torch

from raynas.data.batch import Batch
from raynas.metrics.engine import compute_metrics
from raynas.testing import tiny_bn_convnet

NAMES = ["naswot", "das", "das_units", "das_distinguish", "linear_regions", "ntk_trace", "ntk_cond", "tenas_ntk_cond"]


def test_all_finite_and_reproducible() -> None:
    g = torch.Generator().manual_seed(0)
    batch = Batch(torch.randn(6, 3, 8, 8, generator=g), torch.tensor([0, 1, 2, 3, 0, 1]), 4)
    first = compute_metrics(lambda: tiny_bn_convnet(3, 4), batch, NAMES, seed=5)
    second = compute_metrics(lambda: tiny_bn_convnet(3, 4), batch, NAMES, seed=5)
    for r in first:
        assert r.status == "ok", (r.metric, r.error)
        assert math.isfinite(r.value)
    assert [r.value for r in first] == [r.value for r in second]
    values = {r.metric: r.value for r in first}
    assert values["das_units"] == 4 * 64 + 4 * 16
    assert values["ntk_trace"] > 0 and values["ntk_cond"] >= 1 and values["tenas_ntk_cond"] >= 1
    assert 1 <= values["linear_regions"] <= 3000
