"""Typed exceptions of raynas.

Every error a user can cause derives from :class:`RaynasError`; the CLI maps the whole family to exit
code 2 with one clear line, and anything else to exit code 1.
"""

from __future__ import annotations

import difflib
from typing import Iterable


class RaynasError(Exception):
    """Base class of all errors raised on bad input or bad state."""


class ConfigError(RaynasError, ValueError):
    """A configuration is malformed: unknown key, wrong type, out-of-range value."""


class UnknownNameError(ConfigError, KeyError):
    """A name (space, metric, dataset, oracle, ...) is not registered.

    The message lists the closest registered names so typos are easy to fix.
    """

    def __init__(self, kind: str, name: str, known: Iterable[str]):
        self.kind = kind
        self.name = name
        self.known = sorted(known)
        close = difflib.get_close_matches(name, self.known, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        msg = f"unknown {kind} {name!r}{hint} (known: {', '.join(self.known)})"
        super().__init__(msg)

    def __str__(self) -> str:  # KeyError would otherwise quote the whole message
        return self.args[0]

    def __reduce__(self) -> tuple:
        # pickled by its constructor's arguments (the default would call __init__ with the message alone), so
        # the error crosses process boundaries (Ray actors) as itself
        return (type(self), (self.kind, self.name, self.known))


class InvalidArchitectureError(RaynasError, ValueError):
    """An architecture string, index or genotype is malformed or outside its space."""


class MetricError(RaynasError):
    """A metric cannot be computed for this model/batch (bad input, unsupported network)."""


class NonFiniteError(MetricError):
    """A metric's computation went non-finite or diverged (e.g. a short training run whose loss exploded).

    The engine records it with status ``nan`` (not ``error``): the network was scored, its value is not a number.
    """


class DataError(RaynasError):
    """A dataset cannot be read: missing files, wrong format, wrong shapes."""


class StoreError(RaynasError):
    """A score store or checkpoint is corrupt, truncated or does not match the run's config."""


class OracleError(RaynasError):
    """An oracle cannot answer a query (unknown architecture, failed training)."""


class SearchError(RaynasError):
    """A search cannot proceed: empty pool, missing metric columns, corrupt state."""


def one_line(exc: BaseException, limit: int = 300, *, remote: bool = False) -> str:
    """One line summarising ``exc`` for a log line, an error row or a summary, at most ``limit`` characters.

    A local exception's first line is its message (later lines are detail). An error that crossed a process
    boundary (Ray's ``RayTaskError``, a Tune trial error: ``remote=True``) renders as a traceback whose *last*
    line is the original exception and message, so that one is taken. Lines are stripped; an empty text gives
    the exception's type name.
    """
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    if not lines:
        return type(exc).__name__
    return (lines[-1] if remote else lines[0])[:limit]
