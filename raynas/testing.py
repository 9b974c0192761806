"""Shared test fakes and tiny fixed networks, one section per task (append only)."""

from __future__ import annotations

# --- metrics B ---
# Tiny fixed networks with hand-set weights for the activation-pattern and NTK metrics (naswot, das_*,
# linear_regions, ntk_trace, ntk_cond, tenas_ntk_cond). Inputs are [B, C, H, W]; the MLPs flatten them.
import torch as _torch_b  # noqa: E402
import torch.nn as _nn_b  # noqa: E402


def two_relu_mlp(inplace: bool = False) -> _nn_b.Module:
    """Flatten -> Linear(2,2) [W=I, b=0] -> ReLU -> Linear(2,1) [w=(1,1), b=-1.5] -> ReLU.

    On inputs (1,1), (1,-1), (-1,-1) (shape [3, 2, 1, 1]) the ReLU codes are 111, 100, 000 (N_A = 3).
    """
    first, second = _nn_b.Linear(2, 2), _nn_b.Linear(2, 1)
    with _torch_b.no_grad():
        first.weight.copy_(_torch_b.eye(2))
        first.bias.zero_()
        second.weight.fill_(1.0)
        second.bias.fill_(-1.5)
    return _nn_b.Sequential(_nn_b.Flatten(), first, _nn_b.ReLU(inplace=inplace), second, _nn_b.ReLU(inplace=inplace))


def threshold_net(in_features: int, thresholds: list[float], axes: list[int] | None = None) -> _nn_b.Module:
    """Flatten -> Linear(in_features, k) -> ReLU where unit j computes ``x[axes[j]] - thresholds[j]``.

    With one axis for every unit the patterns are the ``k + 1`` intervals of a line cut at distinct thresholds;
    with k distinct axes and zero thresholds they are the 2^k orthants.
    """
    k = len(thresholds)
    axes = axes if axes is not None else [0] * k
    lin = _nn_b.Linear(in_features, k)
    with _torch_b.no_grad():
        lin.weight.zero_()
        for j, a in enumerate(axes):
            lin.weight[j, a] = 1.0
        lin.bias.copy_(-_torch_b.tensor(thresholds))
    return _nn_b.Sequential(_nn_b.Flatten(), lin, _nn_b.ReLU())


def linear_classifier(in_features: int, num_classes: int, bias: bool = True) -> _nn_b.Module:
    """Flatten -> Linear: its NTK is known in closed form (true-class logit: [y_i = y_j](x_i . x_j + 1))."""
    return _nn_b.Sequential(_nn_b.Flatten(), _nn_b.Linear(in_features, num_classes, bias=bias))


def linear_bn_classifier(scales: tuple[float, float] = (1.0, 2.0)) -> _nn_b.Module:
    """Flatten -> Linear(2,2, no bias) [W = diag(scales)] -> BatchNorm1d(2, eps=0) [gamma=1, beta=0].

    In eval mode (running mean 0, var 1, eps 0) the BN layer is ``gamma * z + beta`` exactly, so the NTK over
    the ``*weight`` parameters is ``X diag(2 + scales^2) X^T`` while the Linear weight alone gives ``2 X X^T``.
    """
    lin = _nn_b.Linear(2, 2, bias=False)
    with _torch_b.no_grad():
        lin.weight.copy_(_torch_b.diag(_torch_b.tensor(scales)))
    return _nn_b.Sequential(_nn_b.Flatten(), lin, _nn_b.BatchNorm1d(2, eps=0.0))


def tiny_bn_convnet(in_channels: int = 3, num_classes: int = 4, width: int = 4) -> _nn_b.Module:
    """Conv-BN-ReLU x2 (second stride 2) -> global average pool -> Linear; accepts any input size >= 1x1."""
    return _nn_b.Sequential(
        _nn_b.Conv2d(in_channels, width, 3, padding=1, bias=False),
        _nn_b.BatchNorm2d(width),
        _nn_b.ReLU(inplace=True),
        _nn_b.Conv2d(width, width, 3, stride=2, padding=1, bias=False),
        _nn_b.BatchNorm2d(width),
        _nn_b.ReLU(),
        _nn_b.AdaptiveAvgPool2d(1),
        _nn_b.Flatten(),
        _nn_b.Linear(width, num_classes),
    )


# --- search ---
# A synthetic scored pool with known ground truth, and a lookup oracle that counts its calls (RoBoT, baselines).
import numpy as _np_s  # noqa: E402


def synthetic_pool_table(n: int = 200, seed: int = 0) -> tuple[dict[str, _np_s.ndarray], _np_s.ndarray]:
    """``(table, acc)`` for ``n`` archs with indices ``3 * i + 1`` (non-contiguous on purpose).

    Columns: ``good`` = 2 * acc + 5 (ranks archs exactly like acc), ``bad`` = -acc (exactly reversed),
    ``noise`` ~ N(0, 1) (unrelated). ``acc`` [n] are distinct values in [60, 90). The best weights are any
    ``w`` with ``w_good - w_bad`` large against ``|w_noise|``; single metric ``good`` finds the optimum at once.
    """
    rng = _np_s.random.default_rng(seed)
    acc = 60.0 + 30.0 * rng.permutation(n) / n
    table = {
        "arch_index": 3 * _np_s.arange(n, dtype=_np_s.int64) + 1,
        "good": 2.0 * acc + 5.0,
        "bad": -acc,
        "noise": rng.normal(size=n),
    }
    return table, acc


class FakeOracle:
    """Lookup oracle over ``arch_index -> value`` with per-arch ``cost`` and ``final`` (default: value).

    ``calls`` lists every queried arch index, repeats included, so tests can pin caching.
    """

    def __init__(self, arch_index, values, costs=None, finals=None):  # type: ignore[no-untyped-def]
        from raynas.search.oracle import QueryResult

        self._qr = QueryResult
        idx = [int(a) for a in arch_index]
        vals = [float(v) for v in values]
        self.costs = dict(zip(idx, [float(c) for c in costs] if costs is not None else [1.0] * len(idx)))
        self.values = dict(zip(idx, vals))
        self.finals = dict(zip(idx, [float(f) for f in finals] if finals is not None else vals))
        self.calls: list[int] = []

    def _check(self, arch_index: int) -> int:
        from raynas.errors import OracleError

        if int(arch_index) not in self.values:
            raise OracleError(f"unknown architecture {arch_index}")
        return int(arch_index)

    def query(self, arch_index: int):  # type: ignore[no-untyped-def]
        a = self._check(arch_index)
        self.calls.append(a)
        return self._qr(self.values[a], self.costs[a])

    def final(self, arch_index: int) -> float:
        return self.finals[self._check(arch_index)]

    def best_final(self) -> float:
        return max(self.finals.values())


# --- metrics A ---
# Tiny fixed networks with hand-set weights for the zero-cost proxies (params, flops, grad_norm, snip, grasp,
# fisher, synflow, jacob_cov). Inputs are [B, C, H, W]; the linear nets flatten them.
import torch as _torch_a  # noqa: E402
import torch.nn as _nn_a  # noqa: E402


def _linear_a(weight: list[list[float]], bias: list[float] | None) -> _nn_a.Linear:
    w = _torch_a.tensor(weight, dtype=_torch_a.float32)
    lin = _nn_a.Linear(w.shape[1], w.shape[0], bias=bias is not None)
    with _torch_a.no_grad():
        lin.weight.copy_(w)
        if bias is not None:
            lin.bias.copy_(_torch_a.tensor(bias, dtype=_torch_a.float32))
    return lin


def linear_net(weight: list[list[float]], bias: list[float] | None = None) -> _nn_a.Module:
    """Flatten -> Linear with ``W = weight`` ``[out, in]`` and ``b = bias`` (no bias when None)."""
    return _nn_a.Sequential(_nn_a.Flatten(), _linear_a(weight, bias))


def two_layer_linear(
    w1: list[list[float]],
    w2: list[list[float]],
    b1: list[float] | None = None,
    b2: list[float] | None = None,
) -> _nn_a.Module:
    """Flatten -> Linear(W1, b1) -> Linear(W2, b2): ``y = W2 (W1 x + b1) + b2`` (no activation)."""
    return _nn_a.Sequential(_nn_a.Flatten(), _linear_a(w1, b1), _linear_a(w2, b2))


def relu_probe_mlp(d: int) -> _nn_a.Module:
    """Flatten -> Linear(d, d) [W=I, b=0] -> ReLU -> Linear(d, 1) [w=1, b=0]: ``y = sum_j relu(x_j)``.

    Its input Jacobian for sample ``x`` is the indicator vector ``[x_j > 0]`` (one logit).
    """
    return _nn_a.Sequential(
        _nn_a.Flatten(), _linear_a(_torch_a.eye(d).tolist(), [0.0] * d), _nn_a.ReLU(), _linear_a([[1.0] * d], [0.0])
    )


def _fill_a(t: _torch_a.Tensor, phase: float, scale: float) -> None:
    """Deterministic, sign-mixed values independent of the global RNG: ``scale * sin(0.7 * i + phase)``."""
    with _torch_a.no_grad():
        idx = _torch_a.arange(t.numel(), dtype=_torch_a.float64)
        t.copy_((scale * _torch_a.sin(0.7 * idx + phase)).reshape(t.shape))


class TinyConvNet(_nn_a.Module):
    """Conv3x3 -> [BN] -> ReLU -> Conv3x3/stride 2 -> [BN] -> ReLU -> global avg pool -> Linear, fixed weights.

    ``bn=False`` builds the same network with the BN layers left out (identical conv/linear weights), so metrics
    that remove BN must give identical values on both. ``inplace`` selects ``ReLU(inplace=True)``.
    Input ``[B, in_channels, H, W]`` (any ``H, W >= 1``) -> logits ``[B, num_classes]``.
    """

    def __init__(
        self, in_channels: int = 3, num_classes: int = 4, width: int = 4, bn: bool = True, inplace: bool = False
    ):
        super().__init__()
        conv1 = _nn_a.Conv2d(in_channels, width, 3, padding=1)
        conv2 = _nn_a.Conv2d(width, width, 3, stride=2, padding=1, bias=False)
        head = _nn_a.Linear(width, num_classes)
        for i, p in enumerate([conv1.weight, conv1.bias, conv2.weight, head.weight, head.bias]):
            _fill_a(p, phase=0.3 * i, scale=0.5)
        layers: list[_nn_a.Module] = [conv1]
        if bn:
            layers.append(_nn_a.BatchNorm2d(width))
        layers += [_nn_a.ReLU(inplace=inplace), conv2]
        if bn:
            layers.append(_nn_a.BatchNorm2d(width))
        layers += [_nn_a.ReLU(inplace=inplace), _nn_a.AdaptiveAvgPool2d(1), _nn_a.Flatten(), head]
        self.body = _nn_a.Sequential(*layers)

    def forward(self, x: _torch_a.Tensor) -> _torch_a.Tensor:
        return self.body(x)


# --- spaces ---
# Tiny NAS-Bench-201 networks for fast metric / pipeline tests (8x8 inputs work with the default 3 stages).
NB201_CONV3 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"


def tiny_nb201(  # type: ignore[no-untyped-def]
    arch: str = NB201_CONV3, num_classes: int = 4, C: int = 4, N: int = 1, seed: int = 0
):
    """A freshly initialised NB201 network (``[B, 3, H, W] -> [B, num_classes]``, H and W divisible by 4)."""
    import torch as _torch_sp

    from raynas.spaces import create_space

    _torch_sp.manual_seed(seed)
    return create_space("nb201").to_module(arch, num_classes, C=C, N=N)
