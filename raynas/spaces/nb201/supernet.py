"""NAS-Bench-201 supernet for pruning searches (TE-NAS): every edge holds all candidate ops at once.

Each of the cell's edges is a :class:`MixedOp` that evaluates only its *alive* ops and combines them with
uniform weights. TE-NAS has no trained architecture parameters: its supernet weights the ops by the softmax
of equal logits, i.e. ``1/k`` for the ``k`` alive ops (``combine="mean"``, the default); ``combine="sum"``
gives the unweighted sum. With exactly one alive op per edge both equal the plain NB201 cell.

All ops stay instantiated whatever is alive, so one set of weights serves every pruning state: the
parameters of the supernet and of "the supernet with op o removed" are the same tensors, and comparisons
between the two are paired (the removed op's weights just receive no gradient).

Macro (``C``, ``N``, ``stages``) as :class:`~raynas.spaces.nb201.model.NB201Network`, plus two TE-NAS knobs:
``use_stem=False`` feeds the input straight to the first cell (it must then have ``C`` channels) and
``depth`` keeps only the first ``depth`` layers (cells and reduction blocks). TE-NAS uses ``C=3, N=1`` with
stem for the NTK and ``C=1, N=1, depth=1`` without stem (one 1-channel cell) for the linear regions.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn

from raynas.errors import ConfigError, InvalidArchitectureError
from raynas.spaces.nb201.arch import NB201Arch, cell_edges
from raynas.spaces.nb201.model import NB201Cell, NB201Macro
from raynas.spaces.ops import OPS, OPS_NB201
from raynas.spaces.supernet import Alive, Combine, MixedOp

class NB201SuperCell(NB201Cell):
    """An :class:`NB201Cell` whose edges are :class:`MixedOp` s (same node sums, same ``forward``)."""

    def __init__(
        self, ops: Sequence[str], nodes: int, C_in: int, C_out: int, stride: int = 1, affine: bool = True,
        track_running_stats: bool = True, combine: Combine = "mean",
    ):
        nn.Module.__init__(self)  # NB201Cell.__init__ would build single ops from an arch
        self.plan = list(cell_edges(nodes))
        self.nodes = nodes
        self.edge_ops = nn.ModuleList(
            MixedOp(ops, C_in if i == 0 else C_out, C_out, stride if i == 0 else 1, affine, track_running_stats,
                    combine)
            for _j, i in self.plan
        )


class NB201SuperNet(NB201Macro):
    """Stem (optional), stages of :class:`NB201SuperCell` s with ResNet reduction blocks, BN-ReLU-pool-Linear.

    ``forward([B, in_channels, H, W]) -> logits [B, num_classes]``; ``in_channels`` must equal ``C`` when
    ``use_stem=False``. Layer names match :class:`NB201Network` (``stem``, ``cells``, ``lastact``,
    ``global_pooling``, ``classifier``); see :meth:`arch_state_dict` for loading into one.
    """

    def __init__(
        self, num_classes: int, C: int = 16, N: int = 5, stages: int = 3, in_channels: int = 3,
        ops: Sequence[str] = OPS_NB201, nodes: int = 4, affine: bool = True, track_running_stats: bool = True,
        combine: Combine = "mean", use_stem: bool = True, depth: int | None = None,
    ):
        super().__init__()
        for key, value, low in (("num_classes", num_classes, 1), ("C", C, 1), ("N", N, 0), ("stages", stages, 1),
                                ("in_channels", in_channels, 1), ("nodes", nodes, 2)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"NB201SuperNet: {key} must be an int >= {low}, got {value!r}")
        unknown = [o for o in ops if o not in OPS]
        if not ops or unknown or len(set(ops)) != len(ops):
            raise ConfigError(f"NB201SuperNet: ops must be distinct known op names, got {list(ops)}")
        if not use_stem and in_channels != C:
            raise ConfigError(f"NB201SuperNet without stem needs in_channels == C, got {in_channels} and {C}")
        if depth is not None and (isinstance(depth, bool) or not isinstance(depth, int) or depth < 1):
            raise ConfigError(f"NB201SuperNet: depth must be None or an int >= 1, got {depth!r}")
        self.ops, self.nodes, self.n_edges = tuple(ops), nodes, len(cell_edges(nodes))
        self._build(lambda c: NB201SuperCell(self.ops, nodes, c, c, 1, affine, track_running_stats, combine),
                    num_classes, C, N, stages, in_channels, affine, track_running_stats, use_stem, depth)

    def super_cells(self) -> list[NB201SuperCell]:
        return [m for m in self.cells if isinstance(m, NB201SuperCell)]

    def set_alive(self, alive: Alive) -> None:
        """Alive op names per edge (canonical edge order), shared by every cell."""
        if len(alive) != self.n_edges:
            raise InvalidArchitectureError(f"alive lists {len(alive)} edges, the cell has {self.n_edges}")
        for cell in self.super_cells():
            for mixed, names in zip(cell.edge_ops, alive):
                mixed.set_alive(names)

    def set_arch(self, arch: NB201Arch) -> None:
        """Keep exactly the op of ``arch`` on each edge."""
        self.set_alive([(op,) for op in arch.ops])

    def arch_state_dict(self) -> dict[str, torch.Tensor]:
        """State dict for the :class:`NB201Network` of the current single-op-per-edge state.

        Keys ``cells.<l>.edge_ops.<e>.ops.<k>.*`` of the alive op ``k`` become ``cells.<l>.edge_ops.<e>.*``;
        other keys are kept. Raises :class:`InvalidArchitectureError` unless every edge has one alive op.
        """
        out: dict[str, torch.Tensor] = {}
        for layer, module in enumerate(self.cells):
            if not isinstance(module, NB201SuperCell):
                continue
            for e, mixed in enumerate(module.edge_ops):
                if len(mixed.alive) != 1:
                    raise InvalidArchitectureError(f"edge {e} of layer {layer} has {len(mixed.alive)} alive ops")
        for key, value in self.state_dict().items():
            parts = key.split(".")
            if parts[0] == "stem" and isinstance(self.stem, nn.Identity):
                continue
            if len(parts) > 5 and parts[0] == "cells" and parts[2] == "edge_ops":
                mixed = self.cells[int(parts[1])].edge_ops[int(parts[3])]
                if parts[4] != "ops" or int(parts[5]) != mixed.alive[0]:
                    continue
                key = ".".join(parts[:4] + parts[6:])
            out[key] = value
        return out
