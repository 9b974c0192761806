"""zen: Zen-NAS's Zen-score (Gaussian re-initialisation, Gaussian inputs, pre-pool feature change, BN variances)."""

from __future__ import annotations

import math

import torch
from torch import nn

from raynas.data.batch import Batch
from raynas.metrics import get_metric
from raynas.metrics.engine import compute_metrics
from raynas.testing import tiny_bn_convnet


def _batch(n: int = 4, seed: int = 0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    return Batch(torch.randn(n, 3, 6, 6, generator=g), torch.arange(n) % 2, 2)


def _score(factory, batch: Batch, seed: int = 0):  # type: ignore[no-untyped-def]
    (r,) = compute_metrics(factory, batch, ["zen"], seed=seed)
    return r


def linear_convnet() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 2, 1, bias=True), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 2))


def test_linear_network_replays_the_definition() -> None:
    # no BN, linear features f(x) = W x (bias re-initialised to 0): Delta = mean_b sum |W (0.01 x2)|, with W, the
    # classifier and x1, x2 drawn in that order from the seeded RNG
    seed = 7
    torch.manual_seed(seed)
    w = torch.randn(2, 3)
    torch.randn(2, 2)  # the classifier's N(0, 1) weights
    torch.randn(4, 3, 6, 6)  # x1: cancels in the difference of a linear map
    x2 = torch.randn(4, 3, 6, 6)
    delta = torch.einsum("oc,bchw->bohw", w, 0.01 * x2).abs().sum(dim=[1, 2, 3]).mean()
    r = _score(linear_convnet, _batch(), seed=seed)
    # Delta is a float32 difference f(x1 + 0.01 x2) - f(x1): it loses log2(100) bits to cancellation, so its
    # relative error is ~eps32 / 0.01 (and so is log Delta's absolute error, whatever the value near 0): 4x that
    tol = 4 * torch.finfo(torch.float32).eps / 0.01
    assert r.status == "ok" and abs(r.value - math.log(float(delta))) <= tol, (r.value, math.log(float(delta)))


def test_uses_neither_the_batch_values_nor_the_networks_weights() -> None:
    a = _score(lambda: tiny_bn_convnet(3, 2), _batch(seed=0))
    b = _score(lambda: tiny_bn_convnet(3, 2), _batch(seed=1))  # other images, same shape
    torch.manual_seed(123)
    other = tiny_bn_convnet(3, 2)  # other initial weights: Zen re-initialises them
    c = _score(lambda: other, _batch(seed=0))
    assert a.status == "ok" and a.value == b.value == c.value
    assert _score(lambda: tiny_bn_convnet(3, 2), _batch(seed=0), seed=1).value != a.value  # the seed matters


def test_bn_running_variance_term() -> None:
    # one BN after the conv: the score adds log sqrt(mean(running_var)) read after the two train-mode forwards
    net = nn.Sequential(nn.Conv2d(3, 2, 1, bias=False), nn.BatchNorm2d(2), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                        nn.Linear(2, 2))
    torch.manual_seed(0)
    w = torch.randn(2, 3)
    torch.randn(2, 2)
    x1, x2 = torch.randn(4, 3, 6, 6), torch.randn(4, 3, 6, 6)
    bn = nn.BatchNorm2d(2)
    conv = lambda x: torch.einsum("oc,bchw->bohw", w, x)
    with torch.no_grad():
        f1, f2 = bn(conv(x1)), bn(conv(x1 + 0.01 * x2))
    expected = math.log(float((f1 - f2).abs().sum(dim=[1, 2, 3]).mean())) + math.log(
        math.sqrt(float(bn.running_var.mean())))
    r = _score(lambda: net, _batch())
    assert r.status == "ok" and math.isclose(r.value, expected, rel_tol=1e-5)


def test_dead_network_is_status_nan() -> None:
    class Dead(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv, self.pool, self.fc = nn.Conv2d(3, 2, 1), nn.AdaptiveAvgPool2d(1), nn.Linear(2, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(self.pool(self.conv(x) * 0.0).flatten(1))

    r = _score(Dead, _batch())
    assert r.status == "nan" and r.value is None


def test_needs_a_global_pool_and_bn_running_statistics() -> None:
    r = _score(lambda: nn.Sequential(nn.Flatten(), nn.Linear(108, 2)), _batch())
    assert r.status == "error" and "global average pool" in r.error
    net = nn.Sequential(nn.Conv2d(3, 2, 1), nn.BatchNorm2d(2, track_running_stats=False), nn.AdaptiveAvgPool2d(1),
                        nn.Flatten(), nn.Linear(2, 2))
    r = _score(lambda: net, _batch())
    assert r.status == "error" and "running statistics" in r.error


def test_spec() -> None:
    spec = get_metric("zen")
    assert not spec.needs_data and not spec.needs_labels and spec.bn == "keep" and spec.mode == "train"
