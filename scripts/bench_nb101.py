#!/usr/bin/env python
"""NAS-Bench-101 against NAS-Bench-Suite-Zero's 500-arch sample: parameter and FLOP counts, correlations, RoBoT.

1. Parameters: raynas's NB101 network of each key's cell, in the key's vertex order (NASLib's), against the
   file's ``params`` column, and the canonical order's (the benchmark's representative) beside it.
2. FLOPs: raynas ``flops`` (conv/linear MACs) against NASLib's ``flops``, with the offset NASLib's counter adds
   (3 per BN-ReLU output element, k*k per max-pool output element) recomputed per arch.
3. Spearman rho with ``val_accuracy`` of raynas's data-free metrics (params, flops, synflow: computed here, on
   the canonical network, one real CIFAR-size random batch, seed 0) beside NASLib's own values in the file, on
   the 500 rows and on the 292 distinct cells (rows of one cell averaged).
0. (``--hashes``) the benchmark's MD5 hash of all 423,624 enumerated cells: all distinct (a few minutes).
5. (``--nb301``) DARTS cross-check: NASLib's NB301 network's parameter count on all 725 genotypes of
   ``nbsz/nb301_cifar10.parquet`` = raynas's darts_cifar at C=32, 8 cells, minus the cell ops' BN affine
   parameters (NASLib's cell ops use non-affine BN; tests/spaces/test_nb301_params.py checks every 12th row).
4. RoBoT (and random search) on the 292-cell pool, scores = NASLib's six RoBoT proxies from the file, oracle =
   the sample's table (query = final = ``val_accuracy``, no cost recorded: the budget is a query count).

    python scripts/bench_nb101.py --json /tmp/nb101.json --cache /tmp/nb101.jsonl   # ~15 min on 2 free cores
    python scripts/bench_nb101.py --skip-metrics                  # steps 1, 2 and 4 only
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from raynas.cli.argtypes import positive_int as _positive, seed_list as _seeds  # noqa: E402

#: NASLib's column names of the RoBoT proxies (jacov = raynas jacob_cov)
NASLIB_ROBOT = ("grad_norm", "snip", "grasp", "fisher", "synflow", "jacov")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--source", type=Path, default=None, help="nbsz/nb101_cifar10.parquet (default: $RAYNAS_DATA)")
    ap.add_argument("--nb301", action="store_true", help="only step 5 (the NB301 parameter cross-check)")
    ap.add_argument("--hashes", action="store_true",
                    help="only step 0: the benchmark's hash of every one of the 423,624 enumerated cells, all distinct")
    ap.add_argument("--skip-metrics", action="store_true", help="skip step 3 (synflow on 292 full-size nets)")
    ap.add_argument("--flops-rows", type=int, default=None, help="rows checked in step 2 (default 100: a forward "
                    "pass of a full-size network each)")
    ap.add_argument("--max-cells", type=int, default=None, help="score at most this many cells in step 3 (a "
                    "fixed uniform sample; with --cache, counting those already cached)")
    ap.add_argument("--skip-search", action="store_true", help="skip step 4")
    ap.add_argument("--budget", type=_positive, default=20, help="distinct queries per search")
    ap.add_argument("--seeds", type=_seeds, default=_seeds("0-9"))
    ap.add_argument("--json", type=Path, default=None, help="also write every number here")
    ap.add_argument("--cache", type=Path, default=None,
                    help="JSON-lines file of per-cell metric values: appended as computed, reused when rerun")
    return ap


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr

    ok = np.isfinite(a) & np.isfinite(b)
    return float(spearmanr(a[ok], b[ok]).statistic)


def naslib_flops_offset(net: Any, x: Any) -> float:
    """What NASLib's FLOP counter adds to raynas's MACs on ``net``: 3 per element out of each BN (BN 2 + the
    ReLU after it 1) and k*k per element out of each k x k max-pool (additions of vertex inputs: 0)."""
    import torch
    import torch.nn as nn

    total = [0]

    def hook(m: nn.Module, _i: Any, o: torch.Tensor) -> None:
        if isinstance(m, nn.BatchNorm2d):
            total[0] += 3 * o.numel()
        elif isinstance(m, nn.MaxPool2d):
            total[0] += m.kernel_size ** 2 * o.numel() if isinstance(m.kernel_size, int) else 0

    hs = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, (nn.BatchNorm2d, nn.MaxPool2d))]
    try:
        with torch.no_grad():
            net.eval()(x)
    finally:
        for h in hs:
            h.remove()
    return float(total[0])


def hash_check() -> int:
    """The enumeration's classes are isomorphism classes (canonical form); the benchmark's hash is invariant under
    isomorphism, so 423,624 distinct hashes mean the two partitions agree (the benchmark's count, by its hash)."""
    from raynas.spaces import create_space

    space = create_space("nb101")
    t0 = time.time()
    hashes = {space.index_to_arch(i).module_hash() for i in range(space.size)}
    print(f"NB101: {len(hashes):,} distinct benchmark hashes over the {space.size:,} enumerated cells "
          f"({time.time() - t0:.0f} s)")
    return 0 if len(hashes) == space.size else 1


def nb301_check() -> int:
    import ast

    import pyarrow.parquet as pq
    import torch
    import torch.nn as nn

    from raynas.spaces import create_space
    from raynas.spaces.benchmarks import data_root
    from raynas.spaces.darts.genotypes import DartsGenotype

    ops = ("max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3",
           "dil_conv_5x5")  # NASLib's compact op codes
    t = pq.read_table(data_root() / "nbsz" / "nb301_cifar10.parquet", columns=["naslib_key", "params"]).to_pydict()
    space = create_space("darts_cifar")
    equal = 0
    for key, want in zip(t["naslib_key"], t["params"]):
        normal, reduce = ast.literal_eval(key)
        g = DartsGenotype.from_pairs([(ops[o], i) for i, o in normal], [(ops[o], i) for i, o in reduce])
        with torch.device("meta"):
            net = space.to_module(g, 10, C=32, layers=8)
        total = sum(p.numel() for p in net.parameters())
        bn = sum(p.numel() for c in net.cells for m in c.ops.modules() if isinstance(m, nn.BatchNorm2d)
                 for p in m.parameters())
        equal += int(total - bn == round(want * 1e6))
    print(f"NB301: darts_cifar C=32, 8 cells, minus cell-op BN affine parameters = NASLib params on "
          f"{equal}/{len(t['params'])} genotypes")
    return 0 if equal == len(t["params"]) else 1


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    import pyarrow.parquet as pq
    import torch

    from raynas.data.batch import Batch
    from raynas.metrics import get_metric
    from raynas.metrics.engine import compute_metrics
    from raynas.search import BenchmarkTableOracle, CandidatePool, RoBoT, random_search
    from raynas.spaces import create_space
    from raynas.spaces.nb101.benchmark import NB101_NBSZ, decode_naslib_key, indices_of, nbsz_sample_table, \
        nbsz_source_path
    from raynas.spaces.nb101.model import param_count

    if args.nb301:
        return nb301_check()
    if args.hashes:
        return hash_check()
    src = args.source or nbsz_source_path()
    t = pq.read_table(src).to_pydict()
    space = create_space("nb101")
    specs = [decode_naslib_key(k) for k in t["naslib_key"]]
    idx = indices_of(specs)
    uniq = np.unique(idx)
    out: dict[str, Any] = {"rows": len(specs), "cells": int(len(uniq))}
    print(f"{src}: {len(specs)} rows, {len(uniq)} distinct cells")

    # 1. parameters (a few nets built for real, every one counted from the channel plan)
    given = np.array([param_count(s, 10) for s in specs])
    built = [sum(p.numel() for p in space.module_as_given(s.matrix, s.ops, 10).parameters()) for s in specs[:20]]
    canon = np.array([param_count(space.index_to_arch(int(i)), 10) for i in idx])
    col = np.array(t["params"])
    exact = int(np.sum(np.round(given / 1e6, 6) == np.round(col, 6)))
    out["params"] = {"exact_key_order": exact, "built_equals_counted": bool(np.array_equal(built, given[:20])),
                     "canonical_differs": int(np.sum(canon != given)),
                     "canonical_max_rel_diff": float(np.max(np.abs(canon - given) / given))}
    print(f"params: key order {exact}/{len(specs)} equal to the file's column; canonical order differs on "
          f"{out['params']['canonical_differs']} rows (max {100 * out['params']['canonical_max_rel_diff']:.2f} %)")

    # 2. flops
    n_fl = args.flops_rows if args.flops_rows is not None else 100
    batch = Batch(torch.zeros(1, 3, 32, 32), torch.zeros(1, dtype=torch.long), 10)
    flops = get_metric("flops").fn
    dev = []
    for s, f_naslib in zip(specs[:n_fl], t["flops"][:n_fl]):
        net = space.module_as_given(s.matrix, s.ops, 10)
        mine = flops(net, batch)
        dev.append(abs((mine + naslib_flops_offset(net, batch.inputs)) / 1e6 - f_naslib))
    out["flops"] = {"rows": n_fl, "max_abs_dev_mflops": float(max(dev))}
    print(f"flops: raynas MACs + NASLib's BN/ReLU/max-pool offset vs the file on {n_fl} rows: max |dev| "
          f"{max(dev):.2e} MFLOPs")

    # 3. correlations
    val = np.array(t["val_accuracy"])
    if not args.skip_metrics:
        g = torch.Generator().manual_seed(0)
        b = Batch(torch.randn(64, 3, 32, 32, generator=g), torch.randint(0, 10, (64,), generator=g), 10)
        mine: dict[str, dict[int, float]] = {m: {} for m in ("params", "flops", "synflow")}
        if args.cache is not None and args.cache.exists():
            for line in args.cache.read_text().splitlines():
                row = json.loads(line)
                for m in mine:
                    mine[m][int(row["arch_index"])] = float(row[m])
        t0 = time.time()
        # a fixed random order: a run stopped early (--max-cells, or killed: the cache keeps what was done) has
        # scored a uniform sample of the cells, not the smallest ones
        order = np.random.default_rng(0).permutation(uniq)
        todo = [int(i) for i in order if int(i) not in mine["synflow"]]
        if args.max_cells is not None:
            todo = todo[:max(0, args.max_cells - len(mine["synflow"]))]
        for k, i in enumerate(todo):
            arch = space.index_to_arch(int(i))
            for r in compute_metrics(lambda arch=arch: space.to_module(arch, 10), b, list(mine), seed=0):
                mine[r.metric][int(i)] = float("nan") if r.value is None else float(r.value)
            if args.cache is not None:
                with args.cache.open("a") as f:
                    f.write(json.dumps({"arch_index": int(i), **{m: mine[m][int(i)] for m in mine}}) + "\n")
            if k % 25 == 0:
                logging.info("metrics %d/%d (%.0f s)", k, len(todo), time.time() - t0)
        # the cells of the longest fully scored prefix of the random order (cached cells outside it are left
        # out, so the subset stays uniform)
        scored = [int(i) in mine["synflow"] for i in order]
        p = scored.index(False) if False in scored else len(order)
        done = np.isin(uniq, order[:p])
        if not done.all():  # correlations over the scored cells and their rows only
            print(f"metrics: {int(done.sum())} of {len(uniq)} cells used (a uniform random subset)")
            keep = np.isin(idx, uniq[done])
            idx, val, uniq = idx[keep], val[keep], uniq[done]
            t = {k: [v for v, ok in zip(vals, keep) if ok] for k, vals in t.items()}
        cell_val = {int(u): float(val[idx == u].mean()) for u in uniq}
        rho = {}
        for m in mine:
            rows = np.array([mine[m][int(i)] for i in idx])
            cells = np.array([mine[m][int(u)] for u in uniq])
            naslib_cells = np.array([np.mean(np.array(t[m])[idx == u]) for u in uniq])
            rho[m] = {"raynas_500": spearman(rows, val), "naslib_500": spearman(np.array(t[m]), val),
                      "raynas_292": spearman(cells, np.array(list(cell_val.values()))),
                      "naslib_292": spearman(naslib_cells, np.array(list(cell_val.values())))}
        out["spearman"] = rho
        print("\nSpearman rho with val_accuracy   raynas (500 rows)  NASLib (500 rows)  raynas (292 cells)  NASLib (292)")
        for m, r in rho.items():
            print(f"  {m:30s} {r['raynas_500']:17.3f} {r['naslib_500']:18.3f} {r['raynas_292']:19.3f} "
                  f"{r['naslib_292']:13.3f}")

    # 4. RoBoT on the pool, oracle = the sample's table
    if args.skip_search:
        if args.json is not None:
            args.json.write_text(json.dumps(out, indent=1))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        path = nbsz_sample_table(Path(tmp) / "nb101_nbsz_sample.parquet", src)
        table = pq.read_table(path)
        oracle = BenchmarkTableOracle(NB101_NBSZ, path)
        pool = CandidatePool.from_table(table, list(NASLIB_ROBOT))
        best = oracle.best_final_among(pool.arch_index)
        res: dict[str, list[float]] = {"RoBoT": [], "random": []}
        for seed in args.seeds:
            res["RoBoT"].append(RoBoT(pool, oracle, budget=args.budget, seed=seed).run()["final"])
            res["random"].append(random_search(pool, oracle, args.budget, seed=seed)["final"])
        # the zero-shot rules over the same six proxies (no query; deterministic, so one value each)
        from raynas.metrics import get_metric
        from raynas.search.zero_shot import rank_pool

        hib = [get_metric("jacob_cov" if c == "jacov" else c).higher_is_better for c in NASLIB_ROBOT]
        for rule in ("rank_sum", "az"):
            _, order = rank_pool(pool, rule, hib)
            res[f"zero-shot {rule}"] = [oracle.final(int(pool.arch_index[order[0]]))]
    out["search"] = {"pool": len(pool), "pool_best": best, "budget": args.budget, "seeds": list(args.seeds),
                     **{k: {"mean": float(np.mean(v)), "std": float(np.std(v)), "values": v} for k, v in res.items()}}
    print(f"\nsearch on the {len(pool)}-cell pool (best val_accuracy {best:.3f}), T={args.budget}, "
          f"seeds {args.seeds[0]}..{args.seeds[-1]}, RoBoT on NASLib's {','.join(NASLIB_ROBOT)}:")
    for k, v in res.items():
        print(f"  {k:8s} {np.mean(v):.3f} ± {np.std(v):.3f}  (regret {best - np.mean(v):.3f})")
    if args.json is not None:
        args.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
