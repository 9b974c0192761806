"""Candidate operations of the cell-based spaces (NAS-Bench-201 and DARTS), in one table.

Every entry of :data:`OPS` has the same constructor signature
``(C_in, C_out, stride, affine, track_running_stats) -> nn.Module`` and maps ``[B, C_in, H, W]`` to
``[B, C_out, ceil(H / stride), ceil(W / stride)]``.

Names shared by both spaces (``none``, ``skip_connect``, ``avg_pool_3x3``) behave identically whenever
``C_in == C_out`` (always the case inside DARTS cells). The NAS-Bench-201 specific behaviour only shows when
the channels change: its pooling then first projects with a 1x1 :class:`ReLUConvBN`, as in the benchmark.
Pools are plain here; DARTS *search* wraps them in a non-affine BN, which is the caller's business.

ReLUs are never in-place: metrics hook activations and the cell sums reuse node tensors.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from raynas.errors import ConfigError, UnknownNameError

OpFactory = Callable[[int, int, int, bool, bool], nn.Module]


class ReLUConvBN(nn.Sequential):
    """ReLU -> Conv2d -> BatchNorm2d.

    ``bias=None`` follows NAS-Bench-201 (conv bias iff the BN is not affine, so a shift is still learnt);
    DARTS ops pass ``bias=False``.
    """

    def __init__(
        self,
        C_in: int,
        C_out: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int],
        padding: int | tuple[int, int],
        dilation: int = 1,
        affine: bool = True,
        track_running_stats: bool = True,
        bias: bool | None = None,
    ):
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(
                C_in, C_out, kernel_size, stride=stride, padding=padding, dilation=dilation,
                bias=(not affine) if bias is None else bias,
            ),
            nn.BatchNorm2d(C_out, affine=affine, track_running_stats=track_running_stats),
        )


class Zero(nn.Module):
    """The ``none`` op: zeros of the output shape ``[B, C_out, ceil(H/stride), ceil(W/stride)]``.

    With equal channels it multiplies the (strided) input by 0 as the benchmarks do, which keeps the op in
    the autograd graph (zero gradient) instead of cutting it.
    """

    def __init__(self, C_in: int, C_out: int, stride: int):
        super().__init__()
        self.C_in, self.C_out, self.stride = C_in, C_out, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride != 1:
            x = x[:, :, :: self.stride, :: self.stride]
        if self.C_in == self.C_out:
            return x.mul(0.0)
        shape = (x.shape[0], self.C_out, x.shape[2], x.shape[3])
        return x.new_zeros(shape)

    def extra_repr(self) -> str:
        return f"C_in={self.C_in}, C_out={self.C_out}, stride={self.stride}"


class FactorizedReduce(nn.Module):
    """Channel change (stride 1) or 2x spatial reduction (stride 2) with 1x1 convs.

    Stride 2: ReLU, then two 1x1 stride-2 convs, the second on the input shifted by one pixel so both
    pixel parities are seen; their outputs are concatenated (``C_out // 2`` + the rest channels) and
    batch-normalised. The shift pads one zero row/column first so odd input sizes work too
    (``[B, C_in, H, W] -> [B, C_out, ceil(H/2), ceil(W/2)]``).
    """

    def __init__(self, C_in: int, C_out: int, stride: int, affine: bool = True, track_running_stats: bool = True):
        super().__init__()
        if stride not in (1, 2):
            raise ConfigError(f"FactorizedReduce supports stride 1 or 2, got {stride}")
        self.stride = stride
        self.relu = nn.ReLU(inplace=False)
        if stride == 2:
            half = C_out // 2
            self.convs = nn.ModuleList(
                [nn.Conv2d(C_in, half, 1, stride=2, bias=False), nn.Conv2d(C_in, C_out - half, 1, stride=2, bias=False)]
            )
        else:
            self.conv = nn.Conv2d(C_in, C_out, 1, stride=1, bias=False)
        self.bn = nn.BatchNorm2d(C_out, affine=affine, track_running_stats=track_running_stats)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        if self.stride == 2:
            shifted = F.pad(x, (0, 1, 0, 1))[:, :, 1:, 1:]
            out = torch.cat([self.convs[0](x), self.convs[1](shifted)], dim=1)
        else:
            out = self.conv(x)
        return self.bn(out)


class Pooling(nn.Module):
    """NAS-Bench-201 pooling: optional 1x1 ReLUConvBN projection when channels change, then a 3x3 pool.

    Average pooling ignores the zero padding (``count_include_pad=False``) as in both benchmarks.
    """

    def __init__(
        self, C_in: int, C_out: int, stride: int, mode: str, affine: bool = True, track_running_stats: bool = True
    ):
        super().__init__()
        self.preprocess = (
            None if C_in == C_out else ReLUConvBN(C_in, C_out, 1, 1, 0, 1, affine, track_running_stats)
        )
        if mode == "avg":
            self.pool: nn.Module = nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False)
        elif mode == "max":
            self.pool = nn.MaxPool2d(3, stride=stride, padding=1)
        else:
            raise ConfigError(f"pooling mode must be 'avg' or 'max', got {mode!r}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.preprocess is not None:
            x = self.preprocess(x)
        return self.pool(x)


class DilConv(nn.Sequential):
    """DARTS dilated separable conv: ReLU, depthwise k x k conv (stride, dilation), pointwise conv, BN."""

    def __init__(
        self, C_in: int, C_out: int, kernel_size: int, stride: int, padding: int, dilation: int,
        affine: bool = True, track_running_stats: bool = True,
    ):
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(
                C_in, C_in, kernel_size, stride=stride, padding=padding, dilation=dilation, groups=C_in, bias=False
            ),
            nn.Conv2d(C_in, C_out, 1, bias=False),
            nn.BatchNorm2d(C_out, affine=affine, track_running_stats=track_running_stats),
        )


class SepConv(nn.Sequential):
    """DARTS separable conv: two stacked :class:`DilConv` (dilation 1); only the first one strides."""

    def __init__(
        self, C_in: int, C_out: int, kernel_size: int, stride: int, padding: int,
        affine: bool = True, track_running_stats: bool = True,
    ):
        super().__init__(
            DilConv(C_in, C_in, kernel_size, stride, padding, 1, affine, track_running_stats),
            DilConv(C_in, C_out, kernel_size, 1, padding, 1, affine, track_running_stats),
        )


class Conv7x1x7(nn.Sequential):
    """DARTS ``conv_7x1_1x7``: ReLU, 1x7 conv, 7x1 conv, BN (stride split over the two convs)."""

    def __init__(self, C_in: int, C_out: int, stride: int, affine: bool = True, track_running_stats: bool = True):
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_in, (1, 7), stride=(1, stride), padding=(0, 3), bias=False),
            nn.Conv2d(C_in, C_out, (7, 1), stride=(stride, 1), padding=(3, 0), bias=False),
            nn.BatchNorm2d(C_out, affine=affine, track_running_stats=track_running_stats),
        )


def _skip(C_in: int, C_out: int, stride: int, affine: bool, track: bool) -> nn.Module:
    if stride == 1 and C_in == C_out:
        return nn.Identity()
    return FactorizedReduce(C_in, C_out, stride, affine, track)


#: name -> factory ``(C_in, C_out, stride, affine, track_running_stats) -> nn.Module``
OPS: dict[str, OpFactory] = {
    # shared by NAS-Bench-201 and DARTS
    "none": lambda ci, co, s, a, t: Zero(ci, co, s),
    "skip_connect": _skip,
    "avg_pool_3x3": lambda ci, co, s, a, t: Pooling(ci, co, s, "avg", a, t),
    # NAS-Bench-201 only (conv bias iff BN not affine, as in the benchmark)
    "nor_conv_1x1": lambda ci, co, s, a, t: ReLUConvBN(ci, co, 1, s, 0, 1, a, t),
    "nor_conv_3x3": lambda ci, co, s, a, t: ReLUConvBN(ci, co, 3, s, 1, 1, a, t),
    # DARTS only
    "max_pool_3x3": lambda ci, co, s, a, t: Pooling(ci, co, s, "max", a, t),
    "sep_conv_3x3": lambda ci, co, s, a, t: SepConv(ci, co, 3, s, 1, a, t),
    "sep_conv_5x5": lambda ci, co, s, a, t: SepConv(ci, co, 5, s, 2, a, t),
    "sep_conv_7x7": lambda ci, co, s, a, t: SepConv(ci, co, 7, s, 3, a, t),
    "dil_conv_3x3": lambda ci, co, s, a, t: DilConv(ci, co, 3, s, 2, 2, a, t),
    "dil_conv_5x5": lambda ci, co, s, a, t: DilConv(ci, co, 5, s, 4, 2, a, t),
    "conv_7x1_1x7": lambda ci, co, s, a, t: Conv7x1x7(ci, co, s, a, t),
}

#: the candidate ops of NAS-Bench-201, in the benchmark's order (defines its index digits)
OPS_NB201: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")

#: the DARTS primitives (Liu et al., 2019), in the order of the paper's code
OPS_DARTS: tuple[str, ...] = (
    "none", "max_pool_3x3", "avg_pool_3x3", "skip_connect",
    "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5",
)


def create_op(
    name: str, C_in: int, C_out: int, stride: int = 1, affine: bool = True, track_running_stats: bool = True
) -> nn.Module:
    """Build op ``name``; an unknown name raises :class:`~raynas.errors.UnknownNameError`."""
    if name not in OPS:
        raise UnknownNameError("op", name, OPS)
    return OPS[name](C_in, C_out, stride, affine, track_running_stats)
