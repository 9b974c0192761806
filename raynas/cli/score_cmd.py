"""``raynas score``: score architectures of a space with training-free metrics (locally or on Ray)."""

from __future__ import annotations

import argparse

from raynas.cli.progress import progress_bar
from raynas.errors import ConfigError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "score",
        help="score architectures with training-free metrics into an Arrow/Parquet run directory",
        description="Score a sample (or all) of a search space. Results go to OUT/scores/shard-*.parquet, one "
        "file per shard written atomically; a killed run continues with --resume.",
    )
    p.add_argument("--space", default="nb201", help="search space (see `raynas list spaces`)")
    p.add_argument("--metrics", default="all", help="'all' or comma-separated names (see `raynas list metrics`)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--sample", type=int, default=None, metavar="N", help="score N archs drawn by --seed")
    g.add_argument("--all", action="store_true", help="score the whole space")
    g.add_argument("--ids", default=None, help="comma-separated arch indices")
    p.add_argument("--seed", type=int, default=0, help="seed of the sample, the batch and every metric")
    p.add_argument("--data", default="digits", help="digits | noise | cifar10:PATH | cifar100:PATH | folder:PATH")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--image-size", type=int, default=32, help="side of the input images")
    p.add_argument("--C", type=int, default=None, help="network width (space default if unset)")
    p.add_argument("--N", type=int, default=None, help="cells per stage / layers (space default if unset)")
    p.add_argument("--out", required=True, help="run directory")
    p.add_argument("--workers", type=int, default=1, help="Ray scoring actors (0: plain in-process loop)")
    p.add_argument("--gpus-per-worker", type=float, default=0.0, help="GPUs per actor, fractional allowed")
    p.add_argument("--cpus-per-worker", type=float, default=1.0)
    p.add_argument("--address", default=None, help="Ray cluster address or 'auto' (default: start a local Ray)")
    p.add_argument("--shard-size", type=int, default=None, help="archs per shard file")
    p.add_argument("--max-retries", type=int, default=3, help="retries of a shard whose actor died")
    p.add_argument("--shard-timeout", type=float, default=None, metavar="SECONDS",
                   help="restart an actor whose shard runs longer than this and retry the shard (default: none)")
    p.add_argument("--resume", action="store_true", help="continue a killed run, scoring only what is missing")
    p.add_argument("--force", action="store_true", help="resume even if the stored config differs")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _parse_ids(text: str | None) -> list[int] | None:
    if not text:
        return None
    try:
        return [int(i) for i in text.split(",") if i.strip()]
    except ValueError:
        raise ConfigError(f"--ids expects comma-separated integers, got {text!r}") from None


def config_from_args(args: argparse.Namespace) -> dict:
    space_kwargs = {k: v for k, v in (("C", args.C), ("N", args.N)) if v is not None}
    cfg = {
        "space": args.space,
        "metrics": args.metrics,
        "sample": args.sample,
        "all": bool(args.all),
        "ids": _parse_ids(args.ids),
        "seed": args.seed,
        "data": args.data,
        "batch_size": args.batch_size,
        "image_size": args.image_size,
        "max_retries": args.max_retries,
        "shard_timeout_s": args.shard_timeout,
        "out": args.out,
        "workers": args.workers,
        "gpus_per_worker": args.gpus_per_worker,
        "cpus_per_worker": args.cpus_per_worker,
        "address": args.address,
        "resume": args.resume,
        "force": args.force,
        "space_kwargs": space_kwargs,
    }
    if args.shard_size is not None:
        cfg["shard_size"] = args.shard_size
    return cfg


def run(args: argparse.Namespace) -> int:
    from raynas.parallel import run_scoring_from_dict

    cfg = config_from_args(args)
    if args.no_progress:
        summary = run_scoring_from_dict(cfg)
    else:
        with progress_bar("scoring") as update:
            summary = run_scoring_from_dict(cfg, progress_callback=update)
    for k, v in summary.items():
        print(f"{k}: {v}")
    return 0
