"""The NAS-Bench-201 cell space (Dong & Yang, ICLR 2020): 5 ops on the 6 edges of a 4-node DAG.

An architecture is the tuple of edge ops in the canonical edge order ``1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2``,
written ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`` (node ``j`` lists its inputs ``0..j-1`` in order).

Indexing matches the official benchmark: the benchmark enumerated the product of the op list over the
edges (first edge most significant, ops in :data:`OPS_NB201` order) and then shuffled that list once with
Python's ``random.seed(88); random.shuffle``. :func:`official_permutation` recomputes that shuffle from the
Mersenne Twister stream itself (no lookup table), so official index ``i`` is product index ``perm[i]``.
Spaces built from a spec with a different op list or node count use the plain product order.
"""

from __future__ import annotations

import functools
import random
from typing import Any, Sequence

import torch.nn as nn

from raynas.errors import ConfigError, InvalidArchitectureError
from raynas.spaces import SPACES
from raynas.spaces.base import PruningSupernets, SearchSpace
from raynas.spaces.nb201.arch import EDGES_NB201, NB201Arch, cell_edges, format_arch, has_path, parse_arch
from raynas.spaces.ops import OPS_NB201
from raynas.spaces.spec import SpaceSpec, load_builtin_spec
from raynas.spaces.stacking import register_stacker

__all__ = [
    "EDGES_NB201", "NB201Arch", "NB201Space", "OPS_NB201", "cell_edges", "format_arch", "has_path",
    "official_permutation", "parse_arch",
]

#: seed of the benchmark's one-off shuffle of the product enumeration
_OFFICIAL_SEED = 88


@functools.lru_cache(maxsize=None)
def official_permutation(n: int = 5**6, seed: int = _OFFICIAL_SEED) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """``(perm, inverse)``: official index ``i`` <-> product index ``perm[i]``.

    Re-implements CPython 3's ``random.shuffle`` (Fisher-Yates from the end, each ``j`` drawn by rejection
    sampling on ``getrandbits(k)``) on ``random.Random(seed)``, so the result does not depend on how a
    future Python implements ``shuffle``; only the seeded Mersenne Twister stream must stay the same.
    """
    rng = random.Random(seed)
    perm = list(range(n))
    for i in reversed(range(1, n)):
        m = i + 1
        k = m.bit_length()
        j = rng.getrandbits(k)
        while j >= m:
            j = rng.getrandbits(k)
        perm[i], perm[j] = perm[j], perm[i]
    inverse = [0] * n
    for official, product in enumerate(perm):
        inverse[product] = official
    return tuple(perm), tuple(inverse)


class NB201Space(SearchSpace):
    """NAS-Bench-201 (or a variant with another op list / node count from a spec).

    Macro defaults (``C``, ``N``, ``stages``, BN flags, input channels, ``network``) are used by
    :meth:`to_module` unless overridden per call.

    ``network`` picks the cell network (:data:`raynas.spaces.nb201.model.NETWORKS`): ``"benchmark"`` (default)
    is NAS-Bench-201's own; ``"zero_cost_nas"`` is zero-cost-nas's ``nasbench2``, the network zero-cost-nas,
    HNAS, RoBoT and NB-Suite-Zero scored, identical except that the cell convs carry a bias and the cell BNs
    are neither affine nor tracking (stem, reductions and head unchanged). Use it to regenerate those
    papers' values on their own network; :class:`~raynas.spaces.nb201.model.NB201Network` has the details.
    The spec files have no such key: the option is given per space (``create_space("nb201",
    network=...)``) or per network (``to_module(..., network=...)``, a scoring config's ``space_kwargs``,
    ``raynas score --network``).
    """

    name = "nb201"
    network_size_keys = ("C", "N")

    def __init__(
        self,
        ops: Sequence[str] = OPS_NB201,
        nodes: int = 4,
        *,
        C: int = 16,
        N: int = 5,
        stages: int = 3,
        in_channels: int = 3,
        input_size: int = 32,
        affine: bool = True,
        track_running_stats: bool = True,
        network: str = "benchmark",
        name: str = "nb201",
    ):
        from raynas.spaces.nb201.model import NETWORKS
        from raynas.spaces.ops import OPS

        self.ops = tuple(ops)
        unknown = [o for o in self.ops if o not in OPS]
        if not self.ops or unknown or len(set(self.ops)) != len(self.ops):
            raise ConfigError(f"space {name!r}: ops must be distinct known op names, got {list(self.ops)}")
        if nodes < 2:
            raise ConfigError(f"space {name!r}: a cell needs at least 2 nodes, got {nodes}")
        if network not in NETWORKS:
            raise ConfigError(
                f"space {name!r}: network must be one of {', '.join(map(repr, NETWORKS))}, got {network!r}"
            )
        self.nodes = nodes
        self.edges = cell_edges(nodes)
        self.name = name
        self.macro = dict(C=C, N=N, stages=stages, in_channels=in_channels, affine=affine,
                          track_running_stats=track_running_stats, network=network, stem=True)
        self.input_size = input_size
        #: True when indices follow the official NAS-Bench-201 numbering
        self.official_order = self.ops == OPS_NB201 and nodes == 4

    @classmethod
    def from_spec(cls, spec: SpaceSpec, **overrides: Any) -> NB201Space:
        """Space from a validated spec; ``overrides`` replace macro defaults (C, N, stages, affine, network, ...).

        ``network`` is not a spec key (specs describe the benchmark's network): it defaults to ``"benchmark"``.
        """
        if spec.kind != "nb201":
            raise ConfigError(f"space spec {spec.name!r} has kind {spec.kind!r}, expected 'nb201'")
        m = spec.macro
        kw: dict[str, Any] = dict(C=m.C, N=m.N, stages=m.stages, affine=m.affine,
                                  track_running_stats=m.track_running_stats,
                                  in_channels=spec.input.channels, input_size=spec.input.size,
                                  network="benchmark")
        unknown = sorted(set(overrides) - set(kw))
        if unknown:
            raise ConfigError(f"space {spec.name!r}: unknown option(s) {unknown}; allowed: {sorted(kw)}")
        kw.update(overrides)
        return cls(spec.ops, spec.nodes, name=spec.name, **kw)

    @property
    def size(self) -> int:
        return len(self.ops) ** len(self.edges)

    # --- indexing -------------------------------------------------------------------------------------
    def index_to_arch(self, index: int) -> NB201Arch:
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < self.size:
            raise InvalidArchitectureError(f"{self.name} index must be an int in [0, {self.size}), got {index!r}")
        k = official_permutation()[0][index] if self.official_order else index
        digits = []
        for _ in self.edges:  # least significant digit = last edge
            k, d = divmod(k, len(self.ops))
            digits.append(self.ops[d])
        return NB201Arch(tuple(reversed(digits)))

    def arch_to_index(self, arch: NB201Arch | str) -> int:
        arch = self._check(arch)
        k = 0
        for op in arch.ops:
            k = k * len(self.ops) + self.ops.index(op)
        return official_permutation()[1][k] if self.official_order else k

    # --- strings --------------------------------------------------------------------------------------
    def parse(self, text: str) -> NB201Arch:
        return parse_arch(text, self.ops, self.nodes)

    def format(self, arch: NB201Arch | str) -> str:
        return format_arch(self._check(arch))

    def has_path(self, arch: NB201Arch | str) -> bool:
        """Whether the cell connects its input to its output (ignoring ``none`` edges)."""
        return has_path(self._check(arch))

    is_valid = has_path

    # --- networks -------------------------------------------------------------------------------------
    def training_kwargs(self) -> dict[str, Any]:
        """A real-training query's default network: width 8, one cell per stage (the benchmark's: 16, 5)."""
        return {"C": 8, "N": 1}

    def to_module(self, arch: NB201Arch | str, num_classes: int, **kwargs: Any) -> nn.Module:
        """The cell network ``[B, in_channels, H, W] -> logits [B, num_classes]``.

        kwargs override the macro: ``C, N, stages, in_channels, affine, track_running_stats`` and ``network``
        (``"benchmark"``: NAS-Bench-201's network; ``"zero_cost_nas"``: zero-cost-nas's ``nasbench2``, cell
        convs with bias and non-affine, non-tracking cell BNs). Unknown keys or values raise
        :class:`ConfigError`.
        """
        from raynas.spaces.nb201.model import NB201Network

        unknown = sorted(set(kwargs) - set(self.macro))
        if unknown:
            raise ConfigError(f"{self.name}.to_module: unknown option(s) {unknown}; allowed: {sorted(self.macro)}")
        return NB201Network(self._check(arch), num_classes, **{**self.macro, **kwargs})

    def thin_kwargs(self) -> dict[str, Any]:
        """TE-NAS's thin network for the linear regions (``model_config_thin``: C=1, N=1, depth=1, no stem): one
        cell at one channel on the 1-channel input, then BN-ReLU-pool-Linear."""
        return {"C": 1, "N": 1, "stages": 1, "stem": False, "in_channels": 1}

    # --- pruning search (TE-NAS): raynas.spaces.base.PrunableSpace -------------------------------------
    #: NB201's cells keep ``none`` among their candidates to the end
    tenas_needs_drop_none = False

    def tenas_defaults(self) -> dict[str, int]:
        """The public TE-NAS launcher's: one op pruned per edge per round on a ``C=3`` supernet, batch 72."""
        return {"batch_size": 72, "prune_number": 1, "C": 3}

    def tenas_supernets(self, num_classes: int, *, C: int, N: int, in_channels: int,
                        combine: str = "mean") -> PruningSupernets:
        """NTK supernet ``C, N`` with stem; regions on one 1-channel cell without stem (TE-NAS' thin net)."""
        from raynas.spaces.nb201.supernet import NB201SuperNet

        common: dict[str, Any] = dict(ops=self.ops, nodes=self.nodes, combine=combine)
        ntk = NB201SuperNet(num_classes, C=C, N=N, in_channels=in_channels, **common)
        thin = NB201SuperNet(num_classes, C=1, N=1, in_channels=1, use_stem=False, depth=1, **common)
        return PruningSupernets(ntk, thin, self.ops, ntk.n_edges)

    def arch_from_alive(self, alive: Sequence[Sequence[str]]) -> dict[str, Any]:
        """``{"arch": canonical string, "arch_index": its index}`` of the cell whose edges kept one op each."""
        arch = NB201Arch(tuple(ops[0] for ops in alive))
        return {"arch": str(arch), "arch_index": self.arch_to_index(arch)}

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "ops": list(self.ops), "nodes": self.nodes, "macro": dict(self.macro)}

    def __repr__(self) -> str:
        return f"NB201Space(name={self.name!r}, ops={list(self.ops)}, nodes={self.nodes}, size={self.size})"

    def _check(self, arch: NB201Arch | str) -> NB201Arch:
        """``arch`` as an :class:`NB201Arch` of this space (strings are parsed)."""
        if isinstance(arch, str):
            return self.parse(arch)
        if not isinstance(arch, NB201Arch):
            raise InvalidArchitectureError(f"{self.name}: expected an NB201Arch or string, got {type(arch).__name__}")
        if len(arch.ops) != len(self.edges):
            raise InvalidArchitectureError(
                f"{self.name}: architecture has {len(arch.ops)} edges, expected {len(self.edges)}"
            )
        bad = [o for o in arch.ops if o not in self.ops]
        if bad:
            raise InvalidArchitectureError(f"{self.name}: op(s) {bad} not in this space's ops {list(self.ops)}")
        return arch


SPACES.add("nb201", lambda **kw: NB201Space.from_spec(load_builtin_spec("nb201"), **kw))


@register_stacker
def _stack_nb201(nets: Sequence[nn.Module], batchnorm: bool) -> nn.Module | None:
    """NAS-Bench-201's stacked form (:mod:`raynas.spaces.nb201.stacked`, imported when first used)."""
    from raynas.spaces.nb201.stacked import stack_nb201

    return stack_nb201(nets, batchnorm)
