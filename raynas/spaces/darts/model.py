"""DARTS evaluation networks (Liu, Simonyan & Yang, ICLR 2019) built from a :class:`DartsGenotype`.

Both macro skeletons stack ``layers`` cells; cells ``layers // 3`` and ``2 * layers // 3`` are reduction
cells (stride 2 on the edges that read the cell inputs, channels doubled). A cell's two inputs are the
outputs of the two previous cells, first projected to ``C`` channels (1x1 :class:`ReLUConvBN`, or a
:class:`FactorizedReduce` when the older one is still at twice the resolution). Its output concatenates the
intermediate nodes: ``[B, nodes * C, H, W]``.

No auxiliary head and no drop path: ``forward`` returns the logits tensor only, as metric scoring needs.
The ops come from :data:`raynas.spaces.ops.OPS` (they match the DARTS definitions; convs bias-free).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from raynas.errors import ConfigError
from raynas.spaces.darts.genotypes import DartsGenotype, Node
from raynas.spaces.ops import FactorizedReduce, ReLUConvBN, create_op

__all__ = ["CIFAR_PRESETS", "IMAGENET_PRESETS", "DartsCell", "DartsNetworkCIFAR", "DartsNetworkImageNet",
           "DartsThinNetwork", "reduction_layers"]

#: CIFAR macro settings: the cheap proxy used for scoring and the paper's evaluation network
CIFAR_PRESETS: dict[str, dict[str, int]] = {"proxy": {"C": 16, "layers": 5}, "eval": {"C": 36, "layers": 20}}
#: ImageNet (mobile setting, 224 px) evaluation network of the paper
IMAGENET_PRESETS: dict[str, dict[str, int]] = {"eval": {"C": 48, "layers": 14}}


def reduction_layers(layers: int) -> tuple[int, int]:
    """Indices of the two reduction cells (equal when ``layers == 1``)."""
    return layers // 3, 2 * layers // 3


def _check(C: int, layers: int, num_classes: int, in_channels: int) -> None:
    if C < 2 or layers < 1 or num_classes < 1 or in_channels < 1:
        raise ConfigError(
            f"DARTS network needs C >= 2, layers >= 1, num_classes >= 1, in_channels >= 1; "
            f"got C={C}, layers={layers}, num_classes={num_classes}, in_channels={in_channels}"
        )


class DartsCell(nn.Module):
    """One cell: ``(s0 [B, C_pp, 2H or H, ...], s1 [B, C_p, H, W]) -> [B, nodes * C, H', W']``.

    ``H' = ceil(H / 2)`` in a reduction cell, else ``H``. ``reduction_prev`` says that ``s0`` is at twice the
    resolution of ``s1`` (the previous cell reduced), so it is brought down with a FactorizedReduce.
    """

    def __init__(self, nodes: tuple[Node, ...], C_pp: int, C_p: int, C: int, reduction: bool, reduction_prev: bool):
        super().__init__()
        self.reduction = reduction
        self.preprocess0: nn.Module = (
            FactorizedReduce(C_pp, C, 2) if reduction_prev else ReLUConvBN(C_pp, C, 1, 1, 0, bias=False)
        )
        self.preprocess1 = ReLUConvBN(C_p, C, 1, 1, 0, bias=False)
        # indices[2k], indices[2k+1] are the inputs of node k; ops in the same order
        self.indices = tuple(src for node in nodes for _, src in node)
        self.ops = nn.ModuleList(
            create_op(op, C, C, 2 if reduction and src < 2 else 1) for node in nodes for op, src in node
        )
        self.multiplier = len(nodes)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for k in range(self.multiplier):
            a, b = self.indices[2 * k], self.indices[2 * k + 1]
            states.append(self.ops[2 * k](states[a]) + self.ops[2 * k + 1](states[b]))
        return torch.cat(states[2:], dim=1)


def _stack_cells(
    genotype: DartsGenotype, C: int, layers: int, C_pp: int, C_p: int, reduction_prev: bool,
    reductions: tuple[int, ...] | None = None,
) -> tuple[nn.ModuleList, int]:
    """The cell stack and its output channels (reduction cells at ``reductions``, default
    :func:`reduction_layers`)."""
    cells = nn.ModuleList()
    reductions = reduction_layers(layers) if reductions is None else reductions
    C_curr = C
    for i in range(layers):
        reduction = i in reductions
        if reduction:
            C_curr *= 2
        nodes = genotype.reduce if reduction else genotype.normal
        cell = DartsCell(nodes, C_pp, C_p, C_curr, reduction, reduction_prev)
        cells.append(cell)
        reduction_prev = reduction
        C_pp, C_p = C_p, cell.multiplier * C_curr
    return cells, C_p


class DartsNetworkCIFAR(nn.Module):
    """CIFAR network: ``[B, in_channels, H, W] -> logits [B, num_classes]``.

    Stem: 3x3 conv ``in_channels -> stem_multiplier * C`` + BN; then the cells (stage widths ``C, 2C, 4C``);
    global average pool and a Linear classifier on ``nodes * 4C`` features. Works for any ``H, W >= 1``.
    """

    def __init__(
        self, genotype: DartsGenotype, num_classes: int, C: int = 36, layers: int = 20,
        stem_multiplier: int = 3, in_channels: int = 3,
    ):
        super().__init__()
        _check(C, layers, num_classes, in_channels)
        self.in_channels = in_channels  # channels of the input [B, in_channels, H, W]
        if stem_multiplier < 1:
            raise ConfigError(f"stem_multiplier must be >= 1, got {stem_multiplier}")
        C_stem = stem_multiplier * C
        self.stem = nn.Sequential(nn.Conv2d(in_channels, C_stem, 3, padding=1, bias=False), nn.BatchNorm2d(C_stem))
        self.cells, C_out = _stack_cells(genotype, C, layers, C_stem, C_stem, reduction_prev=False)
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(C_out, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1)
        return self.classifier(self.global_pooling(s1).flatten(1))


class DartsThinNetwork(nn.Module):
    """TE-NAS's thin network for the linear regions (``model_config_thin`` of its DARTS search: C=1, N=1,
    depth=2, no stem, stem_multiplier 1): ``[B, 1, H, W]`` straight into a normal cell at C=1 and a reduction
    cell at 2C, then BN-ReLU (its ``lastact``), global pool and Linear. Used for both DARTS skeletons (TE-NAS
    counts regions on 3x3 crops for CIFAR and ImageNet alike)."""

    def __init__(self, genotype: DartsGenotype, num_classes: int, C: int = 1, in_channels: int = 1):
        super().__init__()
        if C < 1 or num_classes < 1 or in_channels < 1:
            raise ConfigError(f"DARTS thin network needs C, num_classes, in_channels >= 1; got {C}, {num_classes}, "
                              f"{in_channels}")
        self.in_channels = in_channels
        self.stem = nn.Identity()
        self.cells, C_out = _stack_cells(genotype, C, 2, in_channels, in_channels, reduction_prev=False,
                                         reductions=(1,))
        self.lastact = nn.Sequential(nn.BatchNorm2d(C_out), nn.ReLU(inplace=False))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(C_out, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s0 = s1 = x
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1)
        return self.classifier(self.global_pooling(self.lastact(s1)).flatten(1))


class DartsNetworkImageNet(nn.Module):
    """ImageNet network: ``[B, in_channels, 224, 224] -> logits [B, num_classes]``.

    Stem0: conv 3x3 s2 ``-> C/2`` + BN + ReLU + conv 3x3 s2 ``-> C`` + BN (56 px); stem1: ReLU + conv 3x3
    s2 + BN (28 px). The first cell therefore sees inputs at two resolutions (``reduction_prev``). After the
    two reduction cells the map is 7x7 at 224 px; the paper's 7x7 average pool is written as a global pool,
    identical there and usable at smaller test sizes.
    """

    def __init__(self, genotype: DartsGenotype, num_classes: int, C: int = 48, layers: int = 14, in_channels: int = 3):
        super().__init__()
        _check(C, layers, num_classes, in_channels)
        self.in_channels = in_channels  # channels of the input [B, in_channels, H, W]
        self.stem0 = nn.Sequential(
            nn.Conv2d(in_channels, C // 2, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(C // 2),
            nn.ReLU(inplace=False),
            nn.Conv2d(C // 2, C, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(C),
        )
        self.stem1 = nn.Sequential(
            nn.ReLU(inplace=False), nn.Conv2d(C, C, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(C)
        )
        self.cells, C_out = _stack_cells(genotype, C, layers, C, C, reduction_prev=True)
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(C_out, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s0 = self.stem0(x)
        s1 = self.stem1(s0)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1)
        return self.classifier(self.global_pooling(s1).flatten(1))
