#!/usr/bin/env python
"""Spearman rho of each training-free metric vs NAS-Bench-201 CIFAR-10 test accuracy (200 epochs).

Scores a seeded random sample of NB201 archs with `raynas score` machinery into RUN_DIR (resumable: re-running
continues where a killed run stopped), then prints a table beside the published NAS-Bench-Suite-Zero values.

    python scripts/bench_correlation.py --out runs/corr --sample 1000 --data digits --workers 2
    python scripts/bench_correlation.py --out runs/full --all --metrics params,flops,synflow --workers 2
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path


REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from raynas.metrics import get_metric, resolve_metric_names  # noqa: E402
from raynas.parallel import run_scoring_from_dict  # noqa: E402
from raynas.report.correlation import correlate, format_table  # noqa: E402
from raynas.spaces import create_benchmark  # noqa: E402
from raynas.store import ScoreStore, to_wide  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="runs/correlation")
    sel = ap.add_mutually_exclusive_group()
    sel.add_argument("--sample", type=int, default=1000, help="archs drawn by --seed (default 1000)")
    sel.add_argument("--all", action="store_true", help="every arch of the space (15,625)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--metrics", default="all")
    ap.add_argument("--data", default="digits")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--workers", type=int, default=0, help="Ray actors (0 = in-process loop)")
    ap.add_argument("--truth", default=None, help="nb201_cifar10.parquet (default: $RAYNAS_DATA or ../shared/data)")
    ap.add_argument("--score-only-existing", action="store_true", help="do not score, only report what is stored")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")

    bench = create_benchmark("nb201")
    truth_path = bench.resolve_path(args.truth)
    names = resolve_metric_names(args.metrics)
    out = Path(args.out)
    if not args.score_only_existing:
        cfg = {
            "space": "nb201",
            "metrics": ",".join(names),
            **({"all": True} if args.all else {"sample": args.sample}),
            "seed": args.seed,
            "data": args.data,
            "batch_size": args.batch_size,
            "out": str(out),
            "workers": args.workers,
            "resume": (out / "config.json").exists(),
        }
        t0 = time.perf_counter()
        summary = run_scoring_from_dict(cfg)
        logging.info("scoring finished in %.0f s: %s", time.perf_counter() - t0, summary)

    wide = to_wide(ScoreStore(out).read()).to_pandas()
    final = bench.final_column()
    truth = bench.read([bench.index_column, "arch_str", final], truth_path).to_pandas()
    df = wide.merge(truth, on="arch_index", how="inner")
    if (df["arch"] != df["arch_str"]).any():
        raise SystemExit("arch strings in the run do not match the ground truth indexing")
    metrics = [m for m in names if m in df.columns]
    rows = correlate(
        {m: df[m].to_numpy(dtype=float) for m in metrics},
        df[final].to_numpy(dtype=float),
        {m: get_metric(m).higher_is_better for m in metrics},
        bench.published_rho,
    )
    store = ScoreStore(out).read().to_pandas()
    secs = store.groupby("metric")["seconds"].mean()
    which = "the whole space" if len(df) == len(truth) else f"sample seed {args.seed}"
    print(f"\nNB201 CIFAR-10, {len(df)} archs ({which}), data={args.data}, batch={args.batch_size}, "
          f"network seed {args.seed}")
    print("rho is signed by the metric's registered direction (positive = predicts accuracy)\n")
    print(format_table(rows))
    print("\nmean seconds per arch per metric (CPU):")
    for m in metrics:
        print(f"  {m:18s} {secs.get(m, float('nan')):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
