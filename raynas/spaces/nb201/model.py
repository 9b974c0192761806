"""The NAS-Bench-201 macro network ("tiny network" of the benchmark).

Shape walk for the default ``C=16, N=5, stages=3`` on ``[B, 3, 32, 32]``::

    stem   Conv3x3(3->C) + BN                     -> [B, 16, 32, 32]
    stage0 N cells at C                           -> [B, 16, 32, 32]
    reduce ResNet basic block C->2C, stride 2     -> [B, 32, 16, 16]
    stage1 N cells at 2C                          -> [B, 32, 16, 16]
    reduce ResNet basic block 2C->4C, stride 2    -> [B, 64,  8,  8]
    stage2 N cells at 4C                          -> [B, 64,  8,  8]
    head   BN, ReLU, global avg pool, Linear      -> [B, num_classes]

With the default BN flags the parameter counts equal the benchmark's (e.g. 1,531,546 for the all
``nor_conv_3x3`` cell, 73,306 for cells without parameters, at 10 classes).

Two networks share this skeleton (``network=``, see :data:`NETWORKS`):

``"benchmark"`` (default)
    NAS-Bench-201's own network: every BN affine with running statistics, convs without bias.
``"zero_cost_nas"``
    The ``nasbench2`` network of SamsungLabs/zero-cost-nas (``foresight/models/nasbench2.py``), which is
    what zero-cost-nas, HNAS, RoBoT and NB-Suite-Zero score. It differs from the benchmark's **only inside
    the cells**: the cell ``nor_conv_1x1`` / ``nor_conv_3x3`` convs carry a bias and the cell BNs are
    ``affine=False, track_running_stats=False`` (so they normalise with the batch statistics in eval mode
    too). The stem, the ResNet reduction blocks (their convs bias-free, BNs affine and tracking, the
    AvgPool + 1x1-conv shortcut), the head BN and the classifier are the benchmark's. It exists so the
    values behind the RoBoT / HNAS / NB-Suite-Zero tables can be regenerated on the network those values
    were computed on. ``tests/parity/test_nasbench2_network.py`` checks it against the reference's logits.
    Not reproduced, because no forward pass sees it: the reference also instantiates the four unused
    candidate ops of every edge (their parameters never get a gradient and do not reach the logits), and
    it fixes ``N=5``, three stages and 3 input channels, where this class keeps them options. (Those dead
    parameters do count in the reference's ``sum(p.numel())``.) Metric-side, not covered here: zero-cost-nas
    runs ``synflow`` on ``get_prunable_copy(bn=False)``, which drops the stem, cell and head BNs but keeps
    the four reduction-block BNs, whereas raynas's ``synflow`` removes every BN.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn

from raynas.errors import ConfigError
from raynas.spaces.ops import OPS, ReLUConvBN

#: the networks :class:`NB201Network` builds (``network=``): the benchmark's, and zero-cost-nas's ``nasbench2``
NETWORKS: tuple[str, ...] = ("benchmark", "zero_cost_nas")


class NB201Cell(nn.Module):
    """Node ``j`` = sum over ``i < j`` of ``op_{j<-i}(node i)``; the output is the last node.

    ``[B, C_in, H, W] -> [B, C_out, H/stride, W/stride]``: edges leaving the input node carry the channel
    change and the stride (as in the benchmark), the others map ``C_out -> C_out`` at stride 1.
    """

    def __init__(
        self, arch, C_in: int, C_out: int, stride: int = 1, affine: bool = True, track_running_stats: bool = True
    ):
        super().__init__()
        self.plan = [(j, i) for j, i, _ in arch.edges()]
        self.nodes = arch.nodes
        self.edge_ops = nn.ModuleList(
            OPS[op](C_in if i == 0 else C_out, C_out, stride if i == 0 else 1, affine, track_running_stats)
            for j, i, op in arch.edges()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        states: list[torch.Tensor | None] = [x] + [None] * (self.nodes - 1)
        for (j, i), op in zip(self.plan, self.edge_ops):
            y = op(states[i])
            states[j] = y if states[j] is None else states[j] + y
        return states[-1]  # type: ignore[return-value]


class ResNetBasicBlock(nn.Module):
    """The benchmark's reduction block: ``out = conv_b(conv_a(x)) + shortcut(x)``.

    ``conv_a`` is a 3x3 ReLUConvBN with the stride, ``conv_b`` a 3x3 ReLUConvBN; the stride-2 shortcut is
    AvgPool2d(2, 2) followed by a bias-free 1x1 conv (no BN, as in the benchmark).
    ``[B, C_in, H, W] -> [B, C_out, H/stride, W/stride]`` (H, W even when stride is 2).
    """

    def __init__(self, C_in: int, C_out: int, stride: int = 2, affine: bool = True, track_running_stats: bool = True):
        super().__init__()
        if stride not in (1, 2):
            raise ConfigError(f"ResNetBasicBlock stride must be 1 or 2, got {stride}")
        self.conv_a = ReLUConvBN(C_in, C_out, 3, stride, 1, 1, affine, track_running_stats)
        self.conv_b = ReLUConvBN(C_out, C_out, 3, 1, 1, 1, affine, track_running_stats)
        if stride == 2:
            self.downsample: nn.Module | None = nn.Sequential(
                nn.AvgPool2d(kernel_size=2, stride=2, padding=0),
                nn.Conv2d(C_in, C_out, kernel_size=1, stride=1, padding=0, bias=False),
            )
        elif C_in != C_out:
            self.downsample = ReLUConvBN(C_in, C_out, 1, 1, 0, 1, affine, track_running_stats)
        else:
            self.downsample = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.conv_b(self.conv_a(x)) + shortcut


class NB201Macro(nn.Module):
    """NAS-Bench-201's macro skeleton, written once for the benchmark's network (:class:`NB201Network`) and the
    TE-NAS supernet (:class:`raynas.spaces.nb201.supernet.NB201SuperNet`): a stem (optional), ``stages`` stages of
    ``N`` cells (channels ``C * 2**s``) with ResNet reduction blocks between them, then BN-ReLU-global-pool-Linear.
    ``forward([B, in_channels, H, W]) -> logits [B, num_classes]``. The layer names (``stem``, ``cells``,
    ``lastact``, ``global_pooling``, ``classifier``) are the benchmark's; a subclass validates its options and calls
    :meth:`_build` with how to make one cell."""

    def _build(self, make_cell: Callable[[int], nn.Module], num_classes: int, C: int, N: int, stages: int,
               in_channels: int, affine: bool, track_running_stats: bool, stem: bool,
               depth: int | None = None) -> None:
        """Create the layers, in the order the benchmark's code creates them (seeded initial weights depend on
        it). ``make_cell(c)``: one cell of ``c`` channels; ``depth``: keep only the first ``depth`` layers of the
        cell stack (TE-NAS's shallow supernets), the head sized to where they end."""
        self.stem: nn.Module = nn.Sequential(
            nn.Conv2d(in_channels, C, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(C, affine=affine, track_running_stats=track_running_stats),
        ) if stem else nn.Identity()
        layers: list[nn.Module] = []
        c_prev = C
        for s in range(stages):
            c = C * 2**s
            if s > 0:
                layers.append(ResNetBasicBlock(c_prev, c, 2, affine, track_running_stats))
            layers.extend(make_cell(c) for _ in range(N))
            c_prev = c
        if depth is not None:
            layers = layers[:depth]
            c_prev = C * 2 ** sum(isinstance(m, ResNetBasicBlock) for m in layers)
        self.cells = nn.Sequential(*layers)
        self.lastact = nn.Sequential(
            nn.BatchNorm2d(c_prev, affine=affine, track_running_stats=track_running_stats), nn.ReLU(inplace=False)
        )
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.lastact(self.cells(self.stem(x)))
        return self.classifier(torch.flatten(self.global_pooling(x), 1))


class NB201Network(NB201Macro):
    """Stem, ``stages`` stages of ``N`` cells (channels ``C * 2**s``) with reduction blocks between them,
    then BN-ReLU-global-pool-Linear. ``forward([B, in_channels, H, W]) -> logits [B, num_classes]``.

    ``network="benchmark"``: ``affine`` / ``track_running_stats`` apply to every BN (the benchmark's trained
    nets use True, True); a non-affine BN gives its conv a bias, as in the benchmark.

    ``network="zero_cost_nas"``: zero-cost-nas's ``nasbench2`` (see the module docstring): the cells are
    built as with ``affine=False, track_running_stats=False`` (cell convs with bias, cell BNs without
    weights or running statistics), everything outside the cells as the benchmark's. That network has no BN
    flags of its own, so ``affine`` / ``track_running_stats`` other than True raise :class:`ConfigError`
    rather than silently building a network that is neither.
    """

    def __init__(
        self,
        arch,
        num_classes: int,
        C: int = 16,
        N: int = 5,
        stages: int = 3,
        in_channels: int = 3,
        affine: bool = True,
        track_running_stats: bool = True,
        network: str = "benchmark",
        stem: bool = True,
    ):
        super().__init__()
        if network not in NETWORKS:
            raise ConfigError(
                f"NB201Network: network must be one of {', '.join(map(repr, NETWORKS))}, got {network!r}"
            )
        if network == "zero_cost_nas" and not (affine is True and track_running_stats is True):
            raise ConfigError(
                "NB201Network: network='zero_cost_nas' fixes its BatchNorms (cells: affine=False, "
                "track_running_stats=False; stem, reductions, head: True, True); do not combine it with "
                f"affine={affine!r}, track_running_stats={track_running_stats!r}"
            )
        for key, value, low in (("num_classes", num_classes, 1), ("C", C, 1), ("N", N, 0), ("stages", stages, 1),
                                ("in_channels", in_channels, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"NB201Network: {key} must be an int >= {low}, got {value!r}")
        self.arch_str = str(arch)
        self.network = network
        #: channels of the input ``[B, in_channels, H, W]`` (C without a stem): what input-making metrics read
        self.in_channels = in_channels
        # nasbench2 builds its cells with affine=False, track_running_stats=False; with the benchmark's rule
        # "conv bias iff the BN is not affine" (ops.ReLUConvBN) that also gives the cell convs their bias.
        cell_bn = (False, False) if network == "zero_cost_nas" else (affine, track_running_stats)
        if not isinstance(stem, bool):
            raise ConfigError(f"NB201Network: stem must be True or False, got {stem!r}")
        if not stem and in_channels != C:
            raise ConfigError(f"NB201Network: without a stem the first cell takes the input, so in_channels must "
                              f"equal C; got in_channels={in_channels}, C={C}")
        # stem=False: TE-NAS's thin network for the linear regions (``use_stem=False``: the input goes straight
        # into the first cell)
        self._build(lambda c: NB201Cell(arch, c, c, 1, *cell_bn), num_classes, C, N, stages, in_channels, affine,
                    track_running_stats, stem)

    def extra_repr(self) -> str:
        return f"arch={self.arch_str}, network={self.network}"
