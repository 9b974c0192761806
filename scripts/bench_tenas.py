#!/usr/bin/env python
"""TE-NAS on NAS-Bench-201 (CIFAR-10): the found arch's 200-epoch test accuracy over seeds, and the run time.

Runs :func:`raynas.pruning.run.run_tenas_search` once per seed (results cached under ``--out/seed<s>``:
re-running with the same settings only re-reads them), looks every found arch up in the NB201 table and prints
mean +- std beside the paper (Chen et al. 2021, Table 2: 93.9 +- 0.47 on CIFAR-10, 0.05 GPU-days / 1558 s on a
1080Ti). Defaults are the public TE-NAS launcher's settings (C=3, N=1 NTK supernet, batch 72, 3 repeats,
precision 3, one op per edge per round); they take about an hour per seed on 2 busy CPU cores. A quick check:

    python scripts/bench_tenas.py --seeds 0 --batch-size 16 --input-size 16 --repeats 1
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from raynas.oracles.base import BenchmarkTableOracle  # noqa: E402
from raynas.pruning.run import run_tenas_search  # noqa: E402

PAPER = {"acc_mean": 93.9, "acc_std": 0.47, "search_seconds": 1558}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", default="0,1,2", help="comma-separated search seeds")
    ap.add_argument("--data", default="digits", help="NTK batch: digits | noise | cifar10:PATH")
    ap.add_argument("--batch-size", type=int, default=72)
    ap.add_argument("--input-size", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--C", type=int, default=3, help="NTK supernet width (TE-NAS: 3)")
    ap.add_argument("--N", type=int, default=1, help="cells per stage of the NTK supernet (TE-NAS: 1)")
    ap.add_argument("--precision", type=int, default=3)
    ap.add_argument("--region-inputs", default="gaussian", choices=["gaussian", "crops"])
    ap.add_argument("--region-samples", type=int, default=1000)
    ap.add_argument("--keep-none", action="store_true", help="let 'none' compete (TE-NAS code removes it first)")
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    ap.add_argument("--out", type=Path, default=REPO / "runs" / "bench_tenas")
    ap.add_argument("--truth", type=Path, default=None, help="nb201_cifar10.parquet (default: $RAYNAS_DATA)")
    ap.add_argument("--json", type=Path, default=None, help="also write the summary here")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    oracle = BenchmarkTableOracle("nb201", args.truth)  # default: the benchmark's table under $RAYNAS_DATA
    rows = []
    for seed in [int(s) for s in args.seeds.split(",") if s.strip()]:
        cfg = {
            "space": "nb201", "seed": seed, "data": args.data, "batch_size": args.batch_size,
            "input_size": args.input_size, "repeats": args.repeats, "C": args.C, "N": args.N,
            "precision": args.precision, "region_inputs": args.region_inputs,
            "region_samples": args.region_samples, "drop_none": not args.keep_none,
            "out": str(args.out / f"seed{seed}"), "resume": True,
        }
        t0 = time.perf_counter()
        res = run_tenas_search(cfg)
        acc = oracle.final(res["arch_index"])
        rows.append({"seed": seed, "arch": res["arch"], "arch_index": res["arch_index"], "test_acc": acc,
                     "seconds": res["seconds"], "measure_calls": res["measure_calls"],
                     "cached": time.perf_counter() - t0 < 0.5 * res["seconds"]})
        print(f"seed {seed}: {res['arch']}  idx={res['arch_index']}  test acc {acc:.2f}%  "
              f"{res['seconds']:.0f} s ({res['measure_calls']} measures)", flush=True)

    accs = np.array([r["test_acc"] for r in rows])
    secs = np.array([r["seconds"] for r in rows])
    summary = {
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "runs": rows,
        "test_acc_mean": float(accs.mean()), "test_acc_std": float(accs.std()),
        "seconds_mean": float(secs.mean()), "best_in_space": oracle.best_final(), "paper": PAPER,
    }
    print()
    print(f"{'':28s} {'test acc (%)':>16s} {'search time':>14s}")
    print(f"{'raynas TE-NAS (' + str(len(rows)) + ' seeds)':28s} {accs.mean():9.2f} +- {accs.std():4.2f} "
          f"{secs.mean():11.0f} s  (CPU)")
    print(f"{'paper (Chen et al. 2021)':28s} {PAPER['acc_mean']:9.2f} +- {PAPER['acc_std']:4.2f} "
          f"{PAPER['search_seconds']:11d} s  (1080Ti)")
    print(f"{'best arch in NB201':28s} {oracle.best_final():9.2f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
