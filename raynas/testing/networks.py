"""Tiny fixed networks with hand-set weights, whose metric values are known in closed form.

The activation-pattern and NTK metrics (naswot, das_*, linear_regions, ntk_*, tenas_ntk_cond) are pinned on
:func:`two_relu_mlp`, :func:`threshold_net`, :func:`linear_classifier`, :func:`linear_bn_classifier` and
:func:`tiny_bn_convnet`; the zero-cost proxies (params, flops, grad_norm, snip, grasp, fisher, synflow,
jacob_cov) on :func:`linear_net`, :func:`two_layer_linear`, :func:`relu_probe_mlp` and :class:`TinyConvNet`.
Inputs are ``[B, C, H, W]``; the MLPs flatten them. No search space is involved: a metric plugin can be tested
on these without building a cell network.
"""

from __future__ import annotations

import torch
import torch.nn as nn


def two_relu_mlp(inplace: bool = False) -> nn.Module:
    """Flatten -> Linear(2,2) [W=I, b=0] -> ReLU -> Linear(2,1) [w=(1,1), b=-1.5] -> ReLU.

    On inputs (1,1), (1,-1), (-1,-1) (shape [3, 2, 1, 1]) the ReLU codes are 111, 100, 000 (N_A = 3).
    """
    first, second = nn.Linear(2, 2), nn.Linear(2, 1)
    with torch.no_grad():
        first.weight.copy_(torch.eye(2))
        first.bias.zero_()
        second.weight.fill_(1.0)
        second.bias.fill_(-1.5)
    return nn.Sequential(nn.Flatten(), first, nn.ReLU(inplace=inplace), second, nn.ReLU(inplace=inplace))


def threshold_net(in_features: int, thresholds: list[float], axes: list[int] | None = None) -> nn.Module:
    """Flatten -> Linear(in_features, k) -> ReLU where unit j computes ``x[axes[j]] - thresholds[j]``.

    With one axis for every unit the patterns are the ``k + 1`` intervals of a line cut at distinct thresholds;
    with k distinct axes and zero thresholds they are the 2^k orthants.
    """
    k = len(thresholds)
    axes = axes if axes is not None else [0] * k
    lin = nn.Linear(in_features, k)
    with torch.no_grad():
        lin.weight.zero_()
        for j, a in enumerate(axes):
            lin.weight[j, a] = 1.0
        lin.bias.copy_(-torch.tensor(thresholds))
    return nn.Sequential(nn.Flatten(), lin, nn.ReLU())


def linear_classifier(in_features: int, num_classes: int, bias: bool = True) -> nn.Module:
    """Flatten -> Linear: its NTK is known in closed form (true-class logit: [y_i = y_j](x_i . x_j + 1))."""
    return nn.Sequential(nn.Flatten(), nn.Linear(in_features, num_classes, bias=bias))


def linear_bn_classifier(scales: tuple[float, float] = (1.0, 2.0)) -> nn.Module:
    """Flatten -> Linear(2,2, no bias) [W = diag(scales)] -> BatchNorm1d(2, eps=0) [gamma=1, beta=0].

    In eval mode (running mean 0, var 1, eps 0) the BN layer is ``gamma * z + beta`` exactly, so the NTK over
    the ``*weight`` parameters is ``X diag(2 + scales^2) X^T`` while the Linear weight alone gives ``2 X X^T``.
    """
    lin = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.diag(torch.tensor(scales)))
    return nn.Sequential(nn.Flatten(), lin, nn.BatchNorm1d(2, eps=0.0))


def tiny_bn_convnet(in_channels: int = 3, num_classes: int = 4, width: int = 4) -> nn.Module:
    """Conv-BN-ReLU x2 (second stride 2) -> global average pool -> Linear; accepts any input size >= 1x1."""
    return nn.Sequential(
        nn.Conv2d(in_channels, width, 3, padding=1, bias=False),
        nn.BatchNorm2d(width),
        nn.ReLU(inplace=True),
        nn.Conv2d(width, width, 3, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(width),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(width, num_classes),
    )


def _linear(weight: list[list[float]], bias: list[float] | None) -> nn.Linear:
    w = torch.tensor(weight, dtype=torch.float32)
    lin = nn.Linear(w.shape[1], w.shape[0], bias=bias is not None)
    with torch.no_grad():
        lin.weight.copy_(w)
        if bias is not None:
            lin.bias.copy_(torch.tensor(bias, dtype=torch.float32))
    return lin


def linear_net(weight: list[list[float]], bias: list[float] | None = None) -> nn.Module:
    """Flatten -> Linear with ``W = weight`` ``[out, in]`` and ``b = bias`` (no bias when None)."""
    return nn.Sequential(nn.Flatten(), _linear(weight, bias))


def two_layer_linear(
    w1: list[list[float]],
    w2: list[list[float]],
    b1: list[float] | None = None,
    b2: list[float] | None = None,
) -> nn.Module:
    """Flatten -> Linear(W1, b1) -> Linear(W2, b2): ``y = W2 (W1 x + b1) + b2`` (no activation)."""
    return nn.Sequential(nn.Flatten(), _linear(w1, b1), _linear(w2, b2))


def relu_probe_mlp(d: int) -> nn.Module:
    """Flatten -> Linear(d, d) [W=I, b=0] -> ReLU -> Linear(d, 1) [w=1, b=0]: ``y = sum_j relu(x_j)``.

    Its input Jacobian for sample ``x`` is the indicator vector ``[x_j > 0]`` (one logit).
    """
    return nn.Sequential(
        nn.Flatten(), _linear(torch.eye(d).tolist(), [0.0] * d), nn.ReLU(), _linear([[1.0] * d], [0.0])
    )


def _fill(t: torch.Tensor, phase: float, scale: float) -> None:
    """Deterministic, sign-mixed values independent of the global RNG: ``scale * sin(0.7 * i + phase)``."""
    with torch.no_grad():
        idx = torch.arange(t.numel(), dtype=torch.float64)
        t.copy_((scale * torch.sin(0.7 * idx + phase)).reshape(t.shape))


class TinyConvNet(nn.Module):
    """Conv3x3 -> [BN] -> ReLU -> Conv3x3/stride 2 -> [BN] -> ReLU -> global avg pool -> Linear, fixed weights.

    ``bn=False`` builds the same network with the BN layers left out (identical conv/linear weights), so metrics
    that remove BN must give identical values on both. ``inplace`` selects ``ReLU(inplace=True)``.
    Input ``[B, in_channels, H, W]`` (any ``H, W >= 1``) -> logits ``[B, num_classes]``.
    """

    def __init__(
        self, in_channels: int = 3, num_classes: int = 4, width: int = 4, bn: bool = True, inplace: bool = False
    ):
        super().__init__()
        conv1 = nn.Conv2d(in_channels, width, 3, padding=1)
        conv2 = nn.Conv2d(width, width, 3, stride=2, padding=1, bias=False)
        head = nn.Linear(width, num_classes)
        for i, p in enumerate([conv1.weight, conv1.bias, conv2.weight, head.weight, head.bias]):
            _fill(p, phase=0.3 * i, scale=0.5)
        layers: list[nn.Module] = [conv1]
        if bn:
            layers.append(nn.BatchNorm2d(width))
        layers += [nn.ReLU(inplace=inplace), conv2]
        if bn:
            layers.append(nn.BatchNorm2d(width))
        layers += [nn.ReLU(inplace=inplace), nn.AdaptiveAvgPool2d(1), nn.Flatten(), head]
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)
