"""A lookup oracle for search tests: answers from given arrays instead of a benchmark or a training run."""

from __future__ import annotations

from raynas.errors import OracleError
from raynas.oracles.base import QueryResult


class FakeOracle:
    """Lookup oracle over ``arch_index -> value`` with per-arch ``cost`` and ``final`` (default: value).

    ``calls`` lists every queried arch index, repeats included, so tests can pin caching.
    """

    def __init__(self, arch_index, values, costs=None, finals=None):  # type: ignore[no-untyped-def]
        idx = [int(a) for a in arch_index]
        vals = [float(v) for v in values]
        self.costs = dict(zip(idx, [float(c) for c in costs] if costs is not None else [1.0] * len(idx)))
        self.values = dict(zip(idx, vals))
        self.finals = dict(zip(idx, [float(f) for f in finals] if finals is not None else vals))
        self.calls: list[int] = []

    def _check(self, arch_index: int) -> int:
        if int(arch_index) not in self.values:
            raise OracleError(f"unknown architecture {arch_index}")
        return int(arch_index)

    def query(self, arch_index: int):  # type: ignore[no-untyped-def]
        a = self._check(arch_index)
        self.calls.append(a)
        return QueryResult(self.values[a], self.costs[a])

    def final(self, arch_index: int) -> float:
        return self.finals[self._check(arch_index)]

    def best_final(self) -> float:
        return max(self.finals.values())
