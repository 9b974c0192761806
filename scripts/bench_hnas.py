#!/usr/bin/env python
"""HNAS benchmarks.

**Table mode** (default): HNAS vs RoBoT vs random search on NAS-Bench-201 CIFAR-10 from the real training-free
scores of a ``raynas score`` run (it must hold ``ntk_trace`` (or ``--metric``) and ``ntk_cond``; RoBoT runs when
the run also holds its metrics). The NB201 table is the oracle (query = 12-epoch valid acc, cost = its training
seconds, reported = 200-epoch test acc). Prints mean +- std over seeds of the chosen arch's test accuracy, the
search cost, the number of distinct queries and the regret against the pool's best arch.

    python scripts/bench_hnas.py --scores runs/nb201_full --budget 20 --seeds 0-9

**Train-oracle mode** (``--train-oracle``): on the embedded digits data, with real training. HNAS (queries =
``--query-epochs`` of training) picks an arch from a pool (``--scores`` run, or a seeded sample of
``--pool-size`` NB201 archs scored here); optionally ASHA (``--asha-top-k``) refines among the top-k archs of
the learned objective. Then the HNAS arch, ``--random-archs`` random pool archs and the best pool arch by one
metric (``--single-metric``) are each trained with the same ``--final-epochs`` budget, in this one run.

    python scripts/bench_hnas.py --train-oracle --pool-size 40 --budget 8 --final-epochs 12
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

from raynas.cli.argtypes import seed_list as _seeds  # noqa: E402

from raynas.search.defaults import ROBOT_METRICS as _ROBOT  # noqa: E402

ROBOT_METRICS = ",".join(_ROBOT)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scores", default=None,
                    help="run directory written by `raynas score`; several joined with ':' (archs scored in all)")
    ap.add_argument("--metric", default="ntk_trace", help="HNAS measure M: ntk_trace | grad_norm | snip | grasp")
    ap.add_argument("--budget", type=int, default=20, help="T: distinct queries per search")
    ap.add_argument("--json", type=Path, default=None, help="also write the raw results here")
    t = ap.add_argument_group("table mode")
    t.add_argument("--truth", type=Path, default=None, help="nb201_cifar10.parquet (default: $RAYNAS_DATA)")
    t.add_argument("--seeds", type=_seeds, default=_seeds("0-9"))
    t.add_argument("--robot-metrics", default=ROBOT_METRICS)
    r = ap.add_argument_group("train-oracle mode")
    r.add_argument("--train-oracle", action="store_true")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--pool-size", type=int, default=40, help="archs sampled and scored here when no --scores")
    r.add_argument("--score-batch", type=int, default=32, help="batch size of the NTK scoring")
    r.add_argument("--single-metric", default="ntk_trace", help="baseline: best pool arch by this metric alone")
    r.add_argument("--random-archs", type=int, default=3)
    r.add_argument("--query-epochs", type=int, default=2)
    r.add_argument("--final-epochs", type=int, default=12)
    r.add_argument("--asha-top-k", type=int, default=0, help="ASHA over the top-k of the learned objective")
    r.add_argument("--out", type=Path, default=Path("runs/bench_hnas"), help="where ASHA keeps its Tune files")
    r.add_argument("--C", type=int, default=8)
    r.add_argument("--N", type=int, default=1)
    r.add_argument("--input-size", type=int, default=16)
    r.add_argument("--device", default="auto")
    return ap


def _stats(xs: Sequence[float]) -> str:
    a = np.asarray(xs, dtype=np.float64)
    return f"{a.mean():8.3f} ± {a.std():6.3f}"


# ----------------------------------------------------------------------------- table mode
def table_mode(args: argparse.Namespace) -> dict[str, Any]:
    from raynas.errors import SearchError
    from raynas.search import BenchmarkTableOracle, RoBoT, random_search
    from raynas.search.hnas import HNAS, KAPPA_METRIC
    from raynas.search.runner import load_pool

    if args.scores is None:
        raise SystemExit("table mode needs --scores RUN_DIR (a scored run with ntk_trace and ntk_cond)")
    pool, _, _ = load_pool(args.scores, [args.metric, KAPPA_METRIC])
    oracle = BenchmarkTableOracle("nb201", args.truth)
    robot_metrics = [m for m in args.robot_metrics.split(",") if m]
    try:
        robot_pool = load_pool(args.scores, robot_metrics, "none")[0]  # bench_robot's default transform
    except SearchError as e:
        logging.warning("RoBoT skipped: %s", e)
        robot_pool = None
    pool_best = oracle.best_final_among(pool.arch_index)
    runs: dict[str, list[dict[str, Any]]] = {"HNAS": [], "random": []} | ({"RoBoT": []} if robot_pool else {})
    for seed in args.seeds:
        runs["HNAS"].append(HNAS(pool, oracle, metric=args.metric, budget=args.budget, seed=seed).run())
        runs["random"].append(random_search(pool, oracle, args.budget, seed=seed))
        if robot_pool is not None:
            runs["RoBoT"].append(RoBoT(robot_pool, oracle, budget=args.budget, seed=seed).run())
        logging.info("seed %d: %s", seed, ", ".join(f"{k} {v[-1]['final']:.2f}" for k, v in runs.items()))
    print(f"\nNB201 CIFAR-10, pool {len(pool)} archs (best {pool_best:.3f}), T={args.budget}, "
          f"seeds {args.seeds[0]}..{args.seeds[-1]}, HNAS measure {args.metric}\n")
    print(f"{'method':10s} {'test acc (%)':>18s} {'cost (s)':>20s} {'queries':>8s} {'regret':>7s}")
    for name, rs in runs.items():
        finals = [r["final"] for r in rs]
        print(f"{name:10s} {_stats(finals)} {_stats([r['cost'] for r in rs])} "
              f"{np.mean([r['queries'] for r in rs]):8.1f} {pool_best - np.mean(finals):7.3f}")
    return {"mode": "table", "pool_best": pool_best, "runs": runs}


# ----------------------------------------------------------------------------- train-oracle mode
def _score_sample(args: argparse.Namespace, space: Any, metrics: list[str]) -> dict[str, np.ndarray]:
    """Wide table of ``metrics`` for a seeded sample of the space, scored on a digits batch."""
    from raynas.data import create_batch
    from raynas.metrics.engine import compute_metrics

    batch = create_batch("digits", args.score_batch, args.seed, args.input_size)
    idx = np.array(sorted(space.sample_indices(args.pool_size, args.seed)), dtype=np.int64)
    cols: dict[str, list[float]] = {m: [] for m in metrics}
    for i in idx:
        arch = space.index_to_arch(int(i))
        res = compute_metrics(lambda: space.to_module(arch, batch.num_classes, C=args.C, N=args.N,
                                                      in_channels=batch.inputs.shape[1]),
                              batch, metrics, seed=args.seed)
        for r in res:
            cols[r.metric].append(r.value if r.value is not None else np.nan)
    return {"arch_index": idx, **{m: np.asarray(v, dtype=np.float64) for m, v in cols.items()}}


def train_mode(args: argparse.Namespace) -> dict[str, Any]:
    from raynas.metrics import get_metric
    from raynas.search.hnas import HNAS, KAPPA_METRIC
    from raynas.oracles.training import TrainingOracle
    from raynas.spaces import create_space

    space = create_space("nb201")
    metrics = list(dict.fromkeys([args.metric, KAPPA_METRIC, args.single_metric]))
    if args.scores is not None:
        from raynas.search.runner import read_scores_wide

        wide = read_scores_wide(args.scores)[0]
        table = {c: wide.column(c).to_numpy(zero_copy_only=False) for c in ["arch_index", *metrics]}
    else:
        t0 = time.perf_counter()
        table = _score_sample(args, space, metrics)
        logging.info("scored %d archs in %.0f s", len(table["arch_index"]), time.perf_counter() - t0)
    pool = HNAS.pool_from_table(table, args.metric)
    kw = dict(space_kwargs={"C": args.C, "N": args.N}, device=args.device, input_size=args.input_size)
    common = {"batch_size": 64, "lr": 0.1, "seed": args.seed}
    query = TrainingOracle(space, "digits", {**common, "epochs": args.query_epochs}, **kw)
    search = HNAS(pool, query, metric=args.metric, budget=args.budget, seed=args.seed)
    found = search.run()
    chosen, how = found["arch_index"], "HNAS (best query)"
    if args.asha_top_k > 0:
        from raynas.tune.asha import best_trial, run_asha

        top = search.top_k(args.asha_top_k)
        strs = [space.format(space.index_to_arch(i)) for i in top]
        trials = run_asha(strs, "nb201", "digits", {**common, "epochs": args.final_epochs}, args.final_epochs,
                          storage_path=args.out / "tune", name=f"asha_seed{args.seed}_{int(time.time())}",
                          space_kwargs=kw["space_kwargs"],
                          input_size=args.input_size, device=args.device)
        chosen, how = dict(zip(strs, top))[best_trial(trials).arch], f"HNAS + ASHA over top-{args.asha_top_k}"
    rng = np.random.default_rng(args.seed + 1)
    randoms = [int(a) for a in rng.choice(pool.arch_index, size=args.random_archs, replace=False)]
    score = np.asarray(table[args.single_metric], dtype=np.float64)
    score = score if get_metric(args.single_metric).higher_is_better else -score
    single = int(np.asarray(table["arch_index"])[int(np.argmax(np.where(np.isfinite(score), score, -np.inf)))])
    final = TrainingOracle(space, "digits", {**common, "epochs": args.final_epochs}, **kw)
    rows = {how: [chosen], f"random ({args.random_archs})": randoms, f"best by {args.single_metric}": [single]}
    out: dict[str, Any] = {"mode": "train", "search_cost": found["cost"], "queries": found["queries"],
                           "t": found["t"], "c": found["c"], "methods": {}}
    print(f"\ndigits {args.input_size}x{args.input_size}, NB201 C={args.C} N={args.N}, pool {len(pool)}, "
          f"HNAS T={args.budget} x {args.query_epochs} epochs ({found['cost']:.0f} s, t*={found['t']:.3f}, "
          f"c*={found['c']:.2f}); every arch below trained {args.final_epochs} epochs\n")
    print(f"{'method':32s} {'val acc (%)':>18s}  archs")
    for name, archs in rows.items():
        accs = [final.query(a).value for a in archs]
        out["methods"][name] = {"archs": archs, "val_acc": accs}
        print(f"{name:32s} {_stats(accs)}  {archs}")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    result = train_mode(args) if args.train_oracle else table_mode(args)
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
