"""naswot_code: the released NASWOT code's units (modules named after ReLU, reached by the backward)."""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from raynas.data.batch import Batch
from raynas.metrics._codes import hamming_kernel, log_abs_det
from raynas.metrics.engine import compute_metrics
from raynas.metrics.naswot_code import code_modules, reached_by_backward


class ReLUConv(nn.Sequential):
    """A composite named after ReLU (like NB201's ReLUConvBN): the reference hooks it as well as its ReLU."""

    def __init__(self) -> None:
        super().__init__(nn.ReLU(), nn.Conv2d(2, 2, 1))


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.block = ReLUConv()
        self.dead = nn.Sequential(nn.ReLU(), nn.Conv2d(2, 2, 1))  # computed, never reaches the logits
        self.head = nn.Linear(2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.dead(0.5 - x)  # other codes than the block's
        return self.head(self.block(x).mean((2, 3)))


def test_units_are_the_references() -> None:
    torch.manual_seed(0)
    net = Net()
    x = torch.randn(5, 2, 3, 3)
    mods = code_modules(net)
    assert net.block in mods and net.block[0] in mods and net.dead[0] in mods
    reached = reached_by_backward(net, mods, x)
    assert net.dead[0] not in reached and net.block in reached and net.block[0] in reached
    # the block's input is its ReLU's input: the same code twice, and nothing from the dead branch
    only_block = nn.Sequential(net.block[0])
    k, n = hamming_kernel(only_block, x)
    expected = log_abs_det(2 * k)
    (r,) = compute_metrics(lambda: net, Batch(x, torch.zeros(5, dtype=torch.long), 3), ["naswot_code"])
    assert r.status == "ok" and math.isclose(r.value, expected, rel_tol=1e-12)
    (paper,) = compute_metrics(lambda: net, Batch(x, torch.zeros(5, dtype=torch.long), 3), ["naswot"])
    assert paper.value != r.value  # the paper's score counts each ReLU once, the dead branch included
