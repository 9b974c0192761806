"""What the TE-NAS supernets of every space share: :class:`MixedOp`, an edge holding all its candidate ops at
once (only the *alive* ones run, combined with uniform weights), and the ``Alive`` / ``Combine`` types. The
NAS-Bench-201 and DARTS supernets (:mod:`raynas.spaces.nb201.supernet`, :mod:`raynas.spaces.darts.supernet`) build
their cells from it.
"""

from __future__ import annotations

from typing import Literal, Sequence

import torch
import torch.nn as nn

from raynas.errors import ConfigError, InvalidArchitectureError
from raynas.spaces.ops import OPS

#: per edge, the names of the ops still alive (a subset of the supernet's op list, any order)
Alive = Sequence[Sequence[str]]
Combine = Literal["mean", "sum"]


class MixedOp(nn.Module):
    """All candidate ops of one edge; ``forward`` combines the alive ones.

    ``[B, C_in, H, W] -> [B, C_out, H/stride, W/stride]``. With no alive op the edge is absent: the output
    is zeros of the right shape (a pruned DARTS edge), produced by a ``Zero`` op so shapes are always right.
    """

    def __init__(
        self, names: Sequence[str], C_in: int, C_out: int, stride: int, affine: bool = True,
        track_running_stats: bool = True, combine: Combine = "mean",
    ):
        super().__init__()
        if combine not in ("mean", "sum"):
            raise ConfigError(f"MixedOp combine must be 'mean' or 'sum', got {combine!r}")
        self.names = tuple(names)
        self.combine = combine
        self.ops = nn.ModuleList(OPS[n](C_in, C_out, stride, affine, track_running_stats) for n in self.names)
        self._empty = OPS["none"](C_in, C_out, stride, affine, track_running_stats)
        self.alive: tuple[int, ...] = tuple(range(len(self.names)))

    def set_alive(self, names: Sequence[str]) -> None:
        unknown = sorted(set(names) - set(self.names))
        if unknown:
            raise InvalidArchitectureError(f"op(s) {unknown} are not candidates of this edge {list(self.names)}")
        self.alive = tuple(i for i, n in enumerate(self.names) if n in set(names))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.alive:
            return self._empty(x)
        out = self.ops[self.alive[0]](x)
        for i in self.alive[1:]:
            out = out + self.ops[i](x)
        if self.combine == "mean" and len(self.alive) > 1:
            out = out / len(self.alive)
        return out

    def extra_repr(self) -> str:
        return f"alive={[self.names[i] for i in self.alive]}, combine={self.combine}"
