"""The metric engine: status handling (nan/error/oom), BN removal, dtype, mode, fresh copies, seeding."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from raynas.data.batch import Batch
from raynas.errors import MetricError, UnknownNameError
from raynas.metrics import engine
from raynas.metrics.engine import compute_metrics, remove_batchnorm, run_metric
from raynas.metrics.registry import MetricSpec
from raynas.registry import Registry
from raynas.testing import TinyConvNet

BATCH = Batch(torch.randn(8, 3, 6, 6, generator=torch.Generator().manual_seed(0)), torch.arange(8) % 4, 4)


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> Registry[MetricSpec]:
    """A private metric registry the engine resolves names from (the global one is left untouched)."""
    reg: Registry[MetricSpec] = Registry("metric")
    monkeypatch.setattr(engine, "get_metric", reg.get)
    return reg


def _add(reg: Registry[MetricSpec], name: str, fn, **meta) -> None:
    reg.add(name, MetricSpec(name, fn, **meta))


def _run(names: list[str], factory=TinyConvNet) -> dict[str, engine.MetricResult]:
    return {r.metric: r for r in compute_metrics(factory, BATCH, names)}


def test_nan_inf_error_are_statuses_and_isolated(fakes: Registry[MetricSpec]) -> None:
    _add(fakes, "nan", lambda m, b: float("nan"))
    _add(fakes, "inf", lambda m, b: float("-inf"))

    def boom(m: nn.Module, b: Batch) -> float:
        raise ValueError("boom")

    def typed(m: nn.Module, b: Batch) -> float:
        raise MetricError("unsupported network")

    _add(fakes, "boom", boom)
    _add(fakes, "typed", typed)
    _add(fakes, "ok", lambda m, b: 1.5)
    res = _run(["nan", "boom", "inf", "typed", "ok"])
    assert list(res) == ["nan", "boom", "inf", "typed", "ok"]
    assert res["nan"].status == "nan" and res["nan"].value is None
    assert res["inf"].status == "nan" and res["inf"].value is None
    assert res["boom"].status == "error" and res["boom"].error == "ValueError: boom" and res["boom"].value is None
    assert res["typed"].status == "error" and "unsupported network" in res["typed"].error
    assert res["ok"].status == "ok" and res["ok"].value == 1.5 and res["ok"].device == "cpu"
    assert all(r.seconds >= 0 for r in res.values())


def test_oom_retries_with_halved_batch(fakes: Registry[MetricSpec]) -> None:
    seen: list[int] = []

    def fits_at_two(m: nn.Module, b: Batch) -> float:
        seen.append(b.size)
        if b.size > 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return float(b.size)

    _add(fakes, "fits", fits_at_two)
    res = _run(["fits"])["fits"]
    assert seen == [8, 4, 2]
    assert res.status == "ok" and res.value == 2.0
    assert res.error == "computed on batch 2 of 8 after out-of-memory"


def test_oom_gives_up_below_min_batch(fakes: Registry[MetricSpec]) -> None:
    seen: list[int] = []

    def always(m: nn.Module, b: Batch) -> float:
        seen.append(b.size)
        raise torch.cuda.OutOfMemoryError("CUDA out of memory")

    def message_only(m: nn.Module, b: Batch) -> float:
        raise RuntimeError("DefaultCPUAllocator: out of memory")

    _add(fakes, "always", always)
    _add(fakes, "msg", message_only)
    res = _run(["always", "msg"])
    assert seen == [8, 4, 2]  # 2 // 2 = 1 < min_batch = 2: no fourth try
    assert res["always"].status == "oom" and res["always"].value is None
    assert res["msg"].status == "oom"


def test_bn_removal_only_for_specs_asking_and_fresh_copy(fakes: Registry[MetricSpec]) -> None:
    def count_bn(m: nn.Module, b: Batch) -> float:
        return float(sum(isinstance(x, nn.BatchNorm2d) for x in m.modules()))

    _add(fakes, "removed", count_bn, bn="remove")
    _add(fakes, "kept", count_bn)
    res = _run(["removed", "kept"])
    assert res["removed"].value == 0.0 and res["kept"].value == 2.0


def test_remove_batchnorm_nested() -> None:
    net = nn.Sequential(nn.Sequential(nn.BatchNorm1d(2), nn.ReLU()), nn.BatchNorm2d(3))
    remove_batchnorm(net)
    assert [type(m).__name__ for m in net.modules()] == ["Sequential", "Sequential", "Identity", "ReLU", "Identity"]


def test_dtype_and_mode(fakes: Registry[MetricSpec]) -> None:
    def dtypes(m: nn.Module, b: Batch) -> float:
        ok = all(p.dtype == torch.float64 for p in m.parameters()) and b.inputs.dtype == torch.float64
        return 1.0 if ok and b.labels.dtype == torch.long else 0.0

    _add(fakes, "f64", dtypes, dtype=torch.float64)
    _add(fakes, "f32", dtypes)
    _add(fakes, "train", lambda m, b: float(all(x.training for x in m.modules())))
    _add(fakes, "eval", lambda m, b: float(any(x.training for x in m.modules())), mode="eval")
    res = _run(["f64", "f32", "train", "eval"])
    assert [res[n].value for n in ["f64", "f32", "train", "eval"]] == [1.0, 0.0, 1.0, 0.0]


def test_fresh_copy_per_metric(fakes: Registry[MetricSpec]) -> None:
    def vandal(m: nn.Module, b: Batch) -> float:
        m(b.inputs).sum().backward()  # leaves grads and updates BN running stats
        with torch.no_grad():
            for p in m.parameters():
                p.zero_()
        return 0.0

    def state(m: nn.Module, b: Batch) -> float:
        if any(p.grad is not None for p in m.parameters()):
            return -1.0
        bn_means = [x.running_mean for x in m.modules() if isinstance(x, nn.BatchNorm2d)]
        if any(bool(t.abs().sum() > 0) for t in bn_means):
            return -2.0
        return float(sum(p.detach().abs().sum() for p in m.parameters()))

    _add(fakes, "vandal", vandal)
    _add(fakes, "state", state)
    base = TinyConvNet()
    expected = float(sum(p.detach().abs().sum() for p in base.parameters()))
    res = _run(["state", "vandal", "state2"] if False else ["vandal", "state"], factory=lambda: base)
    assert res["state"].value == pytest.approx(expected) and expected > 0
    assert float(sum(p.detach().abs().sum() for p in base.parameters())) == expected  # the factory's model is untouched


def test_seeded_per_metric(fakes: Registry[MetricSpec]) -> None:
    _add(fakes, "r1", lambda m, b: float(torch.rand(())))
    _add(fakes, "r2", lambda m, b: float(torch.rand(())))
    first = compute_metrics(TinyConvNet, BATCH, ["r1", "r2"], seed=3)
    again = compute_metrics(TinyConvNet, BATCH, ["r1", "r2"], seed=3)
    other = compute_metrics(TinyConvNet, BATCH, ["r1"], seed=4)
    assert first[0].value == first[1].value == again[0].value
    assert other[0].value != first[0].value


def test_run_metric_directly_and_unknown_name() -> None:
    spec = MetricSpec("one", lambda m, b: 1.0)
    assert run_metric(spec, TinyConvNet(), BATCH, device=torch.device("cpu"), seed=0).value == 1.0
    with pytest.raises(UnknownNameError, match="snip"):
        compute_metrics(TinyConvNet, BATCH, ["snipp"])


@pytest.mark.parametrize("fused", [False, True])
def test_thin_network_failure_fails_only_thin_metrics(fused):
    from raynas.testing import TinyConvNet

    def broken_thin():
        raise ValueError("C=1 is too narrow")

    batch = Batch(torch.randn(4, 3, 8, 8), torch.tensor([0, 1, 2, 3]), 4)
    res = compute_metrics(lambda: TinyConvNet(), batch, ["params", "linear_regions", "grad_norm"],
                          thin_factory=broken_thin, fused=fused)
    by = {r.metric: r for r in res}
    assert [r.metric for r in res] == ["params", "linear_regions", "grad_norm"]
    assert by["linear_regions"].status == "error"
    assert "thin network cannot be built: ValueError: C=1 is too narrow" in by["linear_regions"].error
    assert by["params"].status == "ok" and by["params"].value == 292.0
    assert by["grad_norm"].status == "ok"
