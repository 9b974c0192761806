#!/usr/bin/env python
"""Pre-registered evaluation of LinUCB (issue 33): its fixed defaults against RoBoT's default, the authors' RoBoT
loop and random search, at several budgets, on pool families it was not designed on.

LinUCB's settings (ridge 10, noise 1, beta 1) were fixed before this script ran and are not tuned here: the script
has no option to change them. Per pool family, budget and method it prints the hit rate (the answer is the pool's
attainable arch: its top by query value), the mean regret against the attainable answer (in the oracle's final
units), and the answer's mean rank in the pool by final value; then one aggregate line per family and method.

Families (``--families``, default all that have data):

* ``nb201``: the 725-arch NB-Suite-Zero NB201 pool and the 12 sub-pools of ``bench_search_robustness.py`` (seeds
  0-5 of 200-725 archs, seeds 6-11 of 100-300: the pools LinUCB's prototype was seen on), oracle: the NB201 table
  (12-epoch valid acc, final 200-epoch test);
* ``nb201-small``: ``--small-pools`` new sub-pools of 50-100 archs (seeds 1000..), same oracle;
* ``nb101`` / ``nb301``: NB-Suite-Zero's NB101 (500) and NB301 (725) tables, the oracle their ``val_accuracy``
  column (query = final: the tables hold no other);
* ``ablation``: the full NB201 pool with each proxy removed in turn (the blind-spot test).

Proxies: RoBoT's six (grad_norm, snip, grasp, fisher, synflow, jacob_cov); ``--synflow raw`` reads synflow as a
raynas score run stores it (the files hold NASLib's log of it). Methods: ``linucb`` (deterministic: one
run per pool), ``linucb-guard`` (the same with the size guard, ``raynas search linucb --guard size``: ``params`` added
to the features), ``robot`` (raynas RoBoT default), ``authors`` (the bayes_opt loop of
``bench_search_robustness.py``; skipped without ``bayesian-optimization``), ``random``; ``--methods`` selects (RoBoT
and the authors' loop cost ~10 s per search on a 2-core CPU; LinUCB and random milliseconds).

    python scripts/bench_linucb.py --budgets 10,15,20,30 --seeds 10-19 --json /tmp/linucb.json
    python scripts/bench_linucb.py --methods linucb,random --budgets 10,15,20,30      # the fast part alone
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

import bench_search_robustness as robust  # noqa: E402
from raynas.cli.argtypes import seed_list  # noqa: E402

METRICS = robust.ROBOT_METRICS
METHODS = ("linucb", "linucb-guard", "robot", "authors", "random")
#: the guard of ``raynas search linucb --guard size``: the model-size proxy added to the features
GUARD_METRIC = "params"
FAMILIES = ("nb201", "nb201-small", "nb101", "nb301", "ablation")


@dataclass
class Pool:
    family: str
    name: str
    table: dict[str, np.ndarray]
    metrics: tuple[str, ...]
    oracle: Any


class ColumnOracle:
    """Query = final = a table column (NB-Suite-Zero's ``val_accuracy`` for NB101/NB301, which hold no other)."""

    def __init__(self, arch_index: np.ndarray, values: np.ndarray):
        self.values = {int(a): float(v) for a, v in zip(arch_index, values)}

    def query(self, arch_index: int) -> Any:
        from raynas.oracles.base import QueryResult

        return QueryResult(self.values[int(arch_index)], 0.0)

    def final(self, arch_index: int) -> float:
        return self.values[int(arch_index)]

    def best_final(self) -> float:
        return max(self.values.values())

    def __len__(self) -> int:
        return len(self.values)


def read_nbsz(space: str, synflow: str = "log") -> dict[str, np.ndarray] | None:
    """NB-Suite-Zero's ``space`` table: RoBoT's six proxies (NASLib's ``jacov`` as ``jacob_cov``), ``params`` and
    ``val_accuracy``; rows get their position as ``arch_index`` for NB101/NB301 (keys are NASLib encodings).
    ``synflow``: ``"log"`` as the file stores it (NASLib logs it), ``"raw"`` as a raynas score run (and
    ``--scores nbsz:...``) holds it: ``exp`` of the file's value."""
    import pyarrow.parquet as pq

    from raynas.spaces.benchmarks import data_root

    src = data_root() / "nbsz" / f"{space}_cifar10.parquet"
    if not src.exists():
        return None
    t = pq.read_table(src)
    ids = (t.column("arch_index").to_numpy().astype(np.int64) if "arch_index" in t.column_names
           else np.arange(t.num_rows, dtype=np.int64))
    out = {"arch_index": ids, "val_accuracy": t.column("val_accuracy").to_numpy().astype(np.float64)}
    for m in (*METRICS, GUARD_METRIC):
        out[m] = t.column(robust.NASLIB_NAMES.get(m, m)).to_numpy(zero_copy_only=False).astype(np.float64)
    if synflow == "raw":
        with np.errstate(over="ignore"):
            out["synflow"] = np.where(out["synflow"] <= -1e7, np.nan, np.exp(out["synflow"]))  # -1e8: a failure
    return out


def build_pools(families: Sequence[str], subpools: int, small_pools: int, synflow: str = "log") -> list[Pool]:
    from raynas.oracles import create_oracle

    pools: list[Pool] = []
    nb201 = read_nbsz("nb201", synflow)
    if nb201 is not None and {"nb201", "nb201-small", "ablation"} & set(families):
        oracle = create_oracle("nb201")
        t = robust.in_oracle({k: v for k, v in nb201.items() if k != "val_accuracy"}, oracle)
        if "nb201" in families:
            pools.append(Pool("nb201", "nbsz", t, METRICS, oracle))
            # the robustness benchmark's 12 sub-pools: seeds 0-5 of 200-725 archs, seeds 6-11 of 100-300
            n_all = len(t["arch_index"])
            sizes = [*robust.subpool_sizes(6, 200, 725, n_all), *robust.subpool_sizes(6, 100, 300, n_all, 6)]
            for i, n in enumerate(sizes[:subpools]):
                pools.append(Pool("nb201", f"nbsz/sub{i}", robust.subpool(t, n, i), METRICS, oracle))
        if "nb201-small" in families:
            first = 1000  # seeds no earlier pass used: pools nobody looked at
            for i, n in enumerate(robust.subpool_sizes(small_pools, 50, 100, len(t["arch_index"]), first), first):
                pools.append(Pool("nb201-small", f"nbsz/small{i}", robust.subpool(t, n, i), METRICS, oracle))
        if "ablation" in families:
            for m in METRICS:
                pools.append(Pool("ablation", f"nbsz-{m}", t, tuple(x for x in METRICS if x != m), oracle))
    for space in ("nb101", "nb301"):
        table = read_nbsz(space, synflow) if space in families else None
        if table is not None:
            pools.append(Pool(space, f"nbsz-{space}", table, METRICS,
                              ColumnOracle(table["arch_index"], table["val_accuracy"])))
    return pools


def attainable(pool: Pool) -> tuple[int, float]:
    """``(top arch by query value, its final)``; ties: the smallest index."""
    ids = sorted(int(a) for a in pool.table["arch_index"])
    top = max(ids, key=lambda a: pool.oracle.query(a).value)
    return top, pool.oracle.final(top)


def rank_of(pool: Pool, arch: int) -> int:
    """1 + the number of pool archs with a strictly higher final value."""
    mine = pool.oracle.final(arch)
    return 1 + sum(pool.oracle.final(int(a)) > mine for a in pool.table["arch_index"])


def run_method(method: str, pool: Pool, budget: int, seeds: Sequence[int]) -> list[dict[str, Any]]:
    from raynas.search import CandidatePool, RoBoT, random_search
    from raynas.search.linucb import LinUCB

    cp = CandidatePool.from_table(pool.table, list(pool.metrics))
    runs: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    if method == "linucb":  # deterministic: one run stands for every seed
        r = LinUCB(cp, pool.oracle, budget=budget).run()
        runs = [{**r, "wall": time.perf_counter() - t0}]
    elif method == "linucb-guard":  # the size guard: params added to the features (raynas search linucb --guard size)
        guarded = CandidatePool.from_table(pool.table, [*pool.metrics, GUARD_METRIC])
        r = LinUCB(guarded, pool.oracle, budget=budget).run()
        runs = [{**r, "wall": time.perf_counter() - t0}]
    elif method == "robot":
        for s in seeds:
            t0 = time.perf_counter()
            runs.append({**RoBoT(cp, pool.oracle, budget=budget, seed=s).run(), "wall": time.perf_counter() - t0})
    elif method == "authors":
        for s in seeds:
            t0 = time.perf_counter()
            runs.append({**robust.authors_robot(pool.table, pool.metrics, pool.oracle, budget, s),
                         "wall": time.perf_counter() - t0})
    elif method == "random":
        runs = [random_search(cp, pool.oracle, budget, seed=s) for s in seeds]
    return runs


def summarize(pool: Pool, runs: list[dict[str, Any]]) -> dict[str, Any]:
    _top, target = attainable(pool)
    finals = np.array([pool.oracle.final(int(r["arch_index"])) for r in runs])
    return {"hit": float(np.mean(finals >= target - 1e-9)), "regret": float(np.mean(target - finals)),
            "rank": float(np.mean([rank_of(pool, int(r["arch_index"])) for r in runs])),
            "wall": float(np.mean([r.get("wall", 0.0) for r in runs])), "runs": len(runs)}


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--budgets", default="10,15,20,30", type=lambda s: [int(x) for x in s.split(",")])
    ap.add_argument("--seeds", default="10-19", type=seed_list)
    ap.add_argument("--methods", default=",".join(METHODS), type=lambda s: s.split(","))
    ap.add_argument("--families", default=",".join(FAMILIES), type=lambda s: s.split(","))
    ap.add_argument("--subpools", type=int, default=12, help="how many of the robustness benchmark's 12 NB201 "
                    "sub-pools (default all)")
    ap.add_argument("--small-pools", type=int, default=10, help="new NB201 sub-pools of 50-100 archs")
    ap.add_argument("--synflow", choices=("log", "raw"), default="log",
                    help="synflow as NB-Suite-Zero's files store it (log, the earlier tables) or as a raynas score "
                    "run and --scores nbsz:... hold it (raw: exp of the file's value)")
    ap.add_argument("--json", type=Path, default=None, help="write every cell here")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    bad = sorted(set(args.methods) - set(METHODS)) + sorted(set(args.families) - set(FAMILIES))
    if bad:
        ap.error(f"unknown method(s)/family(ies) {bad}; methods {METHODS}, families {FAMILIES}")
    methods = list(args.methods)
    if "authors" in methods and not robust.have_bayes_opt():
        print("bayes_opt is not installed (pip install bayesian-optimization): the authors' loop is skipped")
        methods.remove("authors")
    pools = build_pools(args.families, args.subpools, args.small_pools, args.synflow)
    print(f"{len(pools)} pools; synflow {args.synflow}; budgets {args.budgets}; seeds {args.seeds[0]}..{args.seeds[-1]}; "
          f"LinUCB defaults ridge 10, noise 1, beta 1 (fixed)")
    cells: list[dict[str, Any]] = []
    print("| family | pool | archs | T | method | hit | regret | rank | wall (s) |\n|---|---|---:|---:|---|---:|---:|---:|---:|")
    for pool in pools:
        for t in args.budgets:
            for m in methods:
                s = summarize(pool, run_method(m, pool, t, args.seeds))
                cells.append({"family": pool.family, "pool": pool.name, "size": len(pool.table["arch_index"]),
                              "budget": t, "method": m, **s})
                print(f"| {pool.family} | {pool.name} | {len(pool.table['arch_index'])} | {t} | {m} | "
                      f"{s['hit']:.2f} | {s['regret']:.3f} | {s['rank']:.1f} | {s['wall']:.2f} |", flush=True)
    print("\nPer family, budget and method (mean over pools; min hit over pools):")
    print("| family | T | method | pools | mean hit | min hit | mean regret | mean rank |\n"
          "|---|---:|---|---:|---:|---:|---:|---:|")
    keys: Callable[[dict[str, Any]], tuple[str, int, str]] = lambda c: (c["family"], c["budget"], c["method"])
    for key in sorted({keys(c) for c in cells}, key=lambda k: (FAMILIES.index(k[0]), k[1], METHODS.index(k[2]))):
        cs = [c for c in cells if keys(c) == key]
        print(f"| {key[0]} | {key[1]} | {key[2]} | {len(cs)} | {np.mean([c['hit'] for c in cs]):.2f} | "
              f"{min(c['hit'] for c in cs):.2f} | {np.mean([c['regret'] for c in cs]):.3f} | "
              f"{np.mean([c['rank'] for c in cs]):.1f} |")
    if args.json is not None:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "cells": cells}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
