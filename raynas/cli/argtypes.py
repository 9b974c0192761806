"""argparse value types shared by the CLI and the benchmark scripts."""

from __future__ import annotations

import argparse


def positive_int(s: str) -> int:
    """An int >= 1."""
    v = int(s)
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {v}")
    return v


def seed_list(spec: str) -> list[int]:
    """``"10-19"`` (inclusive) or ``"1,5,7"`` -> list of seeds."""
    try:
        if "-" in spec.strip("-"):
            lo, hi = spec.split("-", 1)
            out = list(range(int(lo), int(hi) + 1))
        else:
            out = [int(s) for s in spec.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad seed spec {spec!r}; use e.g. 10-19 or 1,2,3") from None
    if not out:
        raise argparse.ArgumentTypeError(f"seed spec {spec!r} selects no seed")
    return out


def optional_seconds(s: str) -> float | None:
    """A duration in seconds (> 0), or ``none`` for no limit."""
    if s.strip().lower() in ("none", "off"):
        return None
    try:
        v = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds (e.g. 900) or 'none', got {s!r}") from None
    if not v > 0:
        raise argparse.ArgumentTypeError(f"must be > 0 seconds (or 'none' for no limit), got {s}")
    return v


def optional_count(low: int):
    """An argparse type: an int >= ``low``, or ``none`` / ``off`` for no limit (None)."""
    def parse(s: str) -> int | None:
        if s.strip().lower() in ("none", "off"):
            return None
        try:
            v = int(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer or 'none', got {s!r}") from None
        if v < low:
            raise argparse.ArgumentTypeError(f"must be >= {low} (or 'none' for no limit), got {v}")
        return v
    parse.__name__ = f"int>={low}|none"
    return parse
