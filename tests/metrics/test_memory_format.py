"""Every metric's value is independent of the network's memory format (``channels_last`` vs contiguous).

A metric is a function of the network's weights and the batch, not of how their elements lie in memory. Issue 32
found vkdnw in float64 moving 9.9 % on a ``channels_last`` copy: torch draws random numbers in memory order, so a
metric that re-initialises its copy (vkdnw, AZ-NAS, Zen-NAS) drew other weights. In float64 the only other
difference left is the kernels' summation order, so the two layouts must agree to float64 rounding; in each
metric's registered dtype (what ``compute_metrics(..., channels_last=True)`` runs), to float32 rounding.
"""

from __future__ import annotations

from functools import lru_cache

import pytest
import torch

from raynas.data.batch import Batch
from raynas.metrics import resolve_metric_names
from raynas.metrics.batched import per_arch_metrics
from raynas.metrics.engine import MetricResult, compute_metrics
from raynas.spaces import create_space
from raynas_tests.nb201 import tiny_nb201

#: every op of the cell (3x3 and 1x1 convolutions, pool, skip) so every kind of layer sees both layouts
ARCH = "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
NAMES = resolve_metric_names("all,diagnostic")
EPS64 = torch.finfo(torch.float64).eps
EPS32 = torch.finfo(torch.float32).eps
#: float64: the two layouts' kernels sum in other orders; the most rounding-sensitive metric (lwt_loss: 50 SGD
#: steps) amplifies float32's eps about 1e4-fold (its float32 value is 1e-3 off float64), so 1e6 eps64 (2e-10)
#: bounds rounding with room, while a layout-dependent definition (other draws) moves values by percents
F64_TOL = 1e6 * EPS64
#: float32: the channels_last value may differ from the contiguous one by a few times the contiguous run's own
#: float32 error (its distance to the float64 value), as two float32 runs of other kernels do in tests/parity ...
F32_ERROR_FACTOR = 4.0
#: ... or by this many float32 ulps of the value: the two layouts run other convolution kernels, whose rounding
#: differs by more than the contiguous run's error happens to be (epe_nas: 40 ulps apart, 5 ulps off float64)
F32_ULPS = 1000


def _batch(channels_last: bool) -> Batch:
    g = torch.Generator().manual_seed(0)
    b = Batch(torch.randn(8, 3, 16, 16, generator=g), torch.arange(8) % 4, 4)
    return b.with_inputs(b.inputs.contiguous(memory_format=torch.channels_last)) if channels_last else b


def _factories(channels_last: bool):  # type: ignore[no-untyped-def]
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    space = create_space("nb201")
    return (lambda: tiny_nb201(ARCH, C=4, N=1).to(memory_format=fmt),
            lambda: space.to_module(ARCH, 4, **space.thin_kwargs()).to(memory_format=fmt))


@lru_cache(maxsize=None)
def float64_values(channels_last: bool) -> dict[str, MetricResult]:
    """Every metric in float64 on the network and batch in the given layout (the unfused per-arch engine)."""
    factory, thin = _factories(channels_last)
    rows = per_arch_metrics(factory, _batch(channels_last), NAMES, dtype=torch.float64, seed=0, thin_factory=thin)
    return {r.metric: r for r in rows}


@lru_cache(maxsize=None)
def registered_values(channels_last: bool, fused: bool) -> dict[str, MetricResult]:
    """Every metric at its registered dtype through ``compute_metrics``'s own ``channels_last`` option."""
    factory, thin = _factories(False)
    rows = compute_metrics(factory, _batch(False), NAMES, seed=0, thin_factory=thin, fused=fused,
                           channels_last=channels_last)
    return {r.metric: r for r in rows}


def test_the_layouts_really_differ() -> None:
    factory, _ = _factories(True)
    conv = next(m for m in factory().modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3))
    assert not conv.weight.is_contiguous() and conv.weight.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("name", NAMES)
def test_float64_value_is_independent_of_memory_format(name: str) -> None:
    a, b = float64_values(False)[name], float64_values(True)[name]
    assert a.status == b.status == "ok", (a.status, a.error, b.status, b.error)
    assert a.value is not None and b.value is not None
    assert abs(a.value - b.value) <= F64_TOL * abs(a.value) + 1e-300, (a.value, b.value)


@pytest.mark.parametrize("fused", [False, True], ids=["unfused", "fused"])
@pytest.mark.parametrize("name", NAMES)
def test_channels_last_option_gives_the_value_within_float32_rounding(name: str, fused: bool) -> None:
    a, b = registered_values(False, fused)[name], registered_values(True, fused)[name]
    assert a.status == b.status == "ok", (a.status, a.error, b.status, b.error)
    assert a.value is not None and b.value is not None
    f64 = float64_values(False)[name].value
    assert f64 is not None
    tol = max(F32_ERROR_FACTOR * abs(a.value - f64), F32_ULPS * EPS32 * abs(a.value))
    assert abs(a.value - b.value) <= tol, (a.value, b.value, f64)
