#!/usr/bin/env python
"""The fused ``--metrics all`` in contiguous vs ``channels_last`` memory format (``raynas score --channels-last``).

Scores one NAS-Bench-201 arch (default 13291 at C=16, N=5: the scoring loop's size) on the digits batch (64 images
at 32x32, seed 0) with :func:`raynas.metrics.engine.compute_metrics` (``fused=True``, as ``raynas score`` runs it),
once with ``channels_last=False`` and once with ``channels_last=True``, interleaved (contiguous, channels_last,
contiguous, ...) so that machine load hits both alike, on one thread. Each unit of work (a metric, or a shared pass
of several, as the engine reports it through ``on_metric``) is timed in CPU seconds of the process
(``time.process_time``: on a shared machine the wall clock moves with other jobs' load; the wall seconds of the
whole call are printed too). Prints, per unit, the median seconds both ways and the ratio contiguous /
channels_last (above 1: channels_last is faster), the total, and the largest value difference between the two
layouts relative to the value.

    python scripts/bench_memory_format.py [--arch 13291 --C 16 --N 5 --batch 64 --repeats 1 --metrics all]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from raynas.data import create_batch  # noqa: E402
from raynas.metrics import resolve_metric_names  # noqa: E402
from raynas.metrics.engine import compute_metrics  # noqa: E402
from raynas.spaces import create_space  # noqa: E402

SEED = 0
LAYOUTS = {"contiguous": False, "channels_last": True}


def timed(net: torch.nn.Module, thin: torch.nn.Module, batch, names: list[str], channels_last: bool
          ) -> tuple[dict[str, float], float, float, dict[str, float | None]]:  # type: ignore[no-untyped-def]
    """(CPU seconds per unit of work, total CPU seconds, wall seconds, values) of one fused call."""
    mine, mine_thin = copy.deepcopy(net), copy.deepcopy(thin)  # the network as a run hands it over, copied untimed
    marks: list[tuple[str, float]] = []

    def on_metric(unit: tuple[str, ...], _done: int, _total: int) -> None:
        marks.append(("+".join(unit) if len(unit) <= 3 else f"{unit[0]}+{len(unit) - 1} more", time.process_time()))

    t0, w0 = time.process_time(), time.perf_counter()
    rows = compute_metrics(lambda: mine, batch, names, seed=SEED, thin_factory=lambda: mine_thin, fused=True,
                           channels_last=channels_last, on_metric=on_metric)
    t1, wall = time.process_time(), time.perf_counter() - w0
    units = {}
    for (name, start), (_n, end) in zip(marks, marks[1:] + [("", t1)]):
        units[name] = units.get(name, 0.0) + end - start
    bad = [f"{r.metric}: {r.status} {r.error}" for r in rows if r.status not in ("ok", "nan", "not_applicable")]
    if bad:
        print("  not ok: " + "; ".join(bad), flush=True)
    return units, t1 - t0, wall, {r.metric: r.value for r in rows}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", type=int, default=13291)
    ap.add_argument("--C", type=int, default=16)
    ap.add_argument("--N", type=int, default=5)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--data", default="digits")
    ap.add_argument("--metrics", default="all", help="metric and group names, as raynas score --metrics")
    ap.add_argument("--repeats", type=int, default=1, help="interleaved contiguous/channels_last pairs")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    space = create_space("nb201")
    arch = space.index_to_arch(args.arch)
    torch.manual_seed(SEED)
    net = space.to_module(arch, 10, C=args.C, N=args.N)
    torch.manual_seed(SEED)
    thin = space.to_module(arch, 10, **space.thin_kwargs())
    batch = create_batch(args.data, args.batch, seed=SEED)
    names = resolve_metric_names(args.metrics)
    print(f"NB201 arch {args.arch} C={args.C} N={args.N}, {args.data} batch {args.batch}, {len(names)} metrics "
          f"({args.metrics}), fused, {args.threads} thread(s), {args.repeats} interleaved pair(s); CPU seconds",
          flush=True)
    units: dict[str, dict[str, list[float]]] = {k: {} for k in LAYOUTS}
    totals: dict[str, list[float]] = {k: [] for k in LAYOUTS}
    values: dict[str, dict[str, float | None]] = {}
    for rep in range(args.repeats):
        for layout, cl in LAYOUTS.items():
            per_unit, total, wall, values[layout] = timed(net, thin, batch, names, cl)
            for u, s in per_unit.items():
                units[layout].setdefault(u, []).append(s)
            totals[layout].append(total)
            print(f"  pair {rep}: {layout} {total:.1f} s CPU ({wall:.1f} s wall)", flush=True)

    def med(xs: list[float]) -> float:
        return statistics.median(xs) if xs else float("nan")

    print(f"{'unit':<40} {'contiguous':>11} {'channels_last':>14} {'ratio':>7}")
    for u in sorted(units["contiguous"], key=lambda u: -med(units["contiguous"][u])):
        a, b = med(units["contiguous"][u]), med(units["channels_last"].get(u, []))
        print(f"{u:<40} {a:>11.2f} {b:>14.2f} {a / b if b > 0 else float('nan'):>6.2f}x")
    a, b = med(totals["contiguous"]), med(totals["channels_last"])
    print(f"{'total':<40} {a:>11.2f} {b:>14.2f} {a / b:>6.2f}x")
    diffs = {m: abs(values["channels_last"][m] - v) / abs(v)  # type: ignore[operator]
             for m, v in values["contiguous"].items() if v and values["channels_last"].get(m) is not None}
    if diffs:
        worst = max(diffs, key=lambda m: diffs[m])
        print(f"largest relative value difference: {worst} {diffs[worst]:.1e} (last pair)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
