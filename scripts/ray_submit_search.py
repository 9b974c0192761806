#!/usr/bin/env python
"""Cluster entry point of a scoring run: ``ray submit docker/cluster.yaml scripts/ray_submit_search.py -- ARGS``.

Takes exactly the arguments of ``raynas score`` (same parser) and attaches to the running cluster
(``--address auto`` unless another address is given). Progress goes to the log, one line per shard, since
``ray submit`` output is not a terminal.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from raynas.cli.score_cmd import add_parser, config_from_args
from raynas.errors import RaynasError
from raynas.parallel import run_scoring_from_dict

log = logging.getLogger("ray_submit_search")


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="ray_submit_search.py", description=__doc__)
    sub = parser.add_subparsers(dest="command")
    add_parser(sub)
    return parser.parse_args(["score", *argv])


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse(sys.argv[1:] if argv is None else argv)
    cfg = config_from_args(args)
    cfg["address"] = cfg.get("address") or "auto"

    def progress(done: int, total: int, rate: float | None = None, eta: float | None = None) -> None:
        log.info("%d/%d archs  %s archs/s  eta %s s", done, total, f"{rate:.2f}" if rate else "-",
                 f"{eta:.0f}" if eta is not None else "-")

    try:
        summary = run_scoring_from_dict(cfg, progress_callback=None if args.no_progress else progress)
    except RaynasError as exc:
        log.error("%s", exc)
        return 2
    print(json.dumps(summary, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
