#!/usr/bin/env python
"""RoBoT's Table 3 shape on TransNAS-Bench-101: the query searches on NAS-Bench-Suite-Zero's 14 TNB101 samples.

Pools: the published tables ``tnb101:<micro|macro>:<task>`` (:mod:`raynas.spaces.tnb101.published`; 711 micro
archs per task, 662 or 725 macro), read with :func:`raynas.store.read_published`. Oracle: each table's own sample
benchmark ``tnb101_<space>_<task>`` (query = final = the task's validation metric at its best epoch, as the
authors' ``search_tnb101.py``, which sets ``test_accs = val_accs``). Every TNB101 metric is higher-is-better as
stored (room_layout's is a negated loss), so "best" is the largest value everywhere.

Proxies (``--metrics``): RoBoT's TNB101 set less synflow, i.e. ``grad_norm, snip, grasp, fisher, jacob_cov``
(NASLib's ``jacov``). These files hold no synflow; the authors' script itself drops synflow on segmentsemantic,
normal and autoencoder and runs these five there, so nothing replaces it. A failed proxy (NASLib's -1e8:
``jacov`` of the 20 micro cells cut off from their input) is null and normalises to 0, as in every raynas pool.

Methods (``--methods``): ``robot`` (raynas RoBoT with ``raynas search robot``'s defaults, the
``RobotSearchConfig`` / ``RoBoTConfig`` setting of ``bench_search_robustness.library_robot_setting``),
``authors`` (the authors' bayes_opt loop, :class:`raynas.search.robot_reference.RoBoTReference`; skipped without
``bayesian-optimization``), ``linucb`` (:class:`raynas.search.linucb.LinUCB` at its fixed defaults ridge 10,
noise 1, beta 1, which this script cannot change; deterministic, so one run stands for every seed) and
``random`` (:class:`raynas.search.random_baseline.RandomSearch`). Seeds ``--seeds`` (default 10-19, the
authors' ``seed_start``/``seed_end``), budgets ``--budgets`` (T distinct queries, default 20).

Per pool, budget and method: hit rate (the answer is the pool's best arch by the oracle's value; query = final,
so this is also the attainable answer), mean regret against the pool's best (in the task's metric units), the
answer's mean rank in the pool (1 = best; ties share a rank) and the mean ± std of the answer's value (Table 3's
cell). Per space, budget and method: mean and min hit over the 7 tasks, mean rank, and the mean regret as a
percentage of each pool's range (best - worst: the tasks' units differ, so raw regrets do not average).

    python scripts/bench_tnb101.py --json /tmp/tnb101.json                  # everything, T = 20, seeds 10-19
    python scripts/bench_tnb101.py --methods linucb,random --budgets 10,20,30   # the fast part alone
    python scripts/bench_tnb101.py --merge /tmp/tnb101.json /tmp/more.json     # tables of saved runs
    python scripts/bench_tnb101.py --rho       # each proxy's Spearman rho with the target, per pool
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

import bench_search_robustness as robust  # noqa: E402
from raynas.cli.argtypes import seed_list  # noqa: E402

log = logging.getLogger("bench_tnb101")

#: RoBoT's TNB101 proxies (its search_tnb101.py) without synflow, which these tables lack
METRICS = ("grad_norm", "snip", "grasp", "fisher", "jacob_cov")
METHODS = ("robot", "authors", "linucb", "random")
SPACES = ("micro", "macro")


@dataclass
class Pool:
    """One TNB101 sample: its arrays (``arch_index`` + the proxies), its oracle and the oracle's values."""

    space: str
    task: str
    table: dict[str, np.ndarray]
    oracle: Any
    values: np.ndarray  # the oracle's final value of every arch, in table order

    @property
    def name(self) -> str:
        return f"{self.space}/{self.task}"

    def __len__(self) -> int:
        return len(self.values)


def load_pool(space: str, task: str, metrics: Sequence[str]) -> Pool | None:
    """The published table ``tnb101:<space>:<task>`` over ``metrics`` with its sample benchmark as oracle; None
    (logged) when the file is absent."""
    from raynas.errors import DataError
    from raynas.oracles import create_oracle
    from raynas.spaces.tnb101.published import table_spec
    from raynas.store import read_published

    try:
        wide, cfg = read_published(table_spec(space, task))
    except DataError as e:
        log.warning("skipped %s/%s: %s", space, task, e)
        return None
    oracle = create_oracle(cfg["benchmark"])
    table = {"arch_index": wide.column("arch_index").to_numpy().astype(np.int64)}
    for m in metrics:
        table[m] = wide.column(m).to_numpy(zero_copy_only=False).astype(np.float64)
    values = np.array([oracle.final(int(a)) for a in table["arch_index"]], dtype=np.float64)
    return Pool(space, task, table, oracle, values)


def run_method(method: str, pool: Pool, metrics: Sequence[str], budget: int, seeds: Sequence[int],
               default: "robust.RobotSetting") -> list[dict[str, Any]]:
    """``method``'s runs on ``pool`` (one per seed; LinUCB once, as seed None), each with ``arch_index``, ``wall``
    and ``seed``."""
    return [{**r, "seed": s} for r, s in zip(_runs(method, pool, metrics, budget, seeds, default),
                                             [None] if method == "linucb" else seeds)]


def _runs(method: str, pool: Pool, metrics: Sequence[str], budget: int, seeds: Sequence[int],
          default: "robust.RobotSetting") -> list[dict[str, Any]]:
    from raynas.search import CandidatePool, RoBoT
    from raynas.search.linucb import LinUCB
    from raynas.search.random_baseline import RandomSearch

    if method == "robot":
        cp = CandidatePool.from_table(pool.table, list(metrics), default.transform)
        return [robust.timed_run(RoBoT(cp, pool.oracle, budget=budget, seed=s, n_init=default.n_init,
                                       acquisition=default.acquisition,  # type: ignore[arg-type]
                                       kernel=default.kernel, tie_break=default.tie_break))  # type: ignore[arg-type]
                for s in seeds]
    if method == "authors":
        return [robust.authors_robot(pool.table, metrics, pool.oracle, budget, s) for s in seeds]
    cp = CandidatePool.from_table(pool.table, list(metrics), "none")
    if method == "linucb":  # deterministic: a miss is a miss on every seed
        return [robust.timed_run(LinUCB(cp, pool.oracle, budget=budget))]
    if method == "random":
        return [robust.timed_run(RandomSearch(cp, pool.oracle, budget=budget, seed=s)) for s in seeds]
    raise ValueError(f"unknown method {method!r}")


def summarize(pool: Pool, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Hit rate, regret, rank and value of the runs' answers on ``pool`` (module docstring); ``best`` and
    ``worst`` are the pool's extreme values (the aggregate's normalisation)."""
    best, worst = float(np.max(pool.values)), float(np.min(pool.values))
    _, _, pool_best = robust.attainable(pool.table["arch_index"], pool.oracle)  # query = final: the same best
    finals = np.array([pool.oracle.final(int(r["arch_index"])) for r in runs], dtype=np.float64)
    # hit (>= best up to 1e-9), regret, mean / std, wall; the finals read from the oracle, not the runs
    base = robust.summarize("", [{**r, "final": f} for r, f in zip(runs, finals)], pool_best)
    ranks = [1 + int(np.sum(pool.values > f)) for f in finals]
    return {"hit": base["hit"], "regret": base["regret"], "final_mean": base["final_mean"],
            "final_std": base["final_std"], "rank": float(np.mean(ranks)), "wall": base["wall"],
            "runs": len(runs), "best": best, "worst": worst,
            "regret_pct": float(100.0 * np.mean(best - finals) / (best - worst)) if best > worst else 0.0}


def _fmt(v: float, scale: float | None = None) -> str:
    """2 decimals for percentages (``scale``, the pool's best, above 10 in size), else 4 (SSIM 0.3-0.8, negated
    losses near -0.6); None: four significant digits."""
    if scale is None:
        return f"{v:.4g}"
    return f"{v:.2f}" if abs(scale) > 10 else f"{v:.4f}"


def per_pool_table(cells: list[dict[str, Any]]) -> str:
    lines = ["| space | task | metric | archs | best | T | method | runs | hit | regret | rank | answer (mean ± std) "
             "| wall (s) |", "|---|---|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|"]
    for c in cells:
        lines.append(f"| {c['space']} | {c['task']} | {c['metric']} | {c['size']} | {_fmt(c['best'])} | {c['budget']} "
                     f"| {c['method']} | {c['runs']} | {c['hit']:.2f} | {_fmt(c['regret'])} | {c['rank']:.1f} | "
                     f"{_fmt(c['final_mean'])} ± {_fmt(c['final_std'])} | {c['wall']:.2f} |")
    return "\n".join(lines)


def table3(cells: list[dict[str, Any]]) -> str:
    """RoBoT's Table 3 layout: per space and T, one row per method, one column per task; a cell is the answer's
    mean ± std, then (hit rate, mean rank); a header row gives each pool's best (the oracle's maximum)."""
    out = []
    for space in SPACES:
        for budget in sorted({c["budget"] for c in cells if c["space"] == space}):
            cs = [c for c in cells if c["space"] == space and c["budget"] == budget]
            tasks = [t for t in dict.fromkeys(c["task"] for c in cs)]
            best = {c["task"]: c["best"] for c in cs}
            out += [f"**{space}, T = {budget}**", "",
                    "| method | " + " | ".join(f"{t} ({cs[[c['task'] for c in cs].index(t)]['metric']})"
                                               for t in tasks) + " |",
                    "|---|" + "---:|" * len(tasks),
                    "| pool best | " + " | ".join(_fmt(best[t], best[t]) for t in tasks) + " |"]
            for m in sorted({c["method"] for c in cs}, key=_method_order):
                row = {c["task"]: c for c in cs if c["method"] == m}
                out.append(f"| {m} | " + " | ".join(
                    f"{_fmt(row[t]['final_mean'], best[t])} ± {_fmt(row[t]['final_std'], best[t])} "
                    f"({row[t]['hit']:.1f}, "
                    f"{row[t]['rank']:.0f})" if t in row else "-" for t in tasks) + " |")
            out.append("")
    return "\n".join(out)


def aggregate_table(cells: list[dict[str, Any]]) -> str:
    lines = ["| space | T | method | pools | mean hit | min hit | pools at 1.00 | mean rank "
             "| mean regret (% of range) |",
             "|---|---:|---|---:|---:|---:|---:|---:|---:|"]
    keys = sorted({(c["space"], c["budget"], c["method"]) for c in cells},
                  key=lambda k: (SPACES.index(k[0]), k[1], _method_order(k[2])))
    for key in keys:
        cs = [c for c in cells if (c["space"], c["budget"], c["method"]) == key]
        hits = [c["hit"] for c in cs]
        lines.append(f"| {key[0]} | {key[1]} | {key[2]} | {len(cs)} | {np.mean(hits):.2f} | {min(hits):.2f} | "
                     f"{sum(h >= 1.0 for h in hits)} | {np.mean([c['rank'] for c in cs]):.1f} | "
                     f"{np.mean([c['regret_pct'] for c in cs]):.2f} |")
    return "\n".join(lines)


def rho_table(spaces: Sequence[str], tasks: Sequence[str], metrics: Sequence[str]) -> str:
    """Spearman rho of each proxy with the oracle's value per pool (archs where the proxy has a value): how much
    the searches' features say about the target, to read the hit rates by."""
    from scipy.stats import spearmanr

    lines = ["| space | task | " + " | ".join(metrics) + " |", "|---|---|" + "---:|" * len(metrics)]
    for space in spaces:
        for task in tasks:
            pool = load_pool(space, task, metrics)
            if pool is None:
                continue
            cells = []
            for m in metrics:
                ok = np.isfinite(pool.table[m])
                cells.append(f"{spearmanr(pool.table[m][ok], pool.values[ok])[0]:.2f}")
            lines.append(f"| {space} | {task} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def method_label(method: str, metrics: Sequence[str]) -> str:
    """``method``, with the proxies added to or left out of :data:`METRICS` (``robot +naswot_code``) when a
    run used others, so runs over different proxies stay apart in the tables."""
    extra = [f"+{m}" for m in metrics if m not in METRICS] + [f"-{m}" for m in METRICS if m not in metrics]
    return " ".join([method, *extra])


def _method_order(label: str) -> tuple[int, str]:
    base = label.split()[0]
    return (METHODS.index(base) if base in METHODS else len(METHODS), label)


def merge(paths: Sequence[Path]) -> list[dict[str, Any]]:
    """The cells of several ``--json`` files (e.g. one pass per seed), recomputed from their runs on the tables
    (the same proxies as the files' ``--metrics`` are not needed: a cell reads only the answers). The runs of one
    (space, task, T, method) are joined over the files, one per seed (a later file's run of a seed wins)."""
    from raynas.spaces.tnb101 import TASKS

    runs: dict[tuple[str, str, int, str], dict[Any, dict[str, Any]]] = {}  # by method label (proxies noted)
    for p in paths:
        for entry in json.loads(Path(p).read_text())["runs"]:
            label = method_label(entry["method"], entry.get("metrics", METRICS))
            key = (entry["space"], entry["task"], int(entry["budget"]), label)
            for r in entry["runs"]:
                runs.setdefault(key, {})[r.get("seed")] = r
    cells, pools = [], {}
    for (space, task, budget, method), by_seed in runs.items():
        pool = pools.get((space, task)) or pools.setdefault((space, task), load_pool(space, task, ()))
        if pool is None:
            continue
        cells.append({"space": space, "task": task, "metric": TASKS[task].val_metric_name, "size": len(pool),
                      "budget": budget, "method": method, **summarize(pool, list(by_seed.values()))})
    return sorted(cells, key=lambda c: (SPACES.index(c["space"]), list(TASKS).index(c["task"]), c["budget"],
                                        _method_order(c["method"])))


def main(argv: Sequence[str] | None = None) -> int:
    from raynas.spaces.tnb101 import TASKS

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budgets", default="20", type=lambda s: [int(x) for x in s.split(",")])
    ap.add_argument("--seeds", default="10-19", type=seed_list, help="e.g. 10-19 (inclusive) or 1,2,3")
    ap.add_argument("--methods", default=",".join(METHODS), type=lambda s: [x.strip() for x in s.split(",")])
    ap.add_argument("--spaces", default=",".join(SPACES), type=lambda s: [x.strip() for x in s.split(",")])
    ap.add_argument("--tasks", default=",".join(TASKS), type=lambda s: [x.strip() for x in s.split(",")])
    ap.add_argument("--metrics", default=",".join(METRICS), type=lambda s: tuple(x.strip() for x in s.split(",")),
                    help="proxies the searches combine (default RoBoT's TNB101 set less synflow)")
    ap.add_argument("--json", type=Path, default=None, help="write every cell and run here (after every pool)")
    ap.add_argument("--merge", type=Path, nargs="+", default=None, help="print the tables of earlier --json files")
    ap.add_argument("--rho", action="store_true", help="print each proxy's Spearman rho with the target per pool "
                    "and exit (no search)")
    args = ap.parse_args(argv)
    if args.rho:
        print(rho_table(args.spaces, args.tasks, args.metrics))
        return 0
    if args.merge:
        cells = merge(args.merge)
        print(per_pool_table(cells) + "\n\n" + table3(cells) + "\n" + aggregate_table(cells))
        return 0
    bad = (sorted(set(args.methods) - set(METHODS)) + sorted(set(args.spaces) - set(SPACES))
           + sorted(set(args.tasks) - set(TASKS)))
    if bad or any(t < 1 for t in args.budgets):
        ap.error(f"unknown {bad} or a budget < 1; methods {METHODS}, spaces {SPACES}, tasks {tuple(TASKS)}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("raynas").setLevel(logging.ERROR)  # budget-capped warnings etc. would drown the log
    methods = list(args.methods)
    if "authors" in methods and not robust.have_bayes_opt():
        print("bayes_opt is not installed (pip install bayesian-optimization): the authors' loop is skipped")
        methods.remove("authors")
    default = robust.library_robot_setting()
    print(f"TNB101 samples; budgets {args.budgets}; seeds {args.seeds[0]}..{args.seeds[-1]} ({len(args.seeds)}); "
          f"proxies {', '.join(args.metrics)}; RoBoT default {default.name}; LinUCB ridge 10, noise 1, beta 1")
    cells: list[dict[str, Any]] = []
    runs_out: list[dict[str, Any]] = []
    t_all = time.perf_counter()
    for space in args.spaces:
        for task in args.tasks:
            pool = load_pool(space, task, args.metrics)
            if pool is None:
                continue
            for budget in args.budgets:
                for m in methods:
                    t = time.perf_counter()
                    runs = run_method(m, pool, args.metrics, budget, args.seeds, default)
                    s = summarize(pool, runs)
                    cells.append({"space": space, "task": task, "metric": TASKS[task].val_metric_name,
                                  "size": len(pool), "budget": budget, "method": method_label(m, args.metrics),
                                  **s})
                    runs_out.append({"space": space, "task": task, "budget": budget, "method": m,
                                     "metrics": list(args.metrics),
                                     "runs": [{"arch_index": int(r["arch_index"]), "wall": r.get("wall"),
                                               "seed": r["seed"]} for r in runs]})
                    log.info("%s T=%d %s: hit %.2f regret %.4g rank %.1f (%.0f s)", pool.name, budget, m, s["hit"],
                             s["regret"], s["rank"], time.perf_counter() - t)
            if args.json is not None:
                args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                                 "cells": cells, "runs": runs_out}, indent=1))
    print("\n" + per_pool_table(cells) + "\n\n" + table3(cells) + "\n" + aggregate_table(cells))
    print(f"\ntotal {time.perf_counter() - t_all:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
