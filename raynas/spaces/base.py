"""The :class:`SearchSpace` protocol every space implements.

Architectures are immutable, hashable values with a canonical string form; every space has a stable
integer index ``0 .. size-1`` so shards of a space can be planned by id ranges.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any, Hashable, Protocol, Sequence, runtime_checkable

import numpy as np
import torch.nn as nn

from raynas.errors import ConfigError, UnknownNameError
from raynas.tasks import Task, classification


@dataclass(frozen=True, eq=False)
class PruningSupernets:
    """What a pruning search (TE-NAS) works on in a space (:meth:`SearchSpace.tenas_supernets`).

    ``ntk_net``: the supernet whose NTK condition number is measured; ``thin_net``: its 1-channel copy without
    stem on which linear regions are counted; ``ops``: the candidate ops of every edge; ``n_edges``: entries of
    the flat alive list (all cells' edges); ``groups``: alive-list positions of each node's incoming edges when
    a node keeps only some inputs after pruning (empty: every edge stays).
    """

    ntk_net: nn.Module
    thin_net: nn.Module
    ops: tuple[str, ...]
    n_edges: int
    groups: tuple[tuple[int, ...], ...] = ()


class SearchSpace(abc.ABC):
    """A set of architectures with a bijection to ``range(size)``."""

    #: registry name, e.g. ``"nb201"``
    name: str = ""

    #: which of the generic network sizes a pipeline offers (``C``: width, ``N``: cells per stage) ``to_module``
    #: takes; the space declares it so callers need not know which space has which macro
    network_size_keys: tuple[str, ...] = ("C",)

    @property
    @abc.abstractmethod
    def size(self) -> int:
        """Number of architectures (may exceed 2**63 for huge spaces: use Python ints)."""

    @abc.abstractmethod
    def index_to_arch(self, index: int) -> Hashable:
        """Architecture of a stable index. Raises :class:`InvalidArchitectureError` out of range."""

    @abc.abstractmethod
    def arch_to_index(self, arch: Hashable) -> int:
        """Inverse of :meth:`index_to_arch`."""

    @abc.abstractmethod
    def parse(self, text: str) -> Hashable:
        """Architecture from its canonical string. Raises :class:`InvalidArchitectureError`."""

    @abc.abstractmethod
    def format(self, arch: Hashable) -> str:
        """Canonical string of an architecture; ``parse(format(a)) == a``."""

    @abc.abstractmethod
    def to_module(self, arch: Hashable, num_classes: int, **kwargs: Any) -> nn.Module:
        """A freshly initialised network whose ``forward(x)`` returns logits ``[B, num_classes]``."""

    # --- the task the network is built for ----------------------------------------------------------------
    def task_names(self) -> tuple[str, ...]:
        """The tasks this space builds networks for (their heads and losses); the first is the default. The
        image-classification spaces build ``("classification",)``; a multi-task benchmark lists its own."""
        return ("classification",)

    def task(self, name: str | None = None, *, num_classes: int | None = None,
             image_size: int | None = None) -> Task:
        """The :class:`~raynas.tasks.Task` a network of this space is built for (``to_module`` builds its head).

        Args:
            name: one of :meth:`task_names`; None: the default (the first).
            num_classes: the class count of a classification task (the dataset's, as ``to_module`` takes it).
            image_size: the run's input side, which sets the target shape of pixel and image tasks; not used by
                classification.
        Returns:
            the task; here classification with ``num_classes``.
        Raises:
            UnknownNameError: ``name`` is not a task of this space (with close matches).
            ConfigError: classification without ``num_classes``.
        """
        if name is not None and name not in self.task_names():
            raise UnknownNameError(f"task of space {self.name!r}", name, self.task_names())
        if num_classes is None:
            raise ConfigError(f"space {self.name!r}: the classification task needs num_classes")
        return classification(num_classes)

    def size_kwargs(self, **sizes: Any) -> dict[str, Any]:
        """The ``to_module`` kwargs among the generic ``sizes`` (e.g. ``C=16, N=5``) that this space takes
        (:attr:`network_size_keys`); the others are dropped, not errors, as one config serves every space."""
        return {k: sizes[k] for k in self.network_size_keys if k in sizes}

    def training_kwargs(self) -> dict[str, Any]:
        """``to_module`` options of the small network a real-training query builds unless told otherwise (the
        pipeline's oracle: a reduced proxy trained in seconds on a CPU). Each space names its own sizes (which
        network options it has); empty: the space's own network."""
        return {}

    def network_options(self) -> tuple[str, ...] | None:
        """The ``to_module`` options this space takes (its macro's keys); None: not declared, not checked."""
        macro = getattr(self, "macro", None)
        return tuple(macro) if isinstance(macro, dict) else None

    def thin_kwargs(self) -> dict[str, Any]:
        """``to_module`` overrides building the thin proxy network of an arch (TE-NAS counts linear regions
        on a 1-channel copy so activation patterns do not saturate). Empty: no thin variant."""
        return {}

    def sample(self, rng: np.random.Generator) -> Hashable:
        """One architecture drawn uniformly from the space."""
        return self.index_to_arch(int(rng.integers(0, self.size)) if self.size < 2**62 else _big_randint(rng, self.size))

    def sample_indices(self, n: int, seed: int) -> list[int]:
        """``n`` distinct indices drawn uniformly without replacement, deterministic in ``seed``."""
        rng = np.random.default_rng(seed)
        if n >= self.size:
            return list(range(self.size))
        if self.size < 2**62:
            return sorted(int(i) for i in rng.choice(self.size, size=n, replace=False))
        seen: set[int] = set()
        while len(seen) < n:
            seen.add(_big_randint(rng, self.size))
        return sorted(seen)

    def describe(self) -> dict[str, Any]:
        """A small JSON-able description stored in run configs."""
        return {"name": self.name, "size": self.size}


@runtime_checkable
class PrunableSpace(Protocol):
    """A space TE-NAS can search by pruning (``raynas search tenas``): it offers the supernets to prune and reads
    an architecture off what a finished pruning left. A capability a space implements (NAS-Bench-201, DARTS at
    CIFAR size), not part of every space; :func:`prunable` asks for it."""

    #: TE-NAS must remove ``none`` before its first round (the space's final cells have no ``none`` op)
    tenas_needs_drop_none: bool

    def tenas_defaults(self) -> dict[str, int]:
        """The TE-NAS launcher's defaults on this space: ``batch_size``, ``prune_number`` (ops pruned per edge
        per round) and ``C`` (NTK supernet width); :class:`ConfigError` where this instance has no supernet."""
        ...

    def tenas_supernets(self, num_classes: int, *, C: int, N: int, in_channels: int,
                        combine: str = "mean") -> PruningSupernets:
        """The supernets TE-NAS prunes (``C``: NTK width, ``N``: cells per stage, ``in_channels`` of the batch)."""
        ...

    def arch_from_alive(self, alive: Sequence[Sequence[str]]) -> dict[str, Any]:
        """The architecture a finished pruning left (one op per kept edge), as JSON-able ``{"arch": str, ...}``
        with the space's own extra keys (an index, a genotype); :class:`~raynas.errors.SearchError` for an alive
        list that is no architecture."""
        ...


def prunable(space: SearchSpace) -> PrunableSpace:
    """``space`` as a :class:`PrunableSpace`; a :class:`ConfigError` when it has no TE-NAS supernet."""
    if not isinstance(space, PrunableSpace):
        raise ConfigError(f"space {space.name!r} has no TE-NAS supernet; it cannot be searched by pruning")
    return space


def _big_randint(rng: np.random.Generator, n: int) -> int:
    """Uniform integer in ``[0, n)`` for ``n`` beyond int64, by rejection on 62-bit limbs."""
    bits = n.bit_length()
    while True:
        v = 0
        for _ in range((bits + 61) // 62):
            v = (v << 62) | int(rng.integers(0, 2**62))
        v &= (1 << bits) - 1
        if v < n:
            return v
