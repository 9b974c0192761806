"""The :class:`SearchSpace` protocol every space implements.

Architectures are immutable, hashable values with a canonical string form; every space has a stable
integer index ``0 .. size-1`` so shards of a space can be planned by id ranges.
"""

from __future__ import annotations

import abc
from typing import Any, Hashable

import numpy as np
import torch.nn as nn


class SearchSpace(abc.ABC):
    """A set of architectures with a bijection to ``range(size)``."""

    #: registry name, e.g. ``"nb201"``
    name: str = ""

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
