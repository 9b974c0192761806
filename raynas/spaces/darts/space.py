"""The DARTS search space (Liu, Simonyan & Yang, ICLR 2019) at CIFAR and ImageNet size.

Both registered spaces share the genotype space (:mod:`raynas.spaces.darts.genotypes`: 7 final-cell ops,
4 intermediate nodes with 2 distinct inputs each, ``1_076_746_950_455_072_400`` genotypes, which fits the
store's int64 ``arch_index``) and differ in the macro network :meth:`DartsSpace.to_module` builds:

* ``darts_cifar`` (``raynas/spaces/specs/darts_cifar.yaml``): CIFAR network, default C=16, 5 layers (the cheap proxy
  used for scoring); ``preset="eval"`` gives the paper's C=36, 20 layers.
* ``darts_imagenet`` (``raynas/spaces/specs/darts_imagenet.yaml``): 224 px ImageNet network, C=48, 14 layers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Sequence

import torch.nn as nn

from raynas.errors import ConfigError, InvalidArchitectureError, SearchError
from raynas.spaces import SPACES
from raynas.spaces.base import PruningSupernets, SearchSpace
from raynas.spaces.darts.genotypes import (
    DARTS_FINAL_OPS, DartsGenotype, check_genotype, format_genotype, genotype_size, genotype_to_index,
    index_to_genotype, parse_genotype,
)
from raynas.spaces.darts.model import CIFAR_PRESETS, IMAGENET_PRESETS, DartsNetworkCIFAR, DartsNetworkImageNet
from raynas.spaces.spec import SpaceSpec, load_builtin_spec, register_macro_schema

__all__ = ["DartsMacroSpec", "DartsSpace"]

_NETWORKS = ("cifar", "imagenet")
_PRESETS = {"cifar": CIFAR_PRESETS, "imagenet": IMAGENET_PRESETS}


@dataclass(frozen=True)
class DartsMacroSpec:
    """``macro`` block of a ``kind: darts`` spec.

    ``stem_multiplier`` applies to the CIFAR stem only (width ``stem_multiplier * C``); the ImageNet stem's
    widths are fixed (``C/2``, ``C``), so giving it there is an error.
    """

    network: Literal["cifar", "imagenet"]
    C: int
    layers: int
    stem_multiplier: int | None = None

    def __post_init__(self) -> None:
        if self.C < 2 or self.layers < 1:
            raise ConfigError(f"macro: need C >= 2 and layers >= 1, got C={self.C}, layers={self.layers}")
        if self.network == "imagenet" and self.stem_multiplier is not None:
            raise ConfigError("macro: stem_multiplier applies to the CIFAR stem only, not network: imagenet")
        if self.stem_multiplier is not None and self.stem_multiplier < 1:
            raise ConfigError(f"macro: stem_multiplier must be >= 1, got {self.stem_multiplier}")


register_macro_schema("darts", DartsMacroSpec)


def _preset(network: str, preset: str | None, owner: str) -> dict[str, int]:
    """Macro settings of a named preset (None: none)."""
    if preset is None:
        return {}
    presets = _PRESETS[network]
    if preset not in presets:
        raise ConfigError(f"space {owner!r}: unknown preset {preset!r}; known: {sorted(presets)}")
    return dict(presets[preset])


class DartsSpace(SearchSpace):
    """DARTS genotypes with a CIFAR or ImageNet macro network.

    Indices follow :mod:`raynas.spaces.darts.genotypes` with this space's op list as the op digits.
    """

    def __init__(
        self,
        ops: Sequence[str] = DARTS_FINAL_OPS,
        nodes: int = 4,
        *,
        network: str = "cifar",
        C: int = 16,
        layers: int = 5,
        stem_multiplier: int = 3,
        in_channels: int = 3,
        input_size: int = 32,
        name: str = "darts_cifar",
    ):
        from raynas.spaces.ops import OPS

        self.ops = tuple(ops)
        unknown = [o for o in self.ops if o not in OPS]
        if not self.ops or unknown or len(set(self.ops)) != len(self.ops):
            raise ConfigError(f"space {name!r}: ops must be distinct known op names, got {list(self.ops)}")
        if "none" in self.ops:
            raise ConfigError(f"space {name!r}: 'none' is not an op of final DARTS cells; drop it from ops")
        if nodes < 1:
            raise ConfigError(f"space {name!r}: a cell needs at least 1 intermediate node, got {nodes}")
        if network not in _NETWORKS:
            raise ConfigError(f"space {name!r}: network must be one of {_NETWORKS}, got {network!r}")
        self.nodes = nodes
        self.network = network
        self.name = name
        self.input_size = input_size
        self.macro: dict[str, Any] = dict(C=C, layers=layers, in_channels=in_channels)
        if network == "cifar":
            self.macro["stem_multiplier"] = stem_multiplier
        self._size = genotype_size(len(self.ops), nodes)

    @classmethod
    def from_spec(cls, spec: SpaceSpec, **overrides: Any) -> DartsSpace:
        """Space from a validated ``kind: darts`` spec; ``overrides``: C, layers, stem_multiplier (CIFAR),
        in_channels, preset (``"proxy"``/``"eval"`` for CIFAR, ``"eval"`` for ImageNet)."""
        if spec.kind != "darts" or not isinstance(spec.macro, DartsMacroSpec):
            raise ConfigError(f"space spec {spec.name!r} has kind {spec.kind!r}, expected 'darts'")
        m = spec.macro
        kw: dict[str, Any] = dict(C=m.C, layers=m.layers, in_channels=spec.input.channels)
        if m.network == "cifar":
            kw["stem_multiplier"] = 3 if m.stem_multiplier is None else m.stem_multiplier
        overrides = dict(overrides)
        preset = overrides.pop("preset", None)
        unknown = sorted(set(overrides) - set(kw))
        if unknown:
            raise ConfigError(f"space {spec.name!r}: unknown option(s) {unknown}; allowed: {sorted(kw) + ['preset']}")
        # explicit options win over the preset, which wins over the spec
        kw.update(_preset(m.network, preset, spec.name))
        kw.update(overrides)
        return cls(spec.ops, spec.nodes, network=m.network, input_size=spec.input.size, name=spec.name, **kw)

    @property
    def size(self) -> int:
        return self._size

    # --- indexing -------------------------------------------------------------------------------------
    def index_to_arch(self, index: int) -> DartsGenotype:
        return index_to_genotype(index, self.ops, self.nodes)

    def arch_to_index(self, arch: DartsGenotype | str) -> int:
        return genotype_to_index(self._check(arch), self.ops)

    # --- strings --------------------------------------------------------------------------------------
    def parse(self, text: str) -> DartsGenotype:
        """Canonical string or DARTS ``Genotype(...)`` repr -> genotype of this space."""
        return parse_genotype(text, self.ops, self.nodes)

    def format(self, arch: DartsGenotype | str) -> str:
        return format_genotype(self._check(arch))

    # --- networks -------------------------------------------------------------------------------------
    def network_options(self) -> tuple[str, ...]:
        return (*self.macro, "preset")

    def training_kwargs(self) -> dict[str, Any]:
        """A real-training query's default network: width 8, 3 cells (a normal cell and the two reduction
        cells; the proxy's: 16, 5)."""
        return {"C": 8, "layers": 3}

    def to_module(self, arch: DartsGenotype | str, num_classes: int, **kwargs: Any) -> nn.Module:
        """The macro network of this space; kwargs override ``C, layers, in_channels`` (and
        ``stem_multiplier`` for CIFAR) or pick a ``preset``. Returns logits ``[B, num_classes]``."""
        preset = kwargs.pop("preset", None)
        if kwargs.pop("thin", False):
            # thin_kwargs(): TE-NAS's thin network, the same for both skeletons; it fixes its own width, depth and
            # input, so the macro options a scoring run passes for the full network (C, layers, ...) do not apply
            from raynas.spaces.darts.model import DartsThinNetwork

            unknown = sorted(set(kwargs) - set(self.macro))
            if unknown:
                raise ConfigError(f"{self.name}.to_module: unknown option(s) {unknown}; allowed: "
                                  f"{sorted(self.macro) + ['preset', 'thin']}")
            return DartsThinNetwork(self._check(arch), num_classes)
        unknown = sorted(set(kwargs) - set(self.macro))
        if unknown:
            raise ConfigError(
                f"{self.name}.to_module: unknown option(s) {unknown}; allowed: {sorted(self.macro) + ['preset']}"
            )
        kw = {**self.macro, **_preset(self.network, preset, self.name), **kwargs}
        genotype = self._check(arch)
        if self.network == "cifar":
            return DartsNetworkCIFAR(genotype, num_classes, **kw)
        return DartsNetworkImageNet(genotype, num_classes, **kw)

    def thin_kwargs(self) -> dict[str, Any]:
        """TE-NAS's thin network for the linear regions (:class:`~raynas.spaces.darts.model.DartsThinNetwork`:
        no stem, a C=1 normal cell and a reduction cell on the 1-channel input, BN-ReLU, pool, Linear)."""
        return {"thin": True}

    # --- pruning search (TE-NAS, CIFAR network only) -------------------------------------------------------
    #: final DARTS cells have no ``none``, so TE-NAS must remove it before pruning (its code sets it to -inf)
    tenas_needs_drop_none = True

    def _tenas_check(self) -> None:
        if self.network != "cifar":
            raise ConfigError(f"space {self.name!r}: TE-NAS searches the DARTS CIFAR network only")

    def tenas_defaults(self) -> dict[str, int]:
        """The public TE-NAS launcher's: 3 ops pruned per edge per round on a ``C=1`` supernet, batch 14."""
        self._tenas_check()
        return {"batch_size": 14, "prune_number": 3, "C": 1}

    def tenas_supernets(self, num_classes: int, *, C: int, N: int, in_channels: int,
                        combine: str = "mean") -> PruningSupernets:
        """One normal and one reduction cell (``layers = 3 N``, ``depth=2``, BN-ReLU before the pool) over all
        DARTS search ops incl. ``none``; regions on the same net without stem at one channel. The alive list
        holds the normal cell's edges, then the reduction cell's; after pruning each node keeps 2 inputs."""
        from raynas.spaces.ops import OPS_DARTS
        from raynas.spaces.darts.supernet import DartsSuperNet, node_groups

        self._tenas_check()
        common: dict[str, Any] = dict(layers=3 * N, stem_multiplier=1, depth=2, lastact=True, combine=combine,
                                      nodes=self.nodes)
        ntk = DartsSuperNet(num_classes, C=C, in_channels=in_channels, **common)
        thin = DartsSuperNet(num_classes, C=1, in_channels=1, use_stem=False, **common)
        return PruningSupernets(ntk, thin, OPS_DARTS, 2 * ntk.n_edges, node_groups(ntk.nodes))

    def arch_from_alive(self, alive: Sequence[Sequence[str]]) -> dict[str, Any]:
        """``{"arch": genotype string, "genotype": DARTS' own repr}`` from the kept ``(op, input)`` edges."""
        from raynas.spaces.darts.genotypes import to_darts_repr
        from raynas.spaces.darts.supernet import darts_edges

        self._tenas_check()
        edges = darts_edges(self.nodes)
        cells = []
        for c in range(2):
            part = alive[c * len(edges) : (c + 1) * len(edges)]
            cells.append([(ops[0], i) for (_k, i), ops in zip(edges, part) if ops])
        if any(op == "none" for cell in cells for op, _ in cell):
            raise SearchError("a kept DARTS edge holds 'none'")
        g = DartsGenotype.from_pairs(cells[0], cells[1])
        return {"arch": str(g), "genotype": to_darts_repr(g)}

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "ops": list(self.ops), "nodes": self.nodes, "network": self.network,
                "macro": dict(self.macro), "input_size": self.input_size}

    def __repr__(self) -> str:
        return f"DartsSpace(name={self.name!r}, network={self.network!r}, ops={list(self.ops)}, size={self.size})"

    def _check(self, arch: DartsGenotype | str) -> DartsGenotype:
        """``arch`` as a genotype of this space (strings are parsed)."""
        if isinstance(arch, str):
            return self.parse(arch)
        if not isinstance(arch, DartsGenotype):
            raise InvalidArchitectureError(
                f"{self.name}: expected a DartsGenotype or string, got {type(arch).__name__}"
            )
        check_genotype(arch, self.ops, self.nodes)
        return arch


SPACES.add("darts_cifar", lambda **kw: DartsSpace.from_spec(load_builtin_spec("darts_cifar"), **kw))
SPACES.add("darts_imagenet", lambda **kw: DartsSpace.from_spec(load_builtin_spec("darts_imagenet"), **kw))
