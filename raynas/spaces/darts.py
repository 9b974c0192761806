"""The DARTS search space (Liu, Simonyan & Yang, ICLR 2019) at CIFAR and ImageNet size.

Both registered spaces share the genotype space (:mod:`raynas.spaces.darts_genotypes`: 7 final-cell ops,
4 intermediate nodes with 2 distinct inputs each, ``1_076_746_950_455_072_400`` genotypes, which fits the
store's int64 ``arch_index``) and differ in the macro network :meth:`DartsSpace.to_module` builds:

* ``darts_cifar`` (``spaces/darts_cifar.yaml``): CIFAR network, default C=16, 5 layers (the cheap proxy
  used for scoring); ``preset="eval"`` gives the paper's C=36, 20 layers.
* ``darts_imagenet`` (``spaces/darts_imagenet.yaml``): 224 px ImageNet network, C=48, 14 layers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Sequence

import torch.nn as nn

from raynas.errors import ConfigError, InvalidArchitectureError
from raynas.spaces import SPACES
from raynas.spaces.base import SearchSpace
from raynas.spaces.darts_genotypes import (
    DARTS_FINAL_OPS, DartsGenotype, check_genotype, format_genotype, genotype_size, genotype_to_index,
    index_to_genotype, parse_genotype,
)
from raynas.spaces.darts_model import CIFAR_PRESETS, IMAGENET_PRESETS, DartsNetworkCIFAR, DartsNetworkImageNet
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

    Indices follow :mod:`raynas.spaces.darts_genotypes` with this space's op list as the op digits.
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
    def to_module(self, arch: DartsGenotype | str, num_classes: int, **kwargs: Any) -> nn.Module:
        """The macro network of this space; kwargs override ``C, layers, in_channels`` (and
        ``stem_multiplier`` for CIFAR) or pick a ``preset``. Returns logits ``[B, num_classes]``."""
        preset = kwargs.pop("preset", None)
        if kwargs.pop("thin", False):
            # thin_kwargs(): TE-NAS's thin network, the same for both skeletons; it fixes its own width, depth and
            # input, so the macro options a scoring run passes for the full network (C, layers, ...) do not apply
            from raynas.spaces.darts_model import DartsThinNetwork

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
        """TE-NAS's thin network for the linear regions (:class:`~raynas.spaces.darts_model.DartsThinNetwork`:
        no stem, a C=1 normal cell and a reduction cell on the 1-channel input, BN-ReLU, pool, Linear)."""
        return {"thin": True}

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
