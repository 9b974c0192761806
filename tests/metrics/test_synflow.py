"""synflow: sum over weights of |W ⊙ dR/dW|, R = sum(f_|θ|(1)), BN removed, float64."""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from raynas.data.batch import Batch
from raynas.metrics import get_metric
from raynas.metrics.engine import compute_metrics
from raynas.testing import TinyConvNet, two_layer_linear


def _score(net: nn.Module, batch: Batch) -> float:
    (r,) = compute_metrics(lambda: net, batch, ["synflow"])
    assert r.status == "ok", r.error
    return r.value


def _batch(shape: tuple[int, ...], seed: int = 0) -> Batch:
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(seed))
    return Batch(x, torch.zeros(shape[0], dtype=torch.long), 2)


def test_two_layer_linear_by_hand() -> None:
    # A = |W1| = [[1, 2], [3, .5]], B = |W2| = [[1, 2]], x = 1: A1 = (3, 3.5), R = B A 1 = 10.
    # dR/dA = outer(B^T 1, 1): sum A ⊙ dR/dA = R; dR/dB = (A 1)^T: sum B ⊙ dR/dB = R -> 2R = 20.
    net = two_layer_linear([[1.0, -2.0], [3.0, 0.5]], [[-1.0, 2.0]])
    assert _score(net, _batch((4, 2, 1, 1))) == 20.0


def test_biases_are_linearised_too_but_not_scored() -> None:
    # |b1| = (1, 1), |b2| = 5: sum A ⊙ dR/dA = B A 1 = 10, sum B ⊙ dR/dB = B (A 1 + |b1|) = 4 + 9 = 13
    net = two_layer_linear([[1.0, -2.0], [3.0, 0.5]], [[-1.0, 2.0]], b1=[-1.0, 1.0], b2=[-5.0])
    assert _score(net, _batch((4, 2, 1, 1))) == 23.0


def test_data_free_but_shape_dependent() -> None:
    base = _score(TinyConvNet(), _batch((4, 3, 8, 8), seed=0))
    assert _score(TinyConvNet(), _batch((2, 3, 8, 8), seed=1)) == base  # values and batch size do not matter
    assert _score(TinyConvNet(), _batch((2, 3, 4, 4))) != base  # the spatial size does


def test_batchnorm_is_ignored() -> None:
    batch = _batch((4, 3, 8, 8))
    with_bn, without_bn = _score(TinyConvNet(bn=True), batch), _score(TinyConvNet(bn=False), batch)
    assert with_bn > 0 and with_bn == without_bn


def test_float64_avoids_overflow_of_deep_nets() -> None:
    # 40 layers of |W| = 10 on a width-2 chain at x = (1, 1): R = 2 * 20^40 ~ 2e52 overflows float32 (max ~3.4e38)
    layers = [nn.Flatten()]
    for _ in range(40):
        lin = nn.Linear(2, 2, bias=False)
        nn.init.constant_(lin.weight, -10.0)
        layers.append(lin)
    net = nn.Sequential(*layers)
    # R is linear in each layer's weights (no biases), so every layer contributes sum W ⊙ dR/dW = R
    assert math.isclose(_score(net, _batch((1, 2, 1, 1))), 40 * 2 * 20.0**40, rel_tol=1e-9)


def test_spec() -> None:
    spec = get_metric("synflow")
    assert spec.bn == "remove" and spec.dtype == torch.float64 and spec.mode == "eval"
    assert not spec.needs_data and not spec.needs_labels and spec.higher_is_better
