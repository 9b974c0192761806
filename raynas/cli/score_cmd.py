"""``raynas score``: score architectures of a space with training-free metrics (locally or on Ray).

Only the flags given on the command line go into the run config (every other key keeps its default), so a
resume (``--resume RUN``) takes whatever is not given from the run's stored config.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Callable

from raynas.cli.argtypes import optional_seconds
from raynas.cli.progress import progress_bar, write_line
from raynas.errors import ConfigError

#: flags left out of the namespace unless given (their defaults are the config's, or the stored run's)
_UNSET = argparse.SUPPRESS


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "score",
        help="score architectures with training-free metrics into an Arrow/Parquet run directory",
        description="Score a sample (or all) of a search space. Results go to OUT/scores/shard-*.parquet, one "
        "file per shard written atomically; a killed or interrupted run continues with --resume RUN, which "
        "takes every flag not given from RUN/config.json. Exit codes: 0 every shard scored (the summary "
        "counts ok / nan / error / oom rows), 1 no row scored successfully or a shard failed for good, "
        "2 bad input.",
        argument_default=_UNSET,
    )
    p.add_argument("--space", help="search space (see `raynas list spaces`; default: raynas.spaces.DEFAULT_SPACE, "
                   "NAS-Bench-201)")
    p.add_argument("--metrics", help="'all' (the default: each reference definition once), or comma-separated metric "
                   "and group names ('diagnostic': the raynas-only twins; see `raynas list metrics`)")
    p.add_argument("--metric-module", action="append", dest="metric_modules", metavar="MODULE",
                   help="import MODULE (on PYTHONPATH) first: it registers metrics with @register_metric; the "
                   "scoring actors import it too (repeatable)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--sample", type=int, metavar="N", help="score N archs drawn by --seed")
    g.add_argument("--all", action="store_true", help="score the whole space")
    g.add_argument("--ids", help="comma-separated arch indices")
    p.add_argument("--seed", type=int, help="seed of the sample, the batch and every metric (default 0)")
    p.add_argument("--data", help="digits (default) | noise | cifar10:PATH | cifar100:PATH | folder:PATH | "
                   "taskonomy:PATH (with --task)")
    p.add_argument("--batch-size", type=int, help="default 64")
    p.add_argument("--image-size", type=int, help="side of the input images (default 32; a tiled task such as "
                   "TransNAS-Bench-101's jigsaw: of each tile)")
    p.add_argument("--C", type=int, help="network width (space default if unset)")
    p.add_argument("--N", type=int, help="cells per stage / layers (space default if unset)")
    # no argparse choices: the space validates the name (ConfigError, exit 2) and knows which it builds
    p.add_argument("--network", metavar="NAME",
                   help="NAS-Bench-201 spaces only: 'benchmark' (default, NAS-Bench-201's network) or 'zero_cost_nas' "
                   "(zero-cost-nas's nasbench2, scored by zero-cost-nas/HNAS/RoBoT: cell convs with bias, "
                   "non-affine cell BNs)")
    p.add_argument("--task", metavar="NAME",
                   help="TransNAS-Bench-101 spaces: the task whose network and loss are scored (default: the space's "
                   "first task); its batch needs --data noise or taskonomy:PATH")
    p.add_argument("--out", help="run directory (required unless given as --resume RUN)")
    p.add_argument("--workers", type=int,
                   help="Ray scoring actors (default 1; 0: plain in-process loop; capped at what a local Ray can run)")
    p.add_argument("--gpus-per-worker", type=float, help="GPUs per actor, fractional allowed (default 0)")
    p.add_argument("--cpus-per-worker", type=float, help="default 1")
    p.add_argument("--address", help="Ray cluster address or 'auto' (default: start a local Ray). An actor no node "
                   "of the cluster can host (--gpus-per-worker on a cluster without GPU nodes up) is refused, exit 2; "
                   "an autoscaler that publishes its node types may add one (raynas.parallel.session)")
    p.add_argument("--shard-size", type=int, help="archs per shard file (default 25)")
    p.add_argument("--arch-batch", type=int, metavar="K",
                   help="archs scored together in one stacked network (batched engine; same values as 1, "
                   "default raynas.parallel.config.DEFAULT_ARCH_BATCH)")
    p.add_argument("--channels-last", action="store_true",
                   help="run each network and batch in channels_last memory format (per-arch engine; values equal "
                   "within float32 rounding; faster where the convolution kernels prefer it, docs/benchmarks.md); "
                   "a resume keeps the stored setting")
    p.add_argument("--max-retries", type=int, help="retries of a shard whose actor died (default 3)")
    p.add_argument("--shard-timeout", type=optional_seconds, metavar="SECONDS",
                   help="restart an actor whose shard runs longer than this and retry the shard "
                   "(default / 'none': no deadline)")
    p.add_argument("--resume", nargs="?", const=True, metavar="RUN",
                   help="continue a killed run, scoring only what is missing; flags not given are taken from "
                   "the run's stored config (RUN: the run directory, instead of --out)")
    p.add_argument("--force", action="store_true",
                   help="resume with more metrics than stored (or another shard size); never another sample, "
                   "seed, data or network")
    p.add_argument("--adopt", action="store_true",
                   help="with --resume RUN, for a run whose config.json is lost: rebuild it from the shards (they "
                   "hold the space, seed, data, batch size, image size, metrics and archs; --C / --N / --network / "
                   "--task / --shard-size are taken as given or the defaults), then resume; a selection (--sample N) "
                   "adopts the shards into that run")
    p.add_argument("--no-progress", action="store_true", default=False, help="no progress bar")
    p.set_defaults(func=run, interrupted=interrupted)


def interrupted(args: argparse.Namespace) -> str:
    """The last line of an interrupted ``raynas score``: what the run directory keeps, truly."""
    from raynas.cli.progress import interrupted_line

    resume = getattr(args, "resume", None)
    return interrupted_line(resume if isinstance(resume, str) else getattr(args, "out", None), "--resume")


def _parse_ids(text: str) -> list[int]:
    try:
        ids = [int(i) for i in text.split(",") if i.strip()]
    except ValueError:
        raise ConfigError(f"--ids expects comma-separated integers, got {text!r}") from None
    if not ids:
        raise ConfigError(f"--ids got no index ({text!r}): give comma-separated arch indices, e.g. --ids 0,17,42")
    return ids


#: command-line dests copied to the config unchanged
_SAME = ("space", "metrics", "sample", "seed", "data", "batch_size", "image_size", "out", "workers",
         "gpus_per_worker", "cpus_per_worker", "address", "shard_size", "max_retries", "force", "metric_modules", "arch_batch",
         "channels_last", "adopt")


def config_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The run config of the flags given on the command line (and only those)."""
    given = vars(args)
    cfg: dict[str, Any] = {k: given[k] for k in _SAME if k in given}
    if "all" in given:
        cfg["all"] = True
    if "ids" in given:
        cfg["ids"] = _parse_ids(given["ids"])
    if "shard_timeout" in given:
        cfg["shard_timeout_s"] = given["shard_timeout"]
    space_kwargs = {k: given[k] for k in ("C", "N", "network", "task") if k in given}
    if space_kwargs:
        cfg["space_kwargs"] = space_kwargs
    resume = given.get("resume")
    if isinstance(resume, str):
        if "out" in cfg and cfg["out"] != resume:
            raise ConfigError(f"--resume {resume} and --out {cfg['out']} name two run directories; give one")
        cfg["out"] = resume
    if resume is not None:
        cfg["resume"] = True
    if "out" not in cfg:
        raise ConfigError("--out is required (or name the run to continue: --resume RUN)")
    return cfg


def metric_label(names: tuple[str, ...], done: int, total: int) -> str:
    """The progress bar's ``metric`` postfix while an arch is scored: ``vkdnw 12/40`` (the metric starting, and
    how many of the arch's ``total`` metrics come before it plus it), or ``ntk_cond+5 13/40`` for a shared pass of
    six metrics."""
    name = names[0] if len(names) == 1 else f"{names[0]}+{len(names) - 1}"
    return f"{name} {done + len(names)}/{total}"


class ScoreReporter:
    """What ``raynas score`` shows while it runs, from the run's callbacks: the cost estimates (before the first
    arch from the space's measured metric costs, after it measured) with a warning when the run is projected past
    an hour (once), and the arch progress with the metric being computed. ``write``: one line on stderr;
    ``update``: the progress bar's update (None: no bar)."""

    def __init__(self, write: Callable[[str], None], update: Callable[..., None] | None = None):
        self.write, self.update = write, update
        self.warned = False
        self._last: tuple[Any, ...] | None = None

    def estimate(self, est: Any) -> None:
        self.write(est.describe())
        warning = est.warning()
        if warning and not self.warned:
            self.warned = True
            self.write(f"raynas: warning: {warning}")

    def progress(self, done: int, total: int, rate: float | None = None, eta: float | None = None) -> None:
        self._last = (done, total, rate, eta)
        if self.update is not None:
            self.update(done, total, rate, eta)

    def metric(self, names: tuple[str, ...], done: int, total: int) -> None:
        if self.update is not None and self._last is not None:
            self.update(*self._last, metric=metric_label(names, done, total))


def run(args: argparse.Namespace) -> int:
    from raynas.parallel import run_scoring_from_dict

    cfg = config_from_args(args)
    if args.no_progress:
        rep = ScoreReporter(write_line)
        summary = run_scoring_from_dict(cfg, estimate_callback=rep.estimate)
    else:
        with progress_bar("scoring") as update:
            rep = ScoreReporter(write_line, update)
            summary = run_scoring_from_dict(cfg, progress_callback=rep.progress, estimate_callback=rep.estimate,
                                            metric_callback=rep.metric)
    for k, v in summary.items():
        print(f"{k}: {v}")
    if summary.get("outcome") == "failed":
        sys.stderr.write(f"raynas: failure: {summary.get('problem')}\n")
        return 1
    if summary.get("outcome") == "partial":
        sys.stderr.write(f"raynas: warning: {summary.get('problem')}\n")
    return 0
