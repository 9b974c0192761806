"""The NAS-Bench-101 network as the benchmark trains it (``nasbench/lib/model_builder.py``), in PyTorch.

Stem: 3x3 conv-BN-ReLU to ``C`` (128) channels. Then ``stacks`` (3) stacks of ``N`` (3) cells; before every
stack but the first, a 2x2 max-pool (stride 2) and the channel count doubles. Head: global average pool and a
linear classifier (with bias). Convolutions have no bias; every BN has a learnt scale and shift (TF's
``batch_normalization`` defaults, momentum 0.997, eps 1e-5).

Inside a cell of ``C_in -> C_out`` channels (:func:`vertex_channels`): the output's channels are split evenly
over the vertices that feed it (the first ``C_out mod k`` of them get one more); every other interior vertex
takes the largest width among its successors. A vertex sums its inputs: each interior predecessor truncated to
its width (first channels), and the cell input through a 1x1 conv-BN-ReLU *projection* to its width when
vertex 0 feeds it. The output concatenates its interior inputs in vertex order, plus a projection of the cell
input to ``C_out`` when vertex 0 feeds it directly (alone when nothing else does).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from raynas.errors import ConfigError
from raynas.spaces.nb101.cell import NB101Cell, PrunedSpec

__all__ = ["ConvBNReLU", "NB101CellModule", "NB101Network", "param_count", "vertex_channels"]

#: TensorFlow's BN momentum 0.997 as PyTorch's update fraction, and its epsilon
_BN_MOMENTUM, _BN_EPS = 1.0 - 0.997, 1e-5


class ConvBNReLU(nn.Sequential):
    """``k x k`` conv (no bias, same padding) -> BN -> ReLU (the benchmark's ``conv_bn_relu``)."""

    def __init__(self, C_in: int, C_out: int, k: int):
        super().__init__(
            nn.Conv2d(C_in, C_out, k, padding=k // 2, bias=False),
            nn.BatchNorm2d(C_out, eps=_BN_EPS, momentum=_BN_MOMENTUM),
            nn.ReLU(inplace=False),
        )


def vertex_channels(C_in: int, C_out: int, matrix: tuple[tuple[int, ...], ...]) -> list[int]:
    """Channels of every vertex of a pruned cell (the benchmark's ``compute_vertex_channels``)."""
    n = len(matrix)
    ch = [0] * n
    ch[0], ch[n - 1] = C_in, C_out
    if n == 2:
        return ch
    feeders = [v for v in range(1, n - 1) if matrix[v][n - 1]]
    base, extra = divmod(C_out, len(feeders))
    for k, v in enumerate(feeders):
        ch[v] = base + (1 if k < extra else 0)
    for v in range(n - 3, 0, -1):
        if not matrix[v][n - 1]:
            ch[v] = max(ch[d] for d in range(v + 1, n - 1) if matrix[v][d])
    if min(ch[1:n - 1]) < 1:
        raise ConfigError(f"NB101 cell with {len(feeders)} output inputs cannot split {C_out} channels")
    return ch


def _op(name: str, channels: int) -> nn.Module:
    if name == "conv3x3-bn-relu":
        return ConvBNReLU(channels, channels, 3)
    if name == "conv1x1-bn-relu":
        return ConvBNReLU(channels, channels, 1)
    return nn.MaxPool2d(3, stride=1, padding=1)  # maxpool3x3: 'same' padding, pads never win a max


class NB101CellModule(nn.Module):
    """One cell (the benchmark's ``build_module``) of ``C_in -> C_out`` channels."""

    def __init__(self, cell: NB101Cell | PrunedSpec, C_in: int, C_out: int):
        super().__init__()
        m = cell.matrix
        self.n = n = len(m)
        self.matrix = m
        self.channels = ch = vertex_channels(C_in, C_out, m)
        self.ops = nn.ModuleList([nn.Identity()] + [_op(cell.ops[v - 1], ch[v]) for v in range(1, n - 1)])
        # projections of the cell input: one per vertex that vertex 0 feeds (the output's to C_out)
        self.proj = nn.ModuleDict({str(v): ConvBNReLU(C_in, ch[v], 1) for v in range(1, n) if m[0][v]})
        self.preds = [[s for s in range(1, v) if m[s][v]] for v in range(n)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, ch = self.n, self.channels
        states: list[torch.Tensor] = [x]
        for v in range(1, n - 1):
            ins = [states[s][:, :ch[v]] for s in self.preds[v]]
            if str(v) in self.proj:
                ins.append(self.proj[str(v)](x))
            h = ins[0]
            for t in ins[1:]:
                h = h + t
            states.append(self.ops[v](h))
        outs = [states[s] for s in self.preds[n - 1]]
        if not outs:  # a pruned cell whose output has no interior input has the edge 0 -> output
            return self.proj[str(n - 1)](x)
        y = outs[0] if len(outs) == 1 else torch.cat(outs, dim=1)
        return y + self.proj[str(n - 1)](x) if str(n - 1) in self.proj else y


class NB101Network(nn.Module):
    """The benchmark's network of one cell (module docstring); ``forward`` returns logits ``[B, num_classes]``.

    ``cell``: a canonical :class:`NB101Cell` (the benchmark's representative vertex order) or a
    :class:`PrunedSpec` (the order given, as the benchmark's builder and NASLib build any spec).
    """

    def __init__(self, cell: NB101Cell | PrunedSpec, num_classes: int, *, C: int = 128, N: int = 3, stacks: int = 3,
                 in_channels: int = 3):
        super().__init__()
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ConfigError(f"NB101 network: num_classes must be a positive int, got {num_classes!r}")
        self.cell = cell
        self.stem = ConvBNReLU(in_channels, C, 3)
        layers: list[nn.Module] = []
        c_prev, c = C, C
        for s in range(stacks):
            if s > 0:
                layers.append(nn.MaxPool2d(2, stride=2, ceil_mode=True))  # TF 'same': odd maps round up
                c *= 2
            for _ in range(N):
                layers.append(NB101CellModule(cell, c_prev, c))
                c_prev = c
        self.layers = nn.Sequential(*layers)
        # the global average pool as a module (the benchmark's reduce_mean): metrics that read the pre-pool map
        # (Zen-NAS) find it; the values equal ``h.mean(dim=(2, 3))``
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c, num_classes)

    @property
    def cells(self) -> nn.ModuleList:
        """The cell modules in forward order (the max-pools between stacks are not cells): what cell-wise metrics
        (AZ-NAS's feature maps) read. A view, not a registered child: parameter names stay ``layers.*``."""
        return nn.ModuleList([m for m in self.layers if isinstance(m, NB101CellModule)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.layers(self.stem(x))
        return self.classifier(self.gap(h).flatten(1))


def param_count(cell: NB101Cell | PrunedSpec, num_classes: int, *, C: int = 128, N: int = 3, stacks: int = 3,
                in_channels: int = 3) -> int:
    """Parameters of :class:`NB101Network` counted from the channel plan, without building it: each
    ``k x k`` conv-BN-ReLU of ``a -> b`` channels has ``k*k*a*b + 2*b``; the classifier ``c*num_classes +
    num_classes``. (The benchmark's ``trainable_parameters`` counts the same TensorFlow variables.)"""
    m, n = cell.matrix, len(cell.matrix)

    def cbr(k: int, a: int, b: int) -> int:
        return k * k * a * b + 2 * b

    total = cbr(3, in_channels, C)
    c_prev, c = C, C
    for s in range(stacks):
        if s > 0:
            c *= 2
        for _ in range(N):
            ch = vertex_channels(c_prev, c, m)
            total += sum(cbr(1, c_prev, ch[v]) for v in range(1, n) if m[0][v])
            total += sum(cbr(3 if op == "conv3x3-bn-relu" else 1, ch[v], ch[v])
                         for v, op in enumerate(cell.ops, start=1) if op != "maxpool3x3")
            c_prev = c
    return total + c * num_classes + num_classes
