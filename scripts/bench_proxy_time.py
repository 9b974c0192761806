#!/usr/bin/env python
"""Time per architecture of each proxy in the fused engine, beside grad_norm, measured side by side in one run.

Each proxy (a metric, or a '+'-joined group of metrics computed together, e.g. AZ-NAS's three terms that share
one pass) is scored with ``compute_metrics(..., fused=True)`` on the same sampled NAS-Bench-201 networks, batch
and seed; the proxies are timed in turn on each arch, the order rotating from arch to arch so that drift of a
shared machine hits all alike. Prints, per proxy, the median wall seconds per arch and the ratio to grad_norm's
median (the issue's rule: a proxy slower than 3x grad_norm says why, in docs/benchmarks.md).

    OMP_NUM_THREADS=1 python scripts/bench_proxy_time.py --C 16 --N 5 --batch 64 --archs 10
    python scripts/bench_proxy_time.py --proxies grad_norm,zico,meco --device cuda
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from raynas.data.batch import Batch  # noqa: E402
from raynas.metrics import resolve_metric_names  # noqa: E402
from raynas.metrics.engine import compute_metrics  # noqa: E402
from raynas.spaces import create_space  # noqa: E402

DEFAULT_PROXIES = ("grad_norm,az_nas_expressivity+az_nas_progressivity+az_nas_trainability,az_nas_complexity,"
                   "zico,meco")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--proxies", default=DEFAULT_PROXIES, help="comma list; '+' joins metrics scored together")
    ap.add_argument("--C", type=int, default=16)
    ap.add_argument("--N", type=int, default=5)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--archs", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: leave)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    proxies = [resolve_metric_names(p.split("+")) for p in args.proxies.split(",") if p.strip()]
    names = ["+".join(p) for p in proxies]
    if "grad_norm" not in names:
        ap.error("--proxies must include grad_norm (the reference of the ratios)")
    space = create_space("nb201")
    rng = np.random.default_rng(args.seed)
    ids = [int(i) for i in rng.choice(space.size, size=args.archs, replace=False)]
    g = torch.Generator().manual_seed(args.seed)
    batch = Batch(torch.randn(args.batch, 3, 32, 32, generator=g), torch.randint(0, 10, (args.batch,), generator=g),
                  10, "randn")
    dev = torch.device(args.device)

    def factory(i: int):
        return lambda: space.to_module(space.index_to_arch(i), 10, C=args.C, N=args.N)

    compute_metrics(factory(ids[0]), batch, sorted({m for p in proxies for m in p}), device=dev, fused=True)  # warm-up
    seconds: dict[str, list[float]] = {n: [] for n in names}
    statuses: dict[str, list[str]] = {n: [] for n in names}
    for k, i in enumerate(ids):
        order = names[k % len(names):] + names[: k % len(names)]
        for n in order:
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            t0 = time.perf_counter()
            res = compute_metrics(factory(i), batch, n.split("+"), device=dev, seed=args.seed, fused=True)
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            seconds[n].append(time.perf_counter() - t0)
            statuses[n].append(",".join(sorted({r.status for r in res})))
    ref = statistics.median(seconds["grad_norm"])
    print(f"NB201 C={args.C} N={args.N}, batch {args.batch}, {args.archs} archs, device {args.device}, "
          f"threads {torch.get_num_threads()}; seconds per arch (median, incl. building the network)")
    rows = []
    for n in names:
        med = statistics.median(seconds[n])
        rows.append({"proxy": n, "seconds_median": med, "ratio_to_grad_norm": med / ref,
                     "statuses": sorted(set(statuses[n]))})
        print(f"{n:70s} {med:8.3f} s  x{med / ref:5.2f} grad_norm   statuses {sorted(set(statuses[n]))}")
    if args.json is not None:
        args.json.write_text(json.dumps({"ids": ids, "rows": rows, "seconds": seconds}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
