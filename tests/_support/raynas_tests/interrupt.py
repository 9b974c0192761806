"""Killing a search's driver after a given step, for resume tests: ``on_step`` raises :class:`Stop` after the
``k``-th tell (whose state the driver has saved by then)."""

from __future__ import annotations

from typing import Any, Callable


class Stop(Exception):
    """Raised from ``on_step``: the driver dies after a tell (the state of that tell is saved)."""


def stop_after(k: int) -> Callable[[Any], None]:
    """An ``on_step`` callback that raises :class:`Stop` at its ``k``-th call."""
    count = [0]

    def on_step(row: Any) -> None:
        count[0] += 1
        if count[0] >= k:
            raise Stop

    return on_step
