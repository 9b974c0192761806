#!/usr/bin/env python
"""Throughput of the metric engine, fused vs unfused, on the same NAS-Bench-201 networks in one run.

For each metric set (the RoBoT set ``grad_norm,snip,grasp,fisher,synflow,jacob_cov`` and "all" registered
metrics) and each of a few sampled NB201 archs, the unfused and the fused engine are timed ALTERNATELY (the
order flips from arch to arch, so drift of a shared machine hits both alike) on the same random batch and seed.
Prints archs/s (wall clock), the fused/unfused speed ratio in wall and in process CPU time (the robust one on a
shared machine when torch runs one thread), the peak memory of each mode and the largest relative difference
between the two engines' values (a sanity check: they compute the same numbers). With ``--repeats R`` each
arch is timed R times per engine (still alternating) and the fastest run of each engine counts. Each set also
prints the projected time to score all 15,625 NB201 archs at the measured rate (one process, one device).
``--count-ops`` also counts the ATen operators each engine dispatches per arch (untimed calls): on a GPU, small
NB201 networks are bound by kernel launches, so that ratio is what a GPU speedup would tend to, without a GPU.

``--arch-batches 1,8,32`` adds the batched engine (:mod:`raynas.metrics.batched`: K archs in one stacked
network): per set, the per-arch unfused engine (one pass per metric, the authors' loop), the per-arch fused
engine and the batched engine at each K each score ALL sampled archs, the modes timed in a rotating order
(``--repeats`` rounds, fastest round of each mode counts); prints archs/s and the ratio to the unfused loop and
to fused, ATen ops per arch (``--count-ops``), peak memory per arch, and the largest relative difference of the
batched values from the fused ones. ``--batched-only`` skips the per-arch fused/unfused section above.

Peak memory: on CUDA ``torch.cuda.max_memory_allocated`` (reset before each call); on CPU the peak resident set
size above the pre-call level, sampled every 5 ms from ``/proc/self/statm`` (freed heap is returned to the OS
with ``malloc_trim`` before each call), falling back to ``resource.getrusage`` (process lifetime) elsewhere.

    OMP_NUM_THREADS=1 python scripts/bench_throughput.py --C 16 --N 5 --batch 64 --archs 4
    python scripts/bench_throughput.py --C 8 --N 1 --batch 16 --archs 3 --sets robot --device cuda --json out.json
    OMP_NUM_THREADS=1 python scripts/bench_throughput.py --sets robot --archs 16 --arch-batches 1,4,16 \
        --batched-only --count-ops
"""

from __future__ import annotations

import argparse
import ctypes
import json
import math
import os
import resource
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402
from torch.utils._python_dispatch import TorchDispatchMode  # noqa: E402

from raynas.data.batch import Batch  # noqa: E402
from raynas.metrics import get_metric, list_metrics  # noqa: E402
from raynas.metrics.batched import compute_metrics_batched  # noqa: E402
from raynas.metrics.engine import MetricResult, compute_metrics  # noqa: E402
from raynas.search.defaults import ROBOT_METRICS  # noqa: E402
from raynas.spaces import create_space  # noqa: E402

ROBOT = ",".join(ROBOT_METRICS)
NB201_SIZE = 15625


class OpCounter(TorchDispatchMode):
    """Counts every ATen operator dispatched while active (a proxy of GPU kernel launches)."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        self.count += 1
        return func(*args, **(kwargs or {}))


class PeakMemory:
    """Peak bytes used by one call: CUDA allocator peak, or sampled RSS above the level before the call."""

    def __init__(self, device: torch.device):
        self.device, self.peak = device, 0
        self._stop = threading.Event()
        self._page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096

    def _rss(self) -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * self._page

    def __enter__(self) -> "PeakMemory":
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self._base = torch.cuda.memory_allocated()
            return self
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except OSError:
            pass
        if not Path("/proc/self/statm").exists():
            return self
        self._base = self._rss()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, self._rss() - self._base)

    def __exit__(self, *exc: Any) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            self.peak = torch.cuda.max_memory_allocated() - self._base
        elif hasattr(self, "_thread"):
            self._stop.set()
            self._thread.join()
            self.peak = max(self.peak, self._rss() - self._base)


def timed(
    fn: Callable[[], list[MetricResult]], device: torch.device
) -> tuple[float, float, int, list[MetricResult]]:
    """``(wall seconds, CPU seconds of this process, peak bytes, results)`` of one call."""
    with PeakMemory(device) as mem:
        t0, c0 = time.perf_counter(), time.process_time()
        res = fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    return seconds, cpu, mem.peak, res


def max_rel_diff(a: list[MetricResult], b: list[MetricResult]) -> tuple[float, str]:
    worst, name = 0.0, ""
    for x, y in zip(a, b):
        if x.status != y.status:
            return float("inf"), f"{x.metric}: {x.status} vs {y.status}"
        if x.value is not None and y.value is not None:
            d = abs(x.value - y.value) / max(abs(x.value), 1e-30)
            if d > worst:
                worst, name = d, x.metric
    return worst, name


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--C", type=int, default=16, help="NB201 stem channels (default 16, the benchmark's)")
    ap.add_argument("--N", type=int, default=5, help="cells per stage (default 5)")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--resolution", type=int, default=32)
    ap.add_argument("--num-classes", type=int, default=10)
    ap.add_argument("--archs", type=int, default=4, help="number of sampled archs (default 4)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--sets", default="robot,all", help="comma list of: robot, all, or '+'-joined metric names")
    ap.add_argument("--exclude", default="", help="metrics left out of 'all' (comma list)")
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--tf32", action="store_true")
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: leave)")
    ap.add_argument("--warmup", type=int, default=1, help="untimed calls of both engines first (default 1)")
    ap.add_argument("--repeats", type=int, default=1,
                    help="alternating repeats per arch; the fastest of each engine counts (robust on a busy machine)")
    ap.add_argument("--count-ops", action="store_true",
                    help="also count dispatched ATen ops per arch for each engine (extra, untimed calls)")
    ap.add_argument("--arch-batches", default="", help="comma list of K: also time the batched engine (see above)")
    ap.add_argument("--batched-only", action="store_true", help="only the batched comparison (with --arch-batches)")
    ap.add_argument("--json", type=Path, default=None, help="also write the summary here")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    space = create_space("nb201")
    ids = space.sample_indices(args.archs, args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    batch = Batch(
        torch.randn(args.batch, 3, args.resolution, args.resolution, generator=gen),
        torch.randint(0, args.num_classes, (args.batch,), generator=gen),
        args.num_classes,
        "gaussian",
    )
    excluded = {s for s in args.exclude.split(",") if s}
    sets: dict[str, list[str]] = {}
    for name in args.sets.split(","):
        if name == "robot":
            sets[name] = ROBOT.split(",")
        elif name == "all":
            sets[name] = [m for m in list_metrics() if m not in excluded]
        else:
            sets[name] = name.split("+")
    thin_kw = space.thin_kwargs()
    summary: dict[str, Any] = {"config": vars(args) | {"json": str(args.json), "ids": ids}, "sets": {}}
    print(f"NB201 C={args.C} N={args.N} batch={args.batch} {args.resolution}x{args.resolution} on {device}, "
          f"archs {ids}, torch threads {torch.get_num_threads()}")
    arch_batches = [int(k) for k in args.arch_batches.split(",") if k.strip()]
    for set_name, names in sets.items():
        if arch_batches:
            summary["sets"].setdefault(set_name, {})["batched"] = bench_batched(
                space, ids, names, batch, device, args, arch_batches, set_name)
            if args.batched_only:
                continue
        for _ in range(args.warmup):  # first calls pay for lazy initialisation (oneDNN, allocator, imports)
            arch0 = space.index_to_arch(ids[0])
            for fused in (False, True):
                compute_metrics(lambda: space.to_module(arch0, args.num_classes, C=args.C, N=args.N),
                                batch.head(min(4, batch.size)), names, device=device, seed=args.seed, fused=fused)
        tot = {False: 0.0, True: 0.0}
        cpu = {False: 0.0, True: 0.0}
        peak = {False: 0, True: 0}
        ops = {False: 0, True: 0}
        worst = (0.0, "")
        per_metric: dict[str, float] = {m: 0.0 for m in dict.fromkeys(names)}  # unfused seconds, summed over archs
        for k, idx in enumerate(ids):
            arch = space.index_to_arch(idx)
            factory = lambda: space.to_module(arch, args.num_classes, C=args.C, N=args.N)  # noqa: E731
            thin = (lambda: space.to_module(arch, args.num_classes, **{"C": args.C, "N": args.N, **thin_kw})) \
                if thin_kw else None

            def score(fused: bool) -> list[MetricResult]:  # one engine call on this arch (timed or op-counted)
                return compute_metrics(factory, batch, names, device=device, seed=args.seed, thin_factory=thin,
                                       fused=fused, channels_last=args.channels_last, allow_tf32=args.tf32)

            runs: dict[bool, list[MetricResult]] = {}
            best: dict[bool, tuple[float, float]] = {}
            for rep in range(args.repeats):
                for fused in ((False, True) if (k + rep) % 2 == 0 else (True, False)):  # alternate the order
                    sec, cpu_s, mem, res = timed(lambda: score(fused), device)
                    old = best.get(fused, (math.inf, math.inf))
                    best[fused] = (min(old[0], sec), min(old[1], cpu_s))
                    peak[fused] = max(peak[fused], mem)
                    runs[fused] = res
                    print(f"  [{set_name}] arch {idx}: {'fused  ' if fused else 'unfused'} {sec:8.2f} s wall, "
                          f"{cpu_s:8.2f} s CPU, peak {mem / 2**20:8.1f} MiB")
            for fused, (sec, cpu_s) in best.items():
                tot[fused] += sec
                cpu[fused] += cpu_s
            for r in runs[False]:
                per_metric[r.metric] += r.seconds
            if args.count_ops:
                for fused in (False, True):
                    with OpCounter() as counter:
                        score(fused)
                    ops[fused] += counter.count
            d = max_rel_diff(runs[False], runs[True])
            worst = max(worst, d)
        n = len(ids)
        row = {
            "metrics": names,
            "unfused_archs_per_s": n / tot[False],
            "fused_archs_per_s": n / tot[True],
            "speedup": tot[False] / tot[True],
            "unfused_cpu_s_per_arch": cpu[False] / n,
            "fused_cpu_s_per_arch": cpu[True] / n,
            "cpu_speedup": cpu[False] / cpu[True],
            "unfused_peak_mib": peak[False] / 2**20,
            "fused_peak_mib": peak[True] / 2**20,
            "peak_ratio": peak[True] / peak[False] if peak[False] else float("nan"),
            "max_rel_diff": worst[0],
            "max_rel_diff_metric": worst[1],
            "unfused_s_per_arch_by_metric": {m: v / n for m, v in per_metric.items()},
            # one process on one device at this batch size: minutes to score all of NB201 at the measured rate
            "projected_nb201_minutes": {"unfused": NB201_SIZE * tot[False] / n / 60,
                                        "fused": NB201_SIZE * tot[True] / n / 60},
        }
        share = sum(per_metric.values()) or 1.0
        print(f"  [{set_name}] unfused s/arch by metric: " + ", ".join(
            f"{m} {v / n:.2f} ({100 * v / share:.0f}%)" for m, v in sorted(per_metric.items(), key=lambda kv: -kv[1])))
        heavy = [m for m in per_metric if get_metric(m).pass_kind in ("ntk", "lwt")]
        if {"grasp", "grad_norm"} <= set(per_metric) and not heavy:  # else NTK / training runs set the floor
            # GraSP's Hessian-vector product (its 2nd forward, graph-building backward and the HVP) cannot be
            # shared: even if every other metric came free the fused engine needs about grasp - grad_norm
            # (grad_norm ~ one forward/backward, the part of grasp the shared pass does provide)
            floor = max(per_metric["grasp"] - per_metric["grad_norm"], 1e-9)
            row["speedup_bound_hvp"] = sum(per_metric.values()) / floor
            print(f"  [{set_name}] bound from GraSP's unshareable HVP: speedup <= x{row['speedup_bound_hvp']:.2f}")
        summary["sets"][set_name] = {**row, **summary["sets"].get(set_name, {})}
        print(f"{set_name}: unfused {row['unfused_archs_per_s']:.4f} archs/s, fused {row['fused_archs_per_s']:.4f} "
              f"archs/s -> speedup x{row['speedup']:.2f} (CPU time x{row['cpu_speedup']:.2f}); peak "
              f"{row['unfused_peak_mib']:.1f} -> {row['fused_peak_mib']:.1f} MiB (x{row['peak_ratio']:.2f}); "
              f"max rel diff {worst[0]:.2e} {worst[1]}")
        if args.count_ops:
            row["unfused_ops_per_arch"], row["fused_ops_per_arch"] = ops[False] / n, ops[True] / n
            row["op_ratio"] = ops[False] / max(ops[True], 1)
            print(f"{set_name}: ATen ops per arch unfused {ops[False] / n:.0f}, fused {ops[True] / n:.0f} "
                  f"(x{row['op_ratio']:.2f} fewer)")
        proj = row["projected_nb201_minutes"]
        print(f"{set_name}: projected time for all {NB201_SIZE} NB201 archs on one {device.type} device: unfused "
              f"{proj['unfused']:.0f} min, fused {proj['fused']:.0f} min")
    summary["process_maxrss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if args.json is not None:
        args.json.write_text(json.dumps(summary, indent=2))
    return 0


def bench_batched(space: Any, ids: list[int], names: list[str], batch: Batch, device: torch.device, args: Any,
                  ks: list[int], set_name: str) -> dict[str, Any]:
    """Unfused loop vs fused per arch vs batched at each K, all on the same archs, rotating order per round."""
    archs = [space.index_to_arch(i) for i in ids]
    net = {"C": args.C, "N": args.N}
    facs = [lambda a=a: space.to_module(a, args.num_classes, **net) for a in archs]
    thin_kw = space.thin_kwargs()
    thins = [lambda a=a: space.to_module(a, args.num_classes, **{**net, **thin_kw}) for a in archs] if thin_kw else None

    def per_arch(fused: bool) -> list[list[MetricResult]]:
        return [compute_metrics(f, batch, names, device=device, seed=args.seed, fused=fused,
                                thin_factory=thins[i] if thins else None) for i, f in enumerate(facs)]

    def batched(k: int) -> list[list[MetricResult]]:
        out: list[list[MetricResult]] = []
        for s in range(0, len(facs), k):
            out += compute_metrics_batched(facs[s:s + k], batch, names, device=device, seed=args.seed,
                                           thin_factories=thins[s:s + k] if thins else None)
        return out

    modes: dict[str, Callable[[], list[list[MetricResult]]]] = {"unfused": lambda: per_arch(False),
                                                                "fused": lambda: per_arch(True)}
    for k in ks:
        modes[f"batched{k}"] = lambda k=k: batched(k)
    for _ in range(args.warmup):  # lazy initialisation (oneDNN, allocator) on a small batch
        small = batch.head(min(4, batch.size))
        compute_metrics(facs[0], small, names, device=device, seed=args.seed, fused=True)
        compute_metrics_batched(facs[:2], small, names, device=device, seed=args.seed)
    best = {m: math.inf for m in modes}
    peak = {m: 0 for m in modes}
    results: dict[str, list[list[MetricResult]]] = {}
    order = list(modes)
    for rep in range(args.repeats):
        rot = order[rep % len(order):] + order[: rep % len(order)]
        for m in rot:
            sec, _cpu, mem, res = timed(modes[m], device)
            best[m], peak[m], results[m] = min(best[m], sec), max(peak[m], mem), res
            print(f"  [{set_name}] {m:10s} {len(ids)} archs {sec:8.2f} s wall, peak {mem / 2**20:8.1f} MiB")
    n = len(ids)
    row: dict[str, Any] = {"archs": n, "modes": {}}
    for m in modes:
        k = int(m[len("batched"):]) if m.startswith("batched") else 1
        worst = max((max_rel_diff(a, b) for a, b in zip(results["fused"], results[m])), default=(0.0, ""))
        row["modes"][m] = {"archs_per_s": n / best[m], "x_unfused": best["unfused"] / best[m],
                           "x_fused": best["fused"] / best[m], "peak_mib_per_arch": peak[m] / 2**20 / min(k, n),
                           "max_rel_diff_vs_fused": worst[0], "max_rel_diff_metric": worst[1]}
    if args.count_ops:
        for m in modes:
            with OpCounter() as counter:
                modes[m]()
            row["modes"][m]["ops_per_arch"] = counter.count / n
    for m, r in row["modes"].items():
        ops = f", {r['ops_per_arch']:.0f} ATen ops/arch" if "ops_per_arch" in r else ""
        print(f"{set_name}: {m:10s} {r['archs_per_s']:.4f} archs/s  x{r['x_unfused']:.2f} vs unfused loop, "
              f"x{r['x_fused']:.2f} vs fused{ops}, peak {r['peak_mib_per_arch']:.1f} MiB/arch, max rel diff vs "
              f"fused {r['max_rel_diff_vs_fused']:.1e} {r['max_rel_diff_metric']}")
    return row


if __name__ == "__main__":
    sys.exit(main())
