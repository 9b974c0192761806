#!/usr/bin/env python
"""Wall time of a real-training RoBoT search with q = 1, 2 and 4 queries in flight, each query one Ray task on
the workers available, measured side by side in one run.

    python scripts/bench_search_parallel.py --workers 2 --sample 64 --budget 8 --rounds 3 --epochs 3 --max-train 2048

A pool of ``--sample`` NAS-Bench-201 archs is scored once (in-process, tiny network). After an untimed warm-up
search (worker start-up, imports and data loading out of the timings), per round and in a rotated order, one
RoBoT search per q with the real-training oracle (NB201 C=8 N=1 at 16 px on ``--max-train`` digits images,
``--epochs`` epochs) whose queries are Ray tasks of 1 CPU each on a local Ray of ``--workers`` CPUs (or
``--address`` of a cluster, ``--gpus-per-query`` GPUs each). Per q it prints the best wall time of the search,
the ratio q=1 / q, the query-seconds per wall second (how many queries ran at once, on average: the
driver's GP steps count as idle), the distinct queries, the answer (arch, query value, the NB201 table's
200-epoch CIFAR-10 test accuracy) and after how many queries the answer was found. With q = 1 the driver's
GP step also waits for each query and each query for the GP step; with q > 1 they overlap, so the ratio can
exceed the worker count when queries are short. Timings on a shared machine are noisy: compare the ratios of one run.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core per query task, as a Ray worker with 1 CPU gets
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import ray  # noqa: E402

import raynas  # noqa: E402
from raynas.oracles.base import benchmark_answer  # noqa: E402
from raynas.oracles.training import TrainingOracle  # noqa: E402
from raynas.parallel.queries import RayQueryExecutor  # noqa: E402
from raynas.search import RoBoT  # noqa: E402
from raynas.search.runner import load_pool  # noqa: E402

METRICS = ["params", "synflow", "grad_norm"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", type=int, default=2, help="CPUs of the local Ray (one query task each)")
    ap.add_argument("--address", default=None, help="a running Ray cluster instead of a local Ray")
    ap.add_argument("--gpus-per-query", type=float, default=0.0)
    ap.add_argument("--sample", type=int, default=64)
    ap.add_argument("--budget", type=int, default=10)
    ap.add_argument("--qs", default="1,2,4")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--max-train", type=int, default=1024)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    qs = [int(q) for q in args.qs.split(",")]

    tmp = Path(tempfile.mkdtemp(prefix="bench_search_parallel_"))
    raynas.score(tmp / "pool", space="nb201", metrics=METRICS, sample=args.sample, seed=args.seed, data="digits",
                 batch_size=16, space_kwargs={"C": 4, "N": 1}, workers=0)
    pool, _, _ = load_pool(tmp / "pool", METRICS)
    opts: dict[str, Any] = {"space": "nb201", "space_kwargs": {"C": 8, "N": 1}, "input_size": 16,
                            "max_train": args.max_train, "max_val": 256,
                            "train_cfg": {"epochs": args.epochs, "batch_size": 64, "seed": args.seed},
                            "device": "auto" if args.gpus_per_query > 0 else "cpu"}
    if args.address:
        ray.init(address=args.address, log_to_driver=False)
    else:
        ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False)
    times: dict[int, list[float]] = {q: [] for q in qs}
    busy: dict[int, list[float]] = {q: [] for q in qs}  # query-seconds per wall second: queries running at once
    results: dict[int, dict[str, Any]] = {}
    try:
        # warm-up (untimed): every worker process imports torch and loads the data once before any timed search
        warm = RoBoT(pool, TrainingOracle(**opts), budget=args.workers, seed=args.seed + 1, q=args.workers)
        warm.run(executor=RayQueryExecutor(functools.partial(TrainingOracle, **opts), num_cpus=1,
                                           num_gpus=args.gpus_per_query))
        for rnd in range(args.rounds):
            order = qs[rnd % len(qs):] + qs[: rnd % len(qs)]
            for q in order:
                ex = RayQueryExecutor(functools.partial(TrainingOracle, **opts), num_cpus=1,
                                      num_gpus=args.gpus_per_query)
                search = RoBoT(pool, TrainingOracle(**opts), budget=args.budget, seed=args.seed, q=q)
                t0 = time.perf_counter()
                r = search.run(executor=ex)
                times[q].append(time.perf_counter() - t0)
                busy[q].append(sum(r["costs"]) / times[q][-1])
                results[q] = r
                print(f"round {rnd} q={q}: {times[q][-1]:.1f} s", flush=True)
    finally:
        ray.shutdown()
    base = min(times[qs[0]])
    print(f"\nRoBoT, real training ({args.epochs} epoch(s), {args.max_train} digits images, NB201 C=8 N=1), "
          f"budget {args.budget}, pool {len(pool)}, {args.address or f'{args.workers} local workers'}, "
          f"best of {args.rounds} round(s)")
    print(f"load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print("| q | wall s | vs q=1 | query-s / wall-s | distinct queries | answer (arch, val acc) | found at query | "
          "CIFAR-10 test acc of the answer |")
    print("|---|---|---|---|---|---|---|---|")
    for q in qs:
        r, t = results[q], min(times[q])
        ans = benchmark_answer("nb201", r["arch_index"])
        test = f"{ans.test_acc:.2f}" if ans is not None and ans.test_acc is not None else "-"
        print(f"| {q} | {t:.1f} | x{base / t:.2f} | {max(busy[q]):.2f} | {r['queries']} | "
              f"{r['arch_index']}, {r['value']:.2f} | "
              f"{r['queried'].index(r['arch_index']) + 1} | {test} |")


if __name__ == "__main__":
    main()
