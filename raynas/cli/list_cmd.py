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
    as ``--metrics all,diagnostic``); the cost is the default space's measured seconds per arch
    (:mod:`raynas.spaces.costs`: fused engine, one CPU thread, at that table's sizes; a shared pass's seconds split
    evenly). The first lines name the groups and say what the cost column is and where every other space's and
    task's costs are.

    Args:
        lines: :func:`raynas.api.describe_registry`'s metric lines (the name first).
    Returns:
        the lines to print.
    """
    from raynas.metrics import get_metric
    from raynas.metrics.registry import GROUPS
    from raynas.spaces import DEFAULT_SPACE
    from raynas.spaces.costs import COSTS_FILE, metric_costs

    # one space's column: the seven TransNAS-Bench-101 task tables and the rest would not fit a line
    table = metric_costs(DEFAULT_SPACE)
    yield "groups: " + "; ".join(f"{g}: {doc}" for g, doc in GROUPS.items())
    if table is not None:
        sizes = " ".join(f"{k}={v}" for k, v in table.reference.items())
        yield (f"cost: seconds per {DEFAULT_SPACE} arch at {sizes} ({table.source}); every space's and task's: "
               f"raynas/spaces/<package>/{COSTS_FILE}, and `raynas score` prints its run's estimate first")
    for line in lines:
        name, _, rest = line.partition(" ")
        spec = get_metric(name)
        group = f"diagnostic (twin of {spec.variant_of})" if spec.variant_of else "all"
        cost = f"{table.space} {table.seconds[name]:.3g} s" if table is not None and name in table.seconds else "-"
        yield f"{name:24s} {group:40s} {cost:16s} {rest.strip()}"

