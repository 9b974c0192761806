"""``raynas show RUN_DIR``: status of a run (shards done / missing / failed, rows by status)."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("show", help="status of a run directory: shards done/missing/failed")
    p.add_argument("run_dir")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from raynas.api import show_run

    for line in show_run(args.run_dir):
        print(line)
    return 0
