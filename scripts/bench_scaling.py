#!/usr/bin/env python
"""Scaling benchmark of the scoring pipeline: archs/s of the Ray pipeline with 1 and 2 workers, and of a plain
in-process loop over the same archs (no Ray, no store), measured in one process with the runs alternated.

    python scripts/bench_scaling.py --archs 32 --rounds 3 --metrics params,grad_norm,naswot

Each round runs every mode once, in a rotated order (round r starts with mode r mod 3), so slow drifts of the
machine (other load, thermal) hit all modes alike. Two rates are reported per Ray run:

- ``e2e``: archs / wall time of the whole ``run_scoring`` call (actor start-up, batch transfer, store writes);
- ``steady``: archs after the first finished shard / time from that shard to the last (the pipeline's
  throughput once actors are warm, the number that matters for large runs).

Ratios: ``ray2/ray1`` (scaling with workers; ~2 on 2 free cores or 2 GPUs) and ``ray1/local`` (Ray overhead).
Ray is started once with ``--cpus`` CPUs (and logical GPUs if ``--gpus-per-worker`` > 0 on a CPU machine).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# The plain loop must run with the same intra-op threads as one actor (1 CPU each) for a fair ratio.
os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import ray  # noqa: E402
import torch  # noqa: E402

from raynas.data import create_batch  # noqa: E402
from raynas.parallel import ScoreConfig, run_scoring  # noqa: E402
from raynas.parallel.scoring import score_ids  # noqa: E402
from raynas.spaces import create_space  # noqa: E402

MODES = ("local", "ray1", "ray2")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--space", default="nb201")
    p.add_argument("--archs", type=int, default=16, help="archs scored per run (same ids for every mode)")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--metrics", default="params,grad_norm,naswot")
    p.add_argument("--data", default="digits")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--image-size", type=int, default=8)
    p.add_argument("--C", type=int, default=4)
    p.add_argument("--N", type=int, default=1)
    p.add_argument("--shard-size", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray instance")
    p.add_argument("--gpus-per-worker", type=float, default=0.0)
    p.add_argument("--json", default=None, help="also write the raw timings here")
    return p.parse_args(argv)


def run_local_loop(args: argparse.Namespace, space: Any, ids: list[int], metrics: list[str]) -> dict:
    batch = create_batch(args.data, batch_size=args.batch_size, seed=args.seed, size=args.image_size)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    t0 = time.perf_counter()
    score_ids(space, ids, metrics, batch, args.seed, device, space_kwargs={"C": args.C, "N": args.N})
    dt = time.perf_counter() - t0
    return {"e2e": len(ids) / dt, "steady": len(ids) / dt, "seconds": dt}


def run_ray(args: argparse.Namespace, ids: list[int], workers: int, out: Path) -> dict:
    cfg = ScoreConfig(
        out=str(out), space=args.space, metrics=args.metrics, ids=tuple(ids), seed=args.seed, data=args.data,
        batch_size=args.batch_size, image_size=args.image_size, space_kwargs={"C": args.C, "N": args.N},
        shard_size=args.shard_size, workers=workers, gpus_per_worker=args.gpus_per_worker,
    )
    marks: list[tuple[float, int]] = []
    t0 = time.perf_counter()
    run_scoring(cfg, lambda done, total, rate, eta: marks.append((time.perf_counter(), done)))
    dt = time.perf_counter() - t0
    done_marks = [(t, d) for t, d in marks if d > 0]
    (t_first, d_first), (t_last, d_last) = done_marks[0], done_marks[-1]
    steady = (d_last - d_first) / (t_last - t_first) if t_last > t_first else float("nan")
    return {"e2e": len(ids) / dt, "steady": steady, "seconds": dt}


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    torch.set_num_threads(1)
    space = create_space(args.space)
    ids = space.sample_indices(args.archs, args.seed)
    metrics = ScoreConfig(out="-", ids=(0,), metrics=args.metrics).metric_names()
    gpus = None
    if args.gpus_per_worker > 0 and not torch.cuda.is_available():
        gpus = max(1, int(2 * args.gpus_per_worker + 0.999))
    ray.init(num_cpus=args.cpus, num_gpus=gpus, include_dashboard=False, log_to_driver=False)
    results: dict[str, list[dict]] = {m: [] for m in MODES}
    try:
        with tempfile.TemporaryDirectory(prefix="bench_scaling_") as tmp:
            for r in range(args.rounds):
                order = MODES[r % 3:] + MODES[: r % 3]
                for mode in order:
                    if mode == "local":
                        res = run_local_loop(args, space, ids, metrics)
                    else:
                        res = run_ray(args, ids, int(mode[-1]), Path(tmp) / f"r{r}_{mode}")
                    results[mode].append(res)
                    print(f"round {r} {mode:6s} e2e {res['e2e']:7.2f} archs/s  steady {res['steady']:7.2f} archs/s  "
                          f"({res['seconds']:.1f} s)", flush=True)
    finally:
        ray.shutdown()
    med = {m: {k: statistics.median(x[k] for x in results[m]) for k in ("e2e", "steady")} for m in MODES}
    print(f"\n{args.archs} archs x {len(metrics)} metrics, {args.rounds} rounds, medians (archs/s):")
    for m in MODES:
        print(f"  {m:6s} e2e {med[m]['e2e']:7.2f}   steady {med[m]['steady']:7.2f}")
    for k in ("e2e", "steady"):
        print(f"  {k:6s} ray2/ray1 = {med['ray2'][k] / med['ray1'][k]:.2f}   "
              f"ray1/local = {med['ray1'][k] / med['local'][k]:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "runs": results, "medians": med}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
