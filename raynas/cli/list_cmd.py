"""``raynas list spaces|metrics|datasets|oracles|benchmarks``."""

from __future__ import annotations

import argparse
from typing import Iterable, Iterator


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("list", help="list registered spaces, metrics, datasets, oracles or benchmarks")
    p.add_argument("what", choices=["spaces", "metrics", "datasets", "oracles", "benchmarks"], nargs="?", default="metrics")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from raynas.api import describe_registry

    lines = describe_registry(args.what)
    if args.what == "metrics":
        lines = metric_lines(lines)
    for line in lines:
        print(line)
    return 0


def metric_lines(lines: Iterable[str]) -> Iterator[str]:
    """The metric listing with each metric's group and measured cost inserted after its name.

    The group is ``all`` (what ``--metrics all`` scores) or ``diagnostic`` (a raynas-only twin, opt-in by name or
    as ``--metrics all,diagnostic``); the cost is each registered space's measured seconds per arch
    (:mod:`raynas.spaces.costs`, fused engine, at that table's sizes; a shared pass's seconds split evenly). A
    first line names the groups.

    Args:
        lines: :func:`raynas.api.describe_registry`'s metric lines (the name first).
    Returns:
        the lines to print.
    """
    from raynas.metrics import get_metric
    from raynas.metrics.registry import GROUPS
    from raynas.spaces import list_spaces
    from raynas.spaces.costs import metric_costs

    tables = [t for t in (metric_costs(s) for s in list_spaces()) if t is not None]
    yield "groups: " + "; ".join(f"{g}: {doc}" for g, doc in GROUPS.items())
    for line in lines:
        name, _, rest = line.partition(" ")
        spec = get_metric(name)
        group = f"diagnostic (twin of {spec.variant_of})" if spec.variant_of else "all"
        cost = ", ".join(f"{t.space} {t.seconds[name]:.3g} s" for t in tables if name in t.seconds) or "-"
        yield f"{name:24s} {group:40s} {cost:16s} {rest.strip()}"

