"""flops: Conv2d/Linear multiply-accumulates for one sample."""

from __future__ import annotations

import torch
import torch.nn as nn

from raynas.data.batch import Batch
from raynas.metrics import get_metric
from raynas.metrics.engine import compute_metrics
from raynas.testing import TinyConvNet


def _flops(net: nn.Module, shape: tuple[int, ...]) -> float:
    batch = Batch(torch.randn(*shape), torch.zeros(shape[0], dtype=torch.long), 10)
    (r,) = compute_metrics(lambda: net, batch, ["flops"])
    assert r.status == "ok", r.error
    return r.value


def test_single_conv() -> None:
    # C_out*H_out*W_out*C_in*kh*kw = 8*8*8*3*9
    assert _flops(nn.Conv2d(3, 8, 3, padding=1), (4, 3, 8, 8)) == 13824.0


def test_grouped_strided_conv_bn_pool_linear() -> None:
    net = nn.Sequential(
        nn.Conv2d(4, 8, 3, stride=2, groups=2),  # 9x9 -> 4x4: 8*4*4*(4/2)*9 = 2304
        nn.BatchNorm2d(8),  # not counted
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 10),  # 80
    )
    assert _flops(net, (2, 4, 9, 9)) == 2304.0 + 80.0


def test_independent_of_batch_size_and_values() -> None:
    assert _flops(TinyConvNet(), (1, 3, 8, 8)) == _flops(TinyConvNet(), (6, 3, 8, 8)) == 9232.0
    # conv1 4*8*8*3*9 = 6912, conv2 4*4*4*4*9 = 2304, head 16; the spatial size matters
    assert _flops(TinyConvNet(), (2, 3, 4, 4)) == 4 * 16 * 27 + 4 * 4 * 36 + 16


class _Twice(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(6, 6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(self.lin(x.flatten(1)))


def test_module_called_twice_counts_twice() -> None:
    assert _flops(_Twice(), (2, 6, 1, 1)) == 72.0


def test_linear_on_extra_dims() -> None:
    # Linear(6, 5) on [1, 3, 4, 6]: 3*4 rows of 6*5 MACs
    assert _flops(nn.Linear(6, 5), (2, 3, 4, 6)) == 360.0


def test_spec() -> None:
    spec = get_metric("flops")
    assert not spec.needs_labels and not spec.needs_data and spec.mode == "eval"
