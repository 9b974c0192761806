#!/usr/bin/env python
"""Batched vs per-arch metric values, in float32 AND float64, on the same weights and batch, side by side.

The batched engine (:mod:`raynas.metrics.batched`) must give the per-arch values. On small networks float32
agrees to 1e-5; at the benchmark's size (NAS-Bench-201 C=16 N=5, digits batch 64, 32 px) float32 grasp and snip
differ by more. This script tells rounding from a difference of definition: for each batchable metric and
each arch it prints

* ``b32~p32``: |batched - per-arch| / |per-arch|, both in the registered dtypes (what a run stores: float32,
  synflow float64). Per-arch is the unfused engine, each metric's own function (the definition);
* ``b64~p64``: the same with EVERY metric in float64 (``compute_metrics_batched(..., dtype=torch.float64)`` vs
  :func:`raynas.metrics.batched.per_arch_metrics` in float64). A difference of definition shows here; float64
  rounding is ~1e-15;
* ``p32~p64``: |per-arch registered - per-arch float64| / |per-arch float64|: float32's own rounding error of
  the metric on this network, the scale ``b32~p32`` is to be read against;
* ``b32~p64``: |batched registered - per-arch float64| / |per-arch float64|: the batched float32 value's own
  error, to compare with ``p32~p64`` (neither float32 path is the more exact one);
* ``f32~p32``: |per-arch fused - per-arch unfused| / |per-arch unfused| in float32 (the fused engine is what
  ``raynas score`` runs per arch): two float32 per-arch computations of the same definition.

The archs are scored ``--k`` at a time (mixed stacks). Ends with the per-metric maximum of each column and
exits 1 if ``b64~p64`` exceeds ``--tol64`` (default 1e-9) anywhere or a status differs.

    OMP_NUM_THREADS=1 python scripts/bench_batched_equality.py                  # C=16 N=5, digits 64, 8 archs, K=4
    OMP_NUM_THREADS=1 python scripts/bench_batched_equality.py --C 8 --N 2 --batch 16 --k 8 --json eq.json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from raynas.data import create_batch  # noqa: E402
from raynas.metrics.batched import BATCHED_METRICS, compute_metrics_batched, per_arch_metrics  # noqa: E402
from raynas.metrics.engine import MetricResult, compute_metrics  # noqa: E402
from raynas.spaces import create_space  # noqa: E402

#: diverse cells: identity-only, pool-only, conv-only (3x3 and 1x1) and official mixed indices
CELLS = {
    "all_skip": "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|",
    "all_pool": "|avg_pool_3x3~0|+|avg_pool_3x3~0|avg_pool_3x3~1|+|avg_pool_3x3~0|avg_pool_3x3~1|avg_pool_3x3~2|",
    "all_conv3": "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|",
    "all_conv1": "|nor_conv_1x1~0|+|nor_conv_1x1~0|nor_conv_1x1~1|+|nor_conv_1x1~0|nor_conv_1x1~1|nor_conv_1x1~2|",
}
OFFICIAL = (0, 6111, 9930, 13714)
COLUMNS = ("b32~p32", "b64~p64", "p32~p64", "b32~p64", "f32~p32")


def rel(a: MetricResult, ref: MetricResult) -> float | None:
    """|a - ref| / |ref| (0 when both are 0); None when either has no value."""
    if a.value is None or ref.value is None:
        return None
    d = abs(a.value - ref.value)
    return 0.0 if d == 0 else d / max(abs(ref.value), 1e-300)


def fmt(x: float | None) -> str:
    return "      -" if x is None else f"{x:7.1e}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--C", type=int, default=16)
    ap.add_argument("--N", type=int, default=5)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--resolution", type=int, default=32)
    ap.add_argument("--data", default="digits", help="dataset spec of raynas.data.create_batch (default digits)")
    ap.add_argument("--archs", default=",".join([*CELLS, *map(str, OFFICIAL)]),
                    help="comma list of cell names (%s) or NB201 indices" % ", ".join(CELLS))
    ap.add_argument("--k", type=int, default=4, help="archs per stacked network (default 4)")
    ap.add_argument("--metrics", default=",".join(BATCHED_METRICS))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: leave)")
    ap.add_argument("--tol64", type=float, default=1e-9)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    space = create_space("nb201")
    archs = [(a, CELLS[a]) if a in CELLS else (f"#{a}", space.format(space.index_to_arch(int(a))))
             for a in args.archs.split(",") if a]
    names = [m for m in args.metrics.split(",") if m]
    batch = create_batch(args.data, args.batch, seed=args.seed, size=args.resolution)
    num_classes = batch.num_classes
    facs = [lambda s=s: space.to_module(s, num_classes, C=args.C, N=args.N) for _, s in archs]
    print(f"NB201 C={args.C} N={args.N}, {args.data} batch {args.batch} {args.resolution}px, K={args.k}, "
          f"torch threads {torch.get_num_threads()}, archs {[a for a, _ in archs]}", flush=True)
    res: dict[str, list[list[MetricResult]]] = {m: [] for m in ("b32", "b64", "p32", "p64", "f32")}
    seconds = {m: 0.0 for m in res}
    for s in range(0, len(facs), args.k):
        group = facs[s:s + args.k]
        for mode, dtype in (("b32", None), ("b64", torch.float64)):
            t0 = time.perf_counter()
            res[mode] += compute_metrics_batched(group, batch, names, seed=args.seed, dtype=dtype)
            seconds[mode] += time.perf_counter() - t0
        for f in group:
            calls = {"p32": lambda f=f: compute_metrics(f, batch, names, seed=args.seed, fused=False),
                     "f32": lambda f=f: compute_metrics(f, batch, names, seed=args.seed, fused=True),
                     "p64": lambda f=f: per_arch_metrics(f, batch, names, dtype=torch.float64, seed=args.seed)}
            for mode, call in calls.items():
                t0 = time.perf_counter()
                res[mode].append(call())
                seconds[mode] += time.perf_counter() - t0
        print(f"  scored archs {s}..{s + len(group) - 1}: " + ", ".join(f"{m} {v:.0f} s" for m, v in seconds.items()),
              flush=True)
    pairs = {"b32~p32": ("b32", "p32"), "b64~p64": ("b64", "p64"), "p32~p64": ("p32", "p64"), "b32~p64": ("b32", "p64"),
             "f32~p32": ("f32", "p32")}
    table: dict[str, dict[str, dict[str, Any]]] = {}
    bad: list[str] = []
    print(f"\n{'metric':10s} {'arch':10s} " + " ".join(f"{c:>8s}" for c in COLUMNS) + "   value (per-arch float64)")
    for j, name in enumerate(names):
        table[name] = {}
        for i, (label, _) in enumerate(archs):
            row = {c: rel(res[a][i][j], res[b][i][j]) for c, (a, b) in pairs.items()}
            statuses = {m: res[m][i][j].status for m in res}
            if len(set(statuses.values())) > 1:
                bad.append(f"{name} {label}: statuses {statuses}")
            if row["b64~p64"] is not None and row["b64~p64"] > args.tol64:
                bad.append(f"{name} {label}: b64~p64 {row['b64~p64']:.2e} > {args.tol64}")
            table[name][label] = {**row, "statuses": statuses, "values": {m: res[m][i][j].value for m in res}}
            v = res["p64"][i][j].value
            print(f"{name:10s} {label:10s} " + " ".join(f"{fmt(row[c]):>8s}" for c in COLUMNS)
                  + f"   {v if v is not None else statuses['p64']}")
    print(f"\nmax over archs\n{'metric':10s} " + " ".join(f"{c:>8s}" for c in COLUMNS))
    summary: dict[str, dict[str, float | None]] = {}
    for name in names:
        summary[name] = {}
        for c in COLUMNS:
            vals = [r[c] for r in table[name].values() if r[c] is not None]
            summary[name][c] = max(vals) if vals else None
        print(f"{name:10s} " + " ".join(f"{fmt(summary[name][c]):>8s}" for c in COLUMNS))
    print("seconds: " + ", ".join(f"{m} {v:.0f}" for m, v in seconds.items()))
    for line in bad:
        print("MISMATCH", line)
    if args.json is not None:
        args.json.write_text(json.dumps({"config": {**vars(args), "json": str(args.json)}, "per_arch": table,
                                         "max": summary, "seconds": seconds, "mismatches": bad},
                                        indent=2, default=lambda x: None if isinstance(x, float) and math.isnan(x)
                                        else str(x)))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
