#!/usr/bin/env python
"""Wall time of one BO step of RoBoT and HNAS for several budgets on the SAME pool, side by side.

A step is one ``ask`` (GP fit + acquisition optimisation + picking the arch) and its ``tell``. For each method and
budget T the script runs one search (q = 1, as the CLI does) and prints the steps, distinct queries, GP fits, why
it ended, the mean / max / last-10 wall time of a GP step (a step that fitted a GP; Sobol and greedy steps cost
next to nothing), the time per distinct query, and the mean / max GP step as a ratio to the first budget's,
measured in this one run. Issue 19's requirement: a step does not grow with the
budget or with the queries left, and a budget the pool cannot yield ends with a reason instead of spinning.

Pools: RoBoT searches the real CIFAR-10 zero-cost scores of NAS-Bench-Suite-Zero (``nbsz/nb201_cifar10.parquet``,
a seeded sub-pool of ``--pool-size`` archs, metrics ``--metrics``) answered by the NB201 benchmark table (query =
12-epoch valid acc). That file has no NTK scores, so HNAS searches the synthetic ``raynas.testing.hnas_pool_table``
pool of the same size (``ntk_trace``, ``ntk_cond``, a known optimum), answered by a lookup oracle.

    python scripts/bench_bo_step.py --pool-size 40 --budgets 20,100,1000
    python scripts/bench_bo_step.py --pool-size 725 --budgets 20,100,1000 --methods hnas --max-seconds 150
    python scripts/bench_bo_step.py --pool-size 725 --methods robot --budgets 20 --gp-sizes 64,256,1024

``--max-seconds`` cuts a search that runs longer (its row says ``cut``; the per-step figures are over the steps it
made). Timings are load-dependent; the ratios, measured side by side, are what to compare.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

DEFAULT_METRICS = "grad_norm,snip,grasp,fisher,synflow,jacov"


def _budgets(text: str) -> list[int]:
    try:
        out = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"budgets must be comma-separated integers, got {text!r}") from None
    if not out or min(out) < 1:
        raise argparse.ArgumentTypeError(f"budgets must be integers >= 1, got {text!r}")
    return out


def _patience(text: str) -> int | None:
    if text.lower() == "none":
        return None
    v = int(text)
    if v < 1:
        raise argparse.ArgumentTypeError("patience must be >= 1 or 'none'")
    return v


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pool-size", type=int, default=40, help="archs in the pool (at most 725)")
    ap.add_argument("--budgets", type=_budgets, default=_budgets("20,100,1000"), help="T values, e.g. 20,100,1000")
    ap.add_argument("--methods", default="robot,hnas", help="comma-separated: robot, hnas")
    ap.add_argument("--metrics", default=DEFAULT_METRICS, help="RoBoT's metric columns of the NB-Suite-Zero table")
    ap.add_argument("--robot-patience", type=_patience, default=10,
                    help="RoBoT's bo_patience ('none': the paper's rule, BO for bo_iters = T iterations)")
    ap.add_argument("--seed", type=int, default=0, help="search seed (the sub-pool is always drawn with seed 0)")
    ap.add_argument("--max-seconds", type=float, default=300.0, help="cut a search after this many seconds")
    ap.add_argument("--rounds", type=int, default=1,
                    help="repeat every (method, T) this many times, the budgets' order rotated each round, and keep "
                    "each one's fastest round (the searches are deterministic; only the machine's load differs)")
    ap.add_argument("--gp-sizes", type=_budgets, default=None,
                    help="also time ONE RoBoT GP step on n observations (e.g. 64,256,1024: random weights on the "
                    "pool, each answered by the query value of the arch it ranks first), fitted on all n vs on the "
                    "default window (raynas.search.bo.GP_MAX_POINTS), side by side")
    ap.add_argument("--data", type=Path, default=None, help="data root (default: $RAYNAS_DATA or ../shared/data)")
    ap.add_argument("--json", type=Path, default=None, help="also write the rows here")
    return ap


def robot_pool(data: Path, size: int, metrics: Sequence[str]):  # type: ignore[no-untyped-def]
    """A seeded sub-pool of ``size`` archs of the NB-Suite-Zero NB201 table and the NB201 benchmark oracle."""
    import pyarrow.parquet as pq

    from raynas.oracles.base import BenchmarkTableOracle
    from raynas.search import CandidatePool

    t = pq.read_table(data / "nbsz" / "nb201_cifar10.parquet", columns=["arch_index", *metrics]).to_pydict()
    n = len(t["arch_index"])
    sel = np.arange(n) if size >= n else np.sort(np.random.default_rng(0).choice(n, size, replace=False))
    table = {k: np.asarray(v)[sel] for k, v in t.items()}
    return CandidatePool.from_table(table, list(metrics)), BenchmarkTableOracle("nb201", data / "nb201" /
                                                                               "nb201_cifar10.parquet")


def hnas_pool(size: int):  # type: ignore[no-untyped-def]
    from raynas.search.hnas import HNAS
    from raynas.testing import FakeOracle, hnas_pool_table

    table, acc = hnas_pool_table(size, 0, "target", "ntk_trace")
    return HNAS.pool_from_table(table, "ntk_trace"), FakeOracle(table["arch_index"], acc)


class FitCounter:
    """Counts calls of ``raynas.search.bo._gp_step`` (one GP fit + one acquisition optimisation each)."""

    def __init__(self) -> None:
        import raynas.search.bo as bo

        self.calls = 0
        self._bo, self._real = bo, bo._gp_step

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            return self._real(*args, **kwargs)

        bo._gp_step = counted

    def close(self) -> None:
        self._bo._gp_step = self._real


def measure(search: Any, oracle: Any, max_seconds: float, fits: FitCounter) -> dict[str, Any]:
    """Drive ``search`` (ask / query / tell, q = 1) until done or ``max_seconds``. The per-step figures are over
    the BO steps that fitted a GP (Sobol and greedy steps cost next to nothing and would dilute them)."""
    gp_steps: list[float] = []
    steps = new = 0
    f0 = fits.calls
    start = time.perf_counter()
    cut = False
    while not search.done:
        if time.perf_counter() - start > max_seconds:
            cut = True
            break
        t0, before = time.perf_counter(), fits.calls
        p = search.ask()
        if p.cached:
            search.tell(p)
        else:
            res = oracle.query(p.arch_index)
            search.tell(p, res.value, res.cost_seconds)
            new += 1
        steps += 1
        if fits.calls > before:
            gp_steps.append(time.perf_counter() - t0)
    total = time.perf_counter() - start
    s = np.asarray(gp_steps) if gp_steps else np.full(1, np.nan)
    stop = "cut" if cut else search.result().get("stop", "done (no stop key)")
    return {"steps": steps, "queries": new, "gp_fits": fits.calls - f0, "stop": stop, "total_s": total,
            "mean_step_s": float(s.mean()), "max_step_s": float(s.max()), "last10_step_s": float(s[-10:].mean()),
            "s_per_query": total / max(new, 1)}


def warm_up() -> None:
    """Import BoTorch and run one GP step, so the first timed step does not pay for the imports."""
    from raynas.search.bo import propose

    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (8, 2))
    propose(X, X.sum(1), np.array([[-1.0, -1.0], [1.0, 1.0]]), 0)


def _data(args: argparse.Namespace) -> Path:
    if args.data is not None:
        return Path(args.data)
    import os

    return Path(os.environ.get("RAYNAS_DATA", REPO.parent / "shared" / "data"))


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    from raynas.search import RoBoT
    from raynas.search.hnas import HNAS

    data = _data(args)
    rows = []
    warm_up()
    fits = FitCounter()
    try:
        for method in args.methods:
            if method == "robot":
                pool, oracle = robot_pool(data, args.pool_size, args.metrics)
            else:
                pool, oracle = hnas_pool(args.pool_size)
            best: dict[int, dict[str, Any]] = {}
            for k in range(max(1, args.rounds)):
                budgets = list(args.budgets)
                budgets = budgets[k % len(budgets):] + budgets[: k % len(budgets)]
                for T in budgets:
                    if method == "robot":
                        s = RoBoT(pool, oracle, budget=T, seed=args.seed, bo_patience=args.robot_patience)
                    else:
                        s = HNAS(pool, oracle, budget=T, seed=args.seed, exclude_queried=False)  # the repeat mode
                    r = measure(s, oracle, args.max_seconds, fits)
                    print(f"  round {k}: {method} T={T}: {r['steps']} steps, {r['stop']}, {r['total_s']:.1f} s",
                          file=sys.stderr, flush=True)
                    if T not in best or r["total_s"] < best[T]["total_s"]:
                        best[T] = r
            rows += [{"method": method, "pool": len(pool), "budget": T, **best[T]} for T in args.budgets]
    finally:
        fits.close()
    return rows


def gp_sizes(data: Path, args: argparse.Namespace) -> list[dict[str, Any]]:
    """One GP step on ``n`` RoBoT observations, every observation vs the default window, for each ``n``."""
    from raynas.search import bo

    pool, oracle = robot_pool(data, args.pool_size, args.metrics)
    d = len(pool.metrics)
    bounds = np.stack([-np.ones(d), np.ones(d)])
    rng = np.random.default_rng(args.seed)
    X = rng.uniform(-1.0, 1.0, (max(args.gp_sizes), d))
    y = np.array([oracle.query(int(pool.arch_index[pool.top(w)])).value for w in X])
    out = []
    for n in args.gp_sizes:
        row: dict[str, Any] = {"n": n}
        for name, mp in (("all", None), ("window", bo.GP_MAX_POINTS)):
            t0 = time.perf_counter()
            bo.propose(X[:n], y[:n], bounds, args.seed, max_points=mp)
            row[name] = time.perf_counter() - t0
        print(f"  GP step on {n} observations: all {row['all']:.2f} s, window {row['window']:.2f} s",
              file=sys.stderr, flush=True)
        out.append(row)
    return out


def gp_table(rows: Sequence[dict[str, Any]]) -> str:
    from raynas.search.bo import GP_MAX_POINTS

    lines = [f"| observations n | GP step on all n | on the window (at most {GP_MAX_POINTS}) | all / window |",
             "|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['n']} | {r['all']:.2f} s | {r['window']:.2f} s | x{r['all'] / r['window']:.2f} |")
    return "\n".join(lines)


def table(rows: Sequence[dict[str, Any]]) -> str:
    """Markdown table; ratios against the first (smallest) budget of the same method."""
    lines = ["| method | pool | T | steps | distinct queries | GP fits | stop | mean GP step | max GP step "
             "| last-10 GP steps | s / distinct query | mean / max GP step vs first T |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    first: dict[str, dict[str, Any]] = {}
    for r in rows:
        f = first.setdefault(r["method"], r)
        ratio = f"x{r['mean_step_s'] / f['mean_step_s']:.2f} / x{r['max_step_s'] / f['max_step_s']:.2f}"
        lines.append(f"| {r['method']} | {r['pool']} | {r['budget']} | {r['steps']} | {r['queries']} | "
                     f"{r['gp_fits']} | {r['stop']} | {r['mean_step_s']:.3f} s | {r['max_step_s']:.2f} s | "
                     f"{r['last10_step_s']:.3f} s | {r['s_per_query']:.2f} | {ratio} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    args.metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    bad = [m for m in args.methods if m not in ("robot", "hnas")]
    if bad or not args.methods:
        build_parser().error(f"--methods takes robot, hnas; got {', '.join(bad) or 'none'}")
    logging.basicConfig(level=logging.ERROR)
    rows = run(args)
    print(table(rows))
    out: dict[str, Any] = {"searches": rows}
    if args.gp_sizes:
        out["gp_sizes"] = gp_sizes(_data(args), args)
        print()
        print(gp_table(out["gp_sizes"]))
    if args.json is not None:
        args.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
