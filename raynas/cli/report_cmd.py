"""``raynas report RUN_DIR [--out DIR]``: Markdown summary + PNG plots of any run directory."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="write report.md and PNG plots for a run or search directory")
    p.add_argument("run_dir")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="where report.md and the PNGs go (default RUN_DIR/report; use it for a read-only run)")
    p.add_argument("--truth", default=None, help="ground-truth table of the run's space "
                   "(default: its benchmark's file under $RAYNAS_DATA; `raynas list benchmarks`)")
    p.add_argument("--top-k", type=int, default=10)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from raynas.report import write_report

    paths = write_report(args.run_dir, truth=args.truth, top_k=args.top_k, out=args.out)
    for p in paths:
        print(p)
    return 0
