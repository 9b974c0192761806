"""DARTS supernet for pruning searches (TE-NAS): all candidate ops on every edge of both cell types.

A cell has ``nodes`` intermediate nodes; node ``k`` sums one :class:`~raynas.spaces.nb201.supernet.MixedOp`
per earlier state (``0 = c_{k-2}``, ``1 = c_{k-1}``, ``2..`` earlier nodes): 14 edges for 4 nodes, in the
order ``(k=0,i=0), (0,1), (1,0), (1,1), (1,2), (2,0), ...`` (:func:`darts_edges`). The pruning state of the
whole net is one flat alive list: the normal cell's edges, then the reduction cell's (28 entries). An edge
with no alive op is absent (a pruned input of its node).

Macro as :class:`~raynas.spaces.darts.model.DartsNetworkCIFAR` (stem conv + BN, cells with reductions at
``layers // 3`` and ``2 * layers // 3``, the same preprocessing, concat of the nodes, global pool, Linear),
with the TE-NAS knobs ``use_stem``, ``depth`` (keep the first ``depth`` cells) and ``lastact`` (BN-ReLU
before the pool, as TE-NAS' search network has). TE-NAS prunes on ``C=1, stem_multiplier=1`` with
``layers=3, depth=2`` (one normal then one reduction cell), and counts regions on the same net without stem.
Pools are plain (no extra BN), as in TE-NAS.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn

from raynas.errors import ConfigError, InvalidArchitectureError
from raynas.spaces.darts.model import reduction_layers
from raynas.spaces.ops import OPS, OPS_DARTS, FactorizedReduce, ReLUConvBN
from raynas.spaces.supernet import Alive, Combine, MixedOp


def darts_edges(nodes: int = 4) -> tuple[tuple[int, int], ...]:
    """Edges ``(node k, input state i)`` of one cell in the flat order used by alive lists."""
    return tuple((k, i) for k in range(nodes) for i in range(k + 2))


def node_groups(nodes: int = 4, cells: int = 2) -> tuple[tuple[int, ...], ...]:
    """Flat alive-list positions of the incoming edges of each node, cell by cell (normal nodes first)."""
    per_cell = len(darts_edges(nodes))
    groups = []
    for c in range(cells):
        start = c * per_cell
        for k in range(nodes):
            groups.append(tuple(start + e for e, (kk, _i) in enumerate(darts_edges(nodes)) if kk == k))
    return tuple(groups)


class DartsSuperCell(nn.Module):
    """``(s0 [B, C_pp, ...], s1 [B, C_p, H, W]) -> [B, nodes * C, H', W']`` with a MixedOp on every edge.

    Preprocessing as :class:`~raynas.spaces.darts.model.DartsCell` (1x1 ReLUConvBN, FactorizedReduce when
    the previous cell reduced); edges reading ``c_{k-2}`` or ``c_{k-1}`` stride 2 in a reduction cell.
    """

    def __init__(
        self, ops: Sequence[str], nodes: int, C_pp: int, C_p: int, C: int, reduction: bool, reduction_prev: bool,
        combine: Combine = "mean",
    ):
        super().__init__()
        self.reduction, self.nodes = reduction, nodes
        self.preprocess0: nn.Module = (
            FactorizedReduce(C_pp, C, 2) if reduction_prev else ReLUConvBN(C_pp, C, 1, 1, 0, bias=False)
        )
        self.preprocess1 = ReLUConvBN(C_p, C, 1, 1, 0, bias=False)
        self.plan = darts_edges(nodes)
        self.edge_ops = nn.ModuleList(
            MixedOp(ops, C, C, 2 if reduction and i < 2 else 1, combine=combine) for _k, i in self.plan
        )

    def forward(self, s0: torch.Tensor, s1: torch.Tensor) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        e = 0
        for k in range(self.nodes):
            node = self.edge_ops[e](states[0])
            for i in range(1, k + 2):
                node = node + self.edge_ops[e + i](states[i])
            e += k + 2
            states.append(node)
        return torch.cat(states[2:], dim=1)


class DartsSuperNet(nn.Module):
    """``[B, in_channels, H, W] -> logits [B, num_classes]``; see the module docstring for the macro.

    ``in_channels`` must equal ``stem_multiplier * C`` when ``use_stem=False``. DARTS' own search network is
    ``C=16, layers=8, stem_multiplier=3`` (the defaults).
    """

    def __init__(
        self, num_classes: int, C: int = 16, layers: int = 8, stem_multiplier: int = 3, in_channels: int = 3,
        ops: Sequence[str] = OPS_DARTS, nodes: int = 4, combine: Combine = "mean", use_stem: bool = True,
        depth: int | None = None, lastact: bool = False,
    ):
        super().__init__()
        for key, value, low in (("num_classes", num_classes, 1), ("C", C, 1), ("layers", layers, 1),
                                ("stem_multiplier", stem_multiplier, 1), ("in_channels", in_channels, 1),
                                ("nodes", nodes, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"DartsSuperNet: {key} must be an int >= {low}, got {value!r}")
        unknown = [o for o in ops if o not in OPS]
        if not ops or unknown or len(set(ops)) != len(ops):
            raise ConfigError(f"DartsSuperNet: ops must be distinct known op names, got {list(ops)}")
        C_stem = stem_multiplier * C
        if not use_stem and in_channels != C_stem:
            raise ConfigError(f"DartsSuperNet without stem needs in_channels == {C_stem}, got {in_channels}")
        n_cells = layers if depth is None else min(layers, depth)
        if depth is not None and (isinstance(depth, bool) or not isinstance(depth, int) or depth < 1):
            raise ConfigError(f"DartsSuperNet: depth must be None or an int >= 1, got {depth!r}")
        self.ops, self.nodes = tuple(ops), nodes
        self.n_edges = len(darts_edges(nodes))
        self.stem: nn.Module = (
            nn.Sequential(nn.Conv2d(in_channels, C_stem, 3, padding=1, bias=False), nn.BatchNorm2d(C_stem))
            if use_stem else nn.Identity()
        )
        reductions = reduction_layers(layers)
        self.cells = nn.ModuleList()
        C_pp, C_p, C_curr, reduction_prev = C_stem, C_stem, C, False
        for i in range(n_cells):
            reduction = i in reductions
            if reduction:
                C_curr *= 2
            self.cells.append(DartsSuperCell(self.ops, nodes, C_pp, C_p, C_curr, reduction, reduction_prev, combine))
            reduction_prev = reduction
            C_pp, C_p = C_p, nodes * C_curr
        self.lastact: nn.Module = (
            nn.Sequential(nn.BatchNorm2d(C_p), nn.ReLU(inplace=False)) if lastact else nn.Identity()
        )
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(C_p, num_classes)

    def set_alive(self, alive: Alive) -> None:
        """Alive op names per edge: ``n_edges`` normal-cell entries then ``n_edges`` reduction-cell entries."""
        if len(alive) != 2 * self.n_edges:
            raise InvalidArchitectureError(f"alive lists {len(alive)} edges, expected {2 * self.n_edges}")
        for cell in self.cells:
            part = alive[self.n_edges:] if cell.reduction else alive[: self.n_edges]
            for mixed, names in zip(cell.edge_ops, part):
                mixed.set_alive(names)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1)
        return self.classifier(self.global_pooling(self.lastact(s1)).flatten(1))
