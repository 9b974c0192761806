"""Progress inside one arch (issue 29 item 4): ``compute_metrics(..., on_metric=...)`` says which metric(s) start,
and how many of the arch's metrics are finished, before each one runs (unfused: per metric; fused: per pass)."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from raynas.data.batch import Batch
from raynas.metrics import engine
from raynas.metrics.engine import compute_metrics
from raynas.metrics.registry import MetricSpec
from raynas.registry import Registry
from raynas.testing import TinyConvNet

BATCH = Batch(torch.randn(8, 3, 6, 6, generator=torch.Generator().manual_seed(0)), torch.arange(8) % 4, 4)


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> Registry[MetricSpec]:
    reg: Registry[MetricSpec] = Registry("metric")
    monkeypatch.setattr(engine, "get_metric", reg.get)
    return reg


@pytest.mark.parametrize("fused", [False, True])
def test_on_metric_is_called_before_each_metric_runs(fakes: Registry[MetricSpec], fused: bool) -> None:
    events: list[Any] = []
    for name in ("a", "b", "c"):
        fakes.add(name, MetricSpec(name, lambda m, b, name=name: events.append(("run", name)) or 1.0))
    results = compute_metrics(TinyConvNet, BATCH, ["a", "b", "c"], fused=fused,
                              on_metric=lambda names, done, total: events.append(("start", names, done, total)))
    assert [r.status for r in results] == ["ok"] * 3
    assert events == [("start", ("a",), 0, 3), ("run", "a"), ("start", ("b",), 1, 3), ("run", "b"),
                      ("start", ("c",), 2, 3), ("run", "c")]


def test_fused_pass_is_reported_once_with_all_its_metrics() -> None:
    events: list[Any] = []
    compute_metrics(TinyConvNet, BATCH, ["params", "grad_norm", "snip"], fused=True,
                    on_metric=lambda names, done, total: events.append((names, done, total)))
    # params runs on its own first; grad_norm and snip share one loss pass
    assert events == [(("params",), 0, 3), (("grad_norm", "snip"), 1, 3)]


def test_without_on_metric_nothing_changes() -> None:
    a = compute_metrics(TinyConvNet, BATCH, ["params", "grad_norm"], fused=True)
    b = compute_metrics(TinyConvNet, BATCH, ["params", "grad_norm"], fused=True, on_metric=lambda *a: None)
    assert [(r.metric, r.value, r.status) for r in a] == [(r.metric, r.value, r.status) for r in b]
