#!/usr/bin/env python
"""vkdnw's two Jacobian constructions side by side: ``vmap(jacrev)`` (old) vs per-class backward passes (new).

Times :func:`raynas.metrics.vkdnw.fisher_entropy` end to end (Kaiming re-initialisation, Jacobian, Cholesky factor,
Fisher matrix, SVD) with ``jacobian=selected_jacobian_reference`` (old: the issue-time engine, ``vmap(jacrev)`` and
a forward pass for the logits) and with ``jacobian=fisher_jacobian`` (new: what the metric runs, K - 1 per-class
backward passes whose recording forward gives the logits), in
float64 (``vkdnw``) and float32 (``vkdnw_f32``), on NAS-Bench-201 networks (default C=16 N=5, the scoring
loop's size) and a digits-like batch (random normal ``[64, 3, 32, 32]``), on one thread. The two paths run
interleaved (old, new, old, new, ...) so that machine load hits both alike; the script prints each path's median
CPU seconds per arch (``time.process_time``, one thread: on a shared machine the wall clock moves with the other
jobs' load far more; each call's wall seconds are printed beside), the ratio old / new, and how far the two values
and Jacobians differ. A few minutes on a loaded
2-core machine with the defaults:

    python scripts/bench_vkdnw.py --archs 2 --repeats 2
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from raynas.data.batch import Batch  # noqa: E402
from raynas.metrics.vkdnw import (  # noqa: E402
    fisher_entropy,
    kaiming_fan_in_init,
    fisher_jacobian,
    per_class_jacobian,
    selected_jacobian_reference,
)
from raynas.spaces import create_space  # noqa: E402

PATHS = {"old": selected_jacobian_reference, "new": fisher_jacobian}


def timed_value(net: torch.nn.Module, batch: Batch, path: str, seed: int) -> tuple[float, float, float]:
    """(CPU seconds, wall seconds, value) of one end-to-end vkdnw on ``net`` (already in the wanted dtype, eval
    mode)."""
    torch.manual_seed(seed)  # the metric re-initialises the weights: both paths see the same ones
    t0, w0 = time.process_time(), time.perf_counter()
    value = fisher_entropy(net, batch, jacobian=PATHS[path])
    return time.process_time() - t0, time.perf_counter() - w0, value


def jacobian_difference(net: torch.nn.Module, x: torch.Tensor, seed: int) -> float:
    """max |J_new - J_old| / max |J_old| on the metric's re-initialised weights."""
    torch.manual_seed(seed)
    kaiming_fan_in_init(net)
    old, new = selected_jacobian_reference(net, x), per_class_jacobian(net, x)
    return float((new - old).abs().max() / old.abs().max())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--C", type=int, default=16)
    ap.add_argument("--N", type=int, default=5)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--input-size", type=int, default=32)
    ap.add_argument("--archs", type=int, default=2, help="NB201 archs sampled (seeds 0, 1, ...)")
    ap.add_argument("--repeats", type=int, default=2, help="interleaved old/new pairs per arch and dtype")
    ap.add_argument("--dtypes", default="float64,float32")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    space = create_space("nb201")
    x = torch.randn(args.batch, 3, args.input_size, args.input_size, generator=torch.Generator().manual_seed(0))
    print(f"NB201 C={args.C} N={args.N}, batch {args.batch} x 3 x {args.input_size}^2 (random normal), "
          f"{args.threads} thread(s), {args.archs} arch(s) x {args.repeats} interleaved repeat(s)", flush=True)
    for dtype in [getattr(torch, d) for d in args.dtypes.split(",")]:
        times: dict[str, list[float]] = {"old": [], "new": []}
        ratios, value_diffs, jac_diffs = [], [], []
        for a in range(args.archs):
            arch = space.sample(np.random.default_rng(a))
            net = space.to_module(arch, 10, C=args.C, N=args.N).to(dtype).eval()
            batch = Batch(x.to(dtype), torch.zeros(args.batch, dtype=torch.long), 10, "randn")
            timed_value(net, batch, "new", seed=0)  # warm-up: kernel selection, allocator
            for _ in range(args.repeats):
                (t_old, w_old, v_old), (t_new, w_new, v_new) = (timed_value(net, batch, p, seed=0)
                                                                for p in ("old", "new"))
                times["old"].append(t_old)
                times["new"].append(t_new)
                ratios.append(t_old / t_new)
                value_diffs.append(abs(v_new - v_old) / abs(v_old))
                print(f"  {dtype} arch {a}: old {t_old:.2f} s, new {t_new:.2f} s CPU, x{t_old / t_new:.2f} (wall "
                      f"{w_old:.2f} / {w_new:.2f} s, x{w_old / w_new:.2f}); "
                      f"values {v_old:.15g} / {v_new:.15g}", flush=True)
            jac_diffs.append(jacobian_difference(net, batch.inputs, seed=0))
        old, new = statistics.median(times["old"]), statistics.median(times["new"])
        print(f"{dtype}: old {old:.2f} s, new {new:.2f} s CPU per arch (medians): x{old / new:.2f} "
              f"(median of the pairs' ratios x{statistics.median(ratios):.2f}, range "
              f"x{min(ratios):.2f}..x{max(ratios):.2f}); max relative difference: value {max(value_diffs):.1e}, "
              f"Jacobian {max(jac_diffs):.1e}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
