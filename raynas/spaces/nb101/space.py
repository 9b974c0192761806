"""The NAS-Bench-101 space (Ying et al., ICML 2019): every unique cell of at most 7 vertices, 9 edges, 3 ops.

Architectures are :class:`~raynas.spaces.nb101.cell.NB101Cell` values (canonical, so isomorphic cells are one
architecture). Index ``i`` is the ``i``-th smallest canonical code (:mod:`raynas.spaces.nb101.cell`): the
benchmark has no index of its own (its tables are keyed by :meth:`NB101Cell.module_hash`), so this order is
raynas's and stable. The codes of all 423,624 cells are enumerated on first use (under a second, vectorised;
no data file). String form: ``"0110/0001/0001/0000|conv3x3-bn-relu,maxpool3x3"`` (adjacency rows, interior ops).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch.nn as nn

from raynas.config import from_dict, load_yaml
from raynas.errors import ConfigError, InvalidArchitectureError
from raynas.spaces import SPACES
from raynas.spaces.base import SearchSpace
from raynas.spaces.nb101.cell import (
    MAX_EDGES, MAX_VERTICES, OPS_NB101, NB101Cell, NB101CellError, NoPathError, NotADAGError, TooManyEdgesError,
    TooManyVerticesError, UnknownOpError, cell_from_code, enumerate_codes, make_cell, module_hash, parse_cell, prune,
)
from raynas.spaces.spec import InputSpec, builtin_spec_path

__all__ = [
    "MAX_EDGES", "MAX_VERTICES", "NB101Cell", "NB101CellError", "NB101Space", "NUM_CELLS", "NoPathError",
    "NB101SpecFile", "NotADAGError", "OPS_NB101", "TooManyEdgesError", "TooManyVerticesError", "UnknownOpError", "all_codes",
    "load_nb101_spec", "make_cell", "module_hash", "parse_cell",
]

#: the benchmark's count of unique cells
NUM_CELLS = 423_624


@dataclass(frozen=True)
class NB101MacroSpec:
    """The network: a ``stem_channels`` 3x3 conv stem, ``stacks`` stacks of ``cells_per_stack`` cells, channels
    doubled (and the map max-pooled) between stacks."""

    stem_channels: int
    stacks: int
    cells_per_stack: int


@dataclass(frozen=True)
class NB101SpecFile:
    """``specs/nb101.yaml`` (read strictly: unknown keys are a ConfigError). Not a
    :class:`~raynas.spaces.spec.SpaceSpec`: NB101's ops label vertices, they are not edge ops of the shared
    op table that SpaceSpec checks against."""

    name: str
    kind: str
    ops: tuple[str, ...]
    max_vertices: int
    max_edges: int
    macro: NB101MacroSpec
    input: InputSpec
    description: str = ""

    def __post_init__(self) -> None:
        if self.kind != "nb101":
            raise ConfigError(f"space spec {self.name!r} has kind {self.kind!r}, expected 'nb101'")
        if (tuple(self.ops), self.max_vertices, self.max_edges) != (OPS_NB101, MAX_VERTICES, MAX_EDGES):
            raise ConfigError(f"space spec {self.name!r}: NB101 has ops {list(OPS_NB101)}, {MAX_VERTICES} vertices "
                              f"and {MAX_EDGES} edges; got {list(self.ops)}, {self.max_vertices}, {self.max_edges}")


def load_nb101_spec(path: str | Path | None = None) -> NB101SpecFile:
    """The built-in ``nb101`` spec (or the file at ``path``), validated."""
    p = Path(path) if path is not None else builtin_spec_path("nb101")
    try:
        return from_dict(NB101SpecFile, load_yaml(p))
    except ConfigError as e:
        raise ConfigError(f"space spec {p}: {e}") from None


@functools.lru_cache(maxsize=1)
def all_codes() -> np.ndarray:
    """Sorted canonical codes of every cell (read-only int64 array; index ``i`` <-> ``all_codes()[i]``)."""
    codes = enumerate_codes()
    codes.setflags(write=False)
    return codes


class NB101Space(SearchSpace):
    """NAS-Bench-101 with the benchmark's CIFAR network (:class:`~raynas.spaces.nb101.model.NB101Network`).

    Macro defaults (``C``: stem channels, 128; ``N``: cells per stack, 3; ``stacks``: 3; input channels) are
    used by :meth:`to_module` unless overridden per call.
    """

    name = "nb101"
    #: a pipeline's generic width ``C`` sets the stem channels; its ``N`` (NB201's cells per stage, 5) is not
    #: taken: NB101's 3 cells per stack are part of the benchmark (override with ``to_module(..., N=...)``)
    network_size_keys = ("C",)

    def __init__(self, *, C: int = 128, N: int = 3, stacks: int = 3, in_channels: int = 3, input_size: int = 32,
                 name: str = "nb101"):
        for key, v in (("C", C), ("N", N), ("stacks", stacks), ("in_channels", in_channels)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(f"space {name!r}: {key} must be a positive int, got {v!r}")
        self.name = name
        self.macro = dict(C=C, N=N, stacks=stacks, in_channels=in_channels)
        self.input_size = input_size

    @classmethod
    def from_spec(cls, spec: NB101SpecFile, **overrides: Any) -> NB101Space:
        """Space from a validated spec; ``overrides`` replace the macro (``C, N, stacks, in_channels``)."""
        m = spec.macro
        kw: dict[str, Any] = dict(C=m.stem_channels, N=m.cells_per_stack, stacks=m.stacks,
                                  in_channels=spec.input.channels, input_size=spec.input.size)
        unknown = sorted(set(overrides) - set(kw))
        if unknown:
            raise ConfigError(f"space {spec.name!r}: unknown option(s) {unknown}; allowed: {sorted(kw)}")
        kw.update(overrides)
        return cls(name=spec.name, **kw)

    @property
    def size(self) -> int:
        return len(all_codes())

    # --- indexing -------------------------------------------------------------------------------------
    def index_to_arch(self, index: int) -> NB101Cell:
        if isinstance(index, (bool, np.bool_)) or not isinstance(index, (int, np.integer)) \
                or not 0 <= index < self.size:
            raise InvalidArchitectureError(f"{self.name} index must be an int in [0, {self.size}), got {index!r}")
        return cell_from_code(int(all_codes()[int(index)]))

    def arch_to_index(self, arch: NB101Cell | str) -> int:
        c = self._check(arch).code
        codes = all_codes()
        i = int(np.searchsorted(codes, c))
        if i >= len(codes) or int(codes[i]) != c:  # cannot happen for a valid canonical cell
            raise InvalidArchitectureError(f"{self.name}: cell {arch} is not in the enumeration")
        return i

    # --- strings --------------------------------------------------------------------------------------
    def parse(self, text: str) -> NB101Cell:
        return parse_cell(text)

    def format(self, arch: NB101Cell | str) -> str:
        return str(self._check(arch))

    def cell(self, matrix: Any, ops: Any) -> NB101Cell:
        """The canonical cell of ``(matrix, ops)`` as the benchmark's ``ModelSpec`` takes them (pruned)."""
        return make_cell(matrix, ops)

    def module_as_given(self, matrix: Any, ops: Any, num_classes: int, **kwargs: Any) -> nn.Module:
        """The network of ``(matrix, ops)`` pruned but in the vertex order given, not the canonical one.

        The benchmark's builder (and NASLib's) builds whatever order it is handed, and the output's channel
        split follows that order, so the parameter count of another order of one cell can differ by a few
        thousand. NAS-Bench-Suite-Zero's ``params`` were computed on the order of its keys: use this to
        reproduce them. :meth:`to_module` builds the canonical order (the benchmark's representative).
        """
        from raynas.spaces.nb101.model import NB101Network

        unknown = sorted(set(kwargs) - set(self.macro))
        if unknown:
            raise ConfigError(f"{self.name}.module_as_given: unknown option(s) {unknown}; allowed: {sorted(self.macro)}")
        return NB101Network(prune(matrix, ops), num_classes, **{**self.macro, **kwargs})

    # --- networks -------------------------------------------------------------------------------------
    def training_kwargs(self) -> dict[str, Any]:
        """A real-training query's default network: 16 stem channels, one cell per stack (the benchmark's: 128,
        3)."""
        return {"C": 16, "N": 1}

    def to_module(self, arch: NB101Cell | str, num_classes: int, **kwargs: Any) -> nn.Module:
        """The benchmark's network of ``arch`` (its canonical vertex order, which is the representative the
        benchmark's generator kept and trained); kwargs override ``C, N, stacks, in_channels``."""
        from raynas.spaces.nb101.model import NB101Network

        unknown = sorted(set(kwargs) - set(self.macro))
        if unknown:
            raise ConfigError(f"{self.name}.to_module: unknown option(s) {unknown}; allowed: {sorted(self.macro)}")
        return NB101Network(self._check(arch), num_classes, **{**self.macro, **kwargs})

    def thin_kwargs(self) -> dict[str, Any]:
        """None: a 1-channel copy does not exist (the output's channels are split over up to 5 inputs, so a
        cell needs at least its output in-degree of channels); linear regions are counted on the network."""
        return {}

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "ops": list(OPS_NB101), "max_vertices": MAX_VERTICES,
                "max_edges": MAX_EDGES, "macro": dict(self.macro)}

    def __repr__(self) -> str:
        return f"NB101Space(name={self.name!r}, size={self.size})"

    def _check(self, arch: NB101Cell | str) -> NB101Cell:
        if isinstance(arch, str):
            return self.parse(arch)
        if not isinstance(arch, NB101Cell):
            raise InvalidArchitectureError(f"{self.name}: expected an NB101Cell or string, got {type(arch).__name__}")
        return arch


SPACES.add("nb101", lambda **kw: NB101Space.from_spec(load_nb101_spec(), **kw))
