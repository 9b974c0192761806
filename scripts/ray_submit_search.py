#!/usr/bin/env python
"""Cluster entry point: ``ray submit docker/cluster.yaml scripts/ray_submit_search.py -- ARGS``.

Two forms, both attached to the running cluster (``--address auto`` unless another address is given):

* ``-- pipeline --out RUN [--config job.yaml] [--set KEY=VALUE ...]``: the whole main job, score -> search ->
  ASHA -> report (:func:`raynas.pipeline.run_pipeline`): scoring actors, every training query of RoBoT / HNAS
  as a Ray task on the GPU workers (``--set search.q=4 --set search.gpus_per_query=1`` keeps 4 in flight, one
  GPU each), ASHA trials on the cluster. Every stage saves its state under RUN: submitting the same command again
  after the driver was killed resumes each stage where it stopped.
* ``-- ARGS of raynas score`` (same parser): a scoring run only.

Progress goes to the log, one line per shard / query, since ``ray submit`` output is not a terminal.
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


def parse_pipeline(argv: list[str]) -> dict:
    """The ``pipeline`` form's arguments -> :func:`raynas.pipeline.run_pipeline`'s mapping (address: auto)."""
    from raynas.cli.search_cmd import parse_overrides

    p = argparse.ArgumentParser(prog="ray_submit_search.py pipeline")
    p.add_argument("--out", required=True)
    p.add_argument("--config", default=None)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--address", default="auto")
    args = p.parse_args(argv)
    overrides = parse_overrides(args.set)
    overrides.setdefault("scoring", {})["address"] = args.address
    return {"config": args.config, "overrides": overrides, "out": args.out}


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["pipeline"]:
        from raynas.pipeline import run_pipeline

        try:
            summary = run_pipeline(parse_pipeline(argv[1:]))
        except RaynasError as exc:
            log.error("%s", exc)
            return 2
        print(json.dumps(summary, indent=2, default=str))
        return 0
    args = parse(argv)
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
