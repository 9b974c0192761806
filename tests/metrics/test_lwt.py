"""Light-weight training metrics (lwt_angle, lwt_loss): one SGD step by hand, trivial nets, registration."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn

from raynas.data.batch import Batch
from raynas.errors import MetricError, NonFiniteError
from raynas.metrics import _lwt
from raynas.metrics.engine import compute_metrics
from raynas.metrics.lwt_angle import lwt_angle
from raynas.metrics.lwt_loss import lwt_loss
from raynas.metrics.registry import get_metric


def linear_model(w: list[list[float]]) -> nn.Module:
    """Flatten -> Linear(2, 2, no bias) with weight ``w``."""
    lin = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor(w))
    return nn.Sequential(nn.Flatten(), lin)


def one_sample_batch() -> Batch:
    # x = (1, 0), label 1. With W0 = [[1, 0], [1, 0]] the logits are (1, 1): p = (1/2, 1/2), loss = ln 2,
    # dL/dlogits = p - onehot = (1/2, -1/2), dL/dW = outer((1/2, -1/2), x) = [[1/2, 0], [-1/2, 0]].
    return Batch(torch.tensor([[1.0, 0.0]]).reshape(1, 2, 1, 1), torch.tensor([1]), num_classes=2)


W0 = [[1.0, 0.0], [1.0, 0.0]]


def test_constants_follow_the_authors_code() -> None:
    assert (_lwt.STEPS, _lwt.LR, _lwt.MOMENTUM, _lwt.NESTEROV, _lwt.WEIGHT_DECAY, _lwt.TRIVIAL_COSINE) == (
        50, 0.2, 0.9, True, 5e-4, 0.95)
    assert (_lwt.DIVERGENCE_FACTOR, _lwt.TRIVIAL_ANGLE, _lwt.TRIVIAL_LOSS) == (10.0, 0.0, 100.0)


def test_plain_sgd_step_by_hand() -> None:
    # W1 = W0 - 1 * grad = [[1/2, 0], [3/2, 0]]; cos(W0, W1) = (1/2 + 3/2) / (sqrt 2 * sqrt(5/2)) = 2 / sqrt 5
    r = _lwt.light_weight_train(linear_model(W0), one_sample_batch(), steps=1, lr=1.0, momentum=0.0,
                                nesterov=False, weight_decay=0.0)
    assert torch.allclose(r.weight_after, torch.tensor([[0.5, 0.0], [1.5, 0.0]]))
    assert r.cosine == pytest.approx(2 / math.sqrt(5), abs=1e-7)  # 0.894427191
    assert r.loss == pytest.approx(math.log(2), abs=1e-7)


def test_one_step_with_the_module_constants_by_hand() -> None:
    # first Nesterov step: the momentum buffer is the (decayed) gradient, so the update is
    # lr * (1 + m) * (g + wd * W0) = 0.38 * (g + 5e-4 W0): W1 = 0.99981 W0 - 0.38 g = [[0.80981, 0], [1.18981, 0]]
    r = _lwt.light_weight_train(linear_model(W0), one_sample_batch(), steps=1)
    assert torch.allclose(r.weight_after, torch.tensor([[0.80981, 0.0], [1.18981, 0.0]]), atol=1e-6)
    expected = (0.80981 + 1.18981) / (math.sqrt(2) * math.hypot(0.80981, 1.18981))
    assert r.cosine == pytest.approx(expected, abs=1e-6) and r.cosine == pytest.approx(0.982418, abs=1e-6)


def test_two_steps_match_a_hand_written_nesterov_loop() -> None:
    batch = one_sample_batch()
    r = _lwt.light_weight_train(linear_model(W0), batch, steps=2)
    w, buf = torch.tensor(W0, dtype=torch.float64), None
    x, y = torch.tensor([1.0, 0.0], dtype=torch.float64), torch.tensor([0.0, 1.0], dtype=torch.float64)
    for _ in range(2):
        g = torch.outer(torch.softmax(w @ x, 0) - y, x) + 5e-4 * w
        buf = g if buf is None else 0.9 * buf + g
        w = w - 0.2 * (g + 0.9 * buf)
    assert torch.allclose(r.weight_after.double(), w, atol=1e-6)


def test_angle_metric_and_trivial_networks() -> None:
    # 50 steps on the toy problem move the classifier by ~25 degrees: a normal, non-trivial score
    model = linear_model(W0)
    value = lwt_angle(model, one_sample_batch())
    assert -1.0 < value < 0.95
    assert value == pytest.approx(_lwt.light_weight_train(linear_model(W0), one_sample_batch()).cosine, abs=1e-7)
    assert lwt_loss(linear_model(W0), one_sample_batch()) == pytest.approx(
        _lwt.light_weight_train(linear_model(W0), one_sample_batch()).loss, abs=1e-7)
    # constant (zero) features: dL/dW = 0, weight decay only rescales W, cosine 1 -> trivial: the authors'
    # angle score 0 and loss score -100 (lwt_loss 100), although the raw last loss is ln 2
    zero = Batch(torch.zeros(4, 2, 1, 1), torch.tensor([0, 1, 0, 1]), num_classes=2)
    r = _lwt.light_weight_train(linear_model(W0), zero)
    assert r.cosine == pytest.approx(1.0, abs=1e-9) and r.loss == pytest.approx(math.log(2), abs=1e-6)
    assert r.trained and r.trivial
    assert lwt_angle(linear_model(W0), zero) == 0.0
    assert lwt_loss(linear_model(W0), zero) == 100.0


@pytest.mark.parametrize("fused", [False, True])
def test_a_cell_of_only_skip_and_none_edges_is_trivial_and_not_trained(fused: bool) -> None:
    from raynas.spaces import create_space

    space = create_space("nb201")
    batch = tiny_darts_batch(8, 6)
    skip = "|skip_connect~0|+|none~0|skip_connect~1|+|none~0|none~1|skip_connect~2|"
    conv = "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|none~0|none~1|skip_connect~2|"
    net = space.to_module(space.parse(skip), 3, C=4, N=1)
    assert _lwt.has_weightless_cell(net)
    assert not _lwt.has_weightless_cell(space.to_module(space.parse(conv), 3, C=4, N=1))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    r = _lwt.light_weight_train(net, batch)
    assert not r.trained and r.trivial and all(torch.equal(v, net.state_dict()[k]) for k, v in before.items())
    res = compute_metrics(lambda: space.to_module(space.parse(skip), 3, C=4, N=1), batch, ["lwt_angle", "lwt_loss"],
                          fused=fused)
    assert [(x.status, x.value) for x in res] == [("ok", 0.0), ("ok", 100.0)]
    res = compute_metrics(lambda: space.to_module(space.parse(conv), 3, C=4, N=1), batch, ["lwt_angle", "lwt_loss"],
                          fused=fused)
    assert [x.status for x in res] == ["ok", "ok"] and res[0].value != 0.0 and res[1].value < 100.0


def test_classifier_is_the_last_linear_and_errors() -> None:
    first, last = nn.Linear(2, 3), nn.Linear(3, 2)
    assert _lwt.classifier_layer(nn.Sequential(nn.Flatten(), first, nn.ReLU(), last)) is last
    with pytest.raises(MetricError, match="no nn.Linear"):
        _lwt.classifier_layer(nn.Sequential(nn.Conv2d(2, 2, 1)))
    with pytest.raises(MetricError, match="all zeros"):
        _lwt.light_weight_train(linear_model([[0.0, 0.0], [0.0, 0.0]]), one_sample_batch(), steps=1)
    with pytest.raises(MetricError, match="steps >= 1"):
        _lwt.light_weight_train(linear_model(W0), one_sample_batch(), steps=0)


def tiny_darts_batch(size: int, n: int) -> Batch:
    g = torch.Generator().manual_seed(0)
    return Batch(torch.randn(n, 3, size, size, generator=g), torch.arange(n) % 3, num_classes=3)


def test_registered_and_run_by_the_engine_on_a_tiny_darts_net() -> None:
    from raynas.spaces import create_space
    from raynas.spaces.darts.genotypes import DARTS_V2

    angle, loss = get_metric("lwt_angle"), get_metric("lwt_loss")
    assert angle.higher_is_better and not loss.higher_is_better
    assert angle.needs_labels and loss.needs_labels and angle.mode == loss.mode == "train"
    space = create_space("darts_cifar")
    # 5 cells as in the proxy preset: the last cell is a normal cell, as in every DARTS preset (a 3-cell net
    # ends in DARTS-V2's pool-only reduction cell and diverges: see the next test)
    batch = tiny_darts_batch(16, 12)
    factory = lambda: space.to_module(DARTS_V2, 3, C=8, layers=5)  # noqa: E731
    res = compute_metrics(factory, batch, ["lwt_angle", "lwt_loss"], seed=0)
    assert [r.status for r in res] == ["ok", "ok"], res
    assert -1.0 <= res[0].value < 1.0
    assert res[1].value < math.log(3)  # 50 steps on 12 samples reduce the loss below chance


@pytest.mark.parametrize("fused", [False, True])
def test_a_diverged_run_is_recorded_as_nan_with_its_step(fused: bool) -> None:
    from raynas.spaces import create_space
    from raynas.spaces.darts.genotypes import DARTS_V2

    space = create_space("darts_cifar")
    # 3 cells: the classifier reads the reduction cell's max-pool/skip features (norm ~30), and the first
    # step at lr 0.2 takes the loss from 1.4 to ~75 (the old engine stored whatever the swings ended on)
    factory = lambda: space.to_module(DARTS_V2, 3, C=4, layers=3)  # noqa: E731
    res = compute_metrics(factory, tiny_darts_batch(8, 4), ["lwt_angle", "lwt_loss"], seed=0, fused=fused)
    assert [r.status for r in res] == ["nan", "nan"], res
    assert all(r.value is None for r in res)
    assert all("diverged at step 1 of 50" in r.error for r in res), res


def test_convergence_check_bounds() -> None:
    ln3 = math.log(3)
    _lwt.check_convergence(torch.tensor([ln3, 5 * ln3, 9.9 * ln3, 0.0]), 3)  # below the bound: no error
    with pytest.raises(NonFiniteError, match="diverged at step 2 of 3"):
        _lwt.check_convergence(torch.tensor([ln3, 2.0, 10.1 * ln3]), 3)
    with pytest.raises(NonFiniteError, match="diverged at step 1 of 2: loss nan"):
        _lwt.check_convergence(torch.tensor([1.0, float("nan")]), 3)
    # the bound follows a first loss above chance: 10 x 5.0
    _lwt.check_convergence(torch.tensor([5.0, 49.0]), 3)
    with pytest.raises(NonFiniteError, match="step 1"):
        _lwt.check_convergence(torch.tensor([5.0, 51.0]), 3)
