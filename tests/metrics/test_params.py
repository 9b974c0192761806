"""params: raw count of trainable parameters."""

from __future__ import annotations

import torch
import torch.nn as nn

from raynas.data.batch import Batch
from raynas.metrics import get_metric
from raynas.metrics.engine import compute_metrics
from raynas.testing import TinyConvNet

BATCH = Batch(torch.zeros(2, 3, 4, 4), torch.tensor([0, 1]), 2)


def _params(net: nn.Module) -> float:
    (r,) = compute_metrics(lambda: net, BATCH, ["params"])
    assert r.status == "ok", r.error
    return r.value


def test_two_linear_layers() -> None:
    # (3*2 + 2) + (2*1 + 1) = 11
    assert _params(nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 1))) == 11.0


def test_frozen_parameters_are_not_counted() -> None:
    net = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 1))
    net[0].requires_grad_(False)
    assert _params(net) == 3.0


def test_conv_net_counts_bn_affine() -> None:
    # conv1 4*3*9+4 = 112, conv2 4*4*9 = 144, head 4*4+4 = 20, two BN layers 2*(4+4) = 16
    assert _params(TinyConvNet(bn=True)) == 292.0
    assert _params(TinyConvNet(bn=False)) == 276.0


def test_spec() -> None:
    spec = get_metric("params")
    assert not spec.needs_data and not spec.needs_labels and spec.higher_is_better
