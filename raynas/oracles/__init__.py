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
# registers "train" beside the benchmark tables, so every name `--oracle` accepts is known wherever an oracle is
# created or listed (an unknown name's error lists it)
from raynas.oracles import training as _training  # noqa: E402,F401

__all__ = ["ORACLES", "BenchmarkTableOracle", "CallableOracle", "Oracle", "QueryResult", "create_oracle"]
