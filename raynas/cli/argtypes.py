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
