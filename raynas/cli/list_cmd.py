"""``raynas list spaces|metrics|datasets|oracles|benchmarks``."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("list", help="list registered spaces, metrics, datasets, oracles or benchmarks")
    p.add_argument("what", choices=["spaces", "metrics", "datasets", "oracles", "benchmarks"], nargs="?", default="metrics")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from raynas.api import describe_registry

    for line in describe_registry(args.what):
        print(line)
    return 0
