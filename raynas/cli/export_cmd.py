"""``raynas export RUN_DIR [--format csv|parquet] [--out FILE]``: the wide score table (one row per arch)."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="write a run's scores as one wide table (CSV or Parquet): one row per arch, one column per metric",
        description="Columns: space, arch_index, arch, seed, then one float column per metric (empty/null where "
        "the metric did not succeed). Written atomically; an incomplete run is exported with a warning.",
    )
    p.add_argument("run_dir")
    p.add_argument("--format", choices=["csv", "parquet"], default=None,
                   help="file format (default: from --out's suffix, else csv)")
    p.add_argument("--out", default=None, metavar="FILE", help="output file (default RUN_DIR/scores_wide.FORMAT)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from raynas.api import export_scores

    print(export_scores(args.run_dir, args.format, args.out))
    return 0
