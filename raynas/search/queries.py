"""What one query search asked its oracle: :class:`QueryLog` keeps the distinct queries of one search (a repeated
architecture is answered from the cache at no cost) and builds the result dict every search method returns;
:func:`drive` is the ask / query / tell loop of an ask/tell search.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from raynas.errors import OracleError
from raynas.oracles.base import Oracle, query_label


class QueryLog:
    """Distinct queries of one search, in order. A repeated architecture is answered from the cache at no cost."""

    def __init__(self) -> None:
        self.arch: list[int] = []
        self.values: list[float] = []
        self.costs: list[float] = []
        self._pos: dict[int, int] = {}

    def __contains__(self, arch_index: object) -> bool:
        return arch_index in self._pos

    def __len__(self) -> int:
        return len(self.arch)

    def value_of(self, arch_index: int) -> float:
        return self.values[self._pos[int(arch_index)]]

    def record(self, arch_index: int, value: float, cost: float) -> None:
        a = int(arch_index)
        if a in self._pos:
            raise OracleError(f"architecture {a} recorded twice")
        self._pos[a] = len(self.arch)
        self.arch.append(a)
        self.values.append(float(value))
        self.costs.append(float(cost))

    def query(self, oracle: Oracle, arch_index: int) -> tuple[float, float, bool]:
        """``(value, cost, new_query)``: asks ``oracle`` only for architectures not seen yet."""
        a = int(arch_index)
        if a in self._pos:
            return self.value_of(a), 0.0, False
        res = oracle.query(a)
        self.record(a, res.value, res.cost_seconds)
        return res.value, res.cost_seconds, True

    def best(self) -> int:
        """Position of the best value (ties: the earliest query)."""
        if not self.arch:
            raise OracleError("no architecture has been queried")
        return int(np.argmax(np.asarray(self.values)))

    def result(self, method: str, oracle: Oracle | None = None, **extra: Any) -> dict[str, Any]:
        """The common result dict: best ``arch_index``, its query ``value`` and ``final``, ``queries`` (distinct),
        total ``cost``, the query history (``queried``, ``values``, ``costs``) and ``query_label`` (what the values
        measure, :func:`query_label`; None when unknown)."""
        b = self.best()
        arch = self.arch[b]
        out: dict[str, Any] = {
            "method": method,
            "arch_index": arch,
            "value": self.values[b],
            "final": oracle.final(arch) if oracle is not None else None,
            "queries": len(self.arch),
            "cost": float(sum(self.costs)),
            "queried": list(self.arch),
            "values": list(self.values),
            "costs": list(self.costs),
            "query_label": query_label(oracle),
        }
        out.update(extra)
        return out


def drive(search: Any, oracle: Oracle, on_step: Callable[[dict[str, Any]], None] | None = None) -> None:
    """Ask/query/tell ``search`` until it is done: cached proposals are told without a query (they cost
    nothing), others are answered by ``oracle``; ``on_step(row)`` after every tell."""
    while not search.done:
        p = search.ask()
        if p.cached:
            row = search.tell(p)
        else:
            res = oracle.query(p.arch_index)
            row = search.tell(p, res.value, res.cost_seconds)
        if on_step is not None:
            on_step(row)
