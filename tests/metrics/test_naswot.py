"""naswot: Mellor's log|det K_H| pinned on hand-enumerable ReLU codes."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from raynas.data.batch import Batch
from raynas.errors import MetricError
from raynas.metrics._codes import activation_codes, count_units, hamming_kernel
from raynas.metrics.naswot import naswot
from raynas.metrics.registry import get_metric
from raynas.testing import tiny_bn_convnet, two_relu_mlp

# codes of two_relu_mlp on these inputs: 111, 100, 000 -> Hamming d12=2, d13=3, d23=1, N_A=3
X3 = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, -1.0]]).view(3, 2, 1, 1)
K3 = torch.tensor([[3.0, 1.0, 0.0], [1.0, 3.0, 2.0], [0.0, 2.0, 3.0]], dtype=torch.float64)  # det = 12


def _batch(x: torch.Tensor) -> Batch:
    return Batch(x, torch.zeros(x.shape[0], dtype=torch.long), num_classes=2)


def test_codes_and_kernel_by_hand() -> None:
    model = two_relu_mlp()
    codes = activation_codes(model, X3)
    assert codes.tolist() == [[True, True, True], [True, False, False], [False, False, False]]
    kernel, n_units = hamming_kernel(model, X3)
    assert n_units == 3 == count_units(model, X3)
    assert kernel.dtype == torch.float64
    assert torch.equal(kernel, K3)


@pytest.mark.parametrize("inplace", [False, True])
def test_naswot_value(inplace: bool) -> None:
    # pre-hooks read the ReLU input before an inplace ReLU overwrites it
    assert naswot(two_relu_mlp(inplace=inplace), _batch(X3)) == pytest.approx(math.log(12.0), abs=1e-12)


def test_identical_codes_give_minus_inf() -> None:
    x = torch.tensor([[1.0, 1.0], [2.0, 3.0]]).view(2, 2, 1, 1)  # both code 111
    assert naswot(two_relu_mlp(), _batch(x)) == -math.inf


def test_kernel_matches_brute_force_hamming_on_conv_net() -> None:
    torch.manual_seed(0)
    model = tiny_bn_convnet(3, 4)
    x = torch.randn(5, 3, 6, 6)
    codes = activation_codes(model, x).to(torch.float64)
    n = codes.shape[1]
    assert n == 4 * 6 * 6 + 4 * 3 * 3  # two ReLUs: [4,6,6] and [4,3,3] per sample
    brute = n - torch.cdist(codes, codes, p=1)
    kernel, n_units = hamming_kernel(model, x)
    assert n_units == n
    assert torch.equal(kernel, brute)
    assert naswot(model, _batch(x)) == pytest.approx(torch.linalg.slogdet(brute)[1].item(), abs=1e-9)


class _FunctionalRelu(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(2, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.lin(x.flatten(1)))


def test_functional_relu_is_rejected() -> None:
    with pytest.raises(MetricError, match="nn.ReLU"):
        naswot(_FunctionalRelu(), _batch(X3))


def test_spec() -> None:
    spec = get_metric("naswot")
    assert not spec.needs_labels and spec.needs_data and spec.higher_is_better
    assert "Mellor" in spec.reference
