"""Oracles: what a query search asks for an architecture's value (a benchmark table, or real short training).

:class:`~raynas.oracles.base.Oracle` is the protocol; ``create_oracle(name, **kw)`` builds a registered one.
"""

from raynas.oracles.base import (
    ORACLES,
    BenchmarkTableOracle,
    CallableOracle,
    Oracle,
    QueryResult,
    create_oracle,
)

__all__ = ["ORACLES", "BenchmarkTableOracle", "CallableOracle", "Oracle", "QueryResult", "create_oracle"]
