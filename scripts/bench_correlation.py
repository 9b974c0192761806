#!/usr/bin/env python
"""Spearman rho and Kendall tau of every registered metric vs NAS-Bench-201 CIFAR-10 accuracy.

Scores a seeded random sample of NB201 archs with `raynas score` machinery (the fused engine) into RUN_DIR
(resumable: re-running continues where a killed run stopped) and prints, per metric, rho and tau against the
200-epoch test accuracy and against the 12-epoch validation accuracy (the query signal of HNAS/RoBoT), the
published NAS-Bench-Suite-Zero rho where the benchmark records one, and the mean seconds per arch (fused: a
shared pass's time is split evenly between its metrics), with its ratio to grad_norm's.

The metric list comes from the registry (`--metrics all`, the default: every registered metric, plugins
imported with `--metric-module` included), so a newly registered metric is benchmarked without editing this
script.

Zero-shot rules (`raynas.search.zero_shot.RULES`: az, rank_sum, vkdnw, ...) get a row each, `rule:<name>`, computed
from the run's stored columns: the rule's aggregate over its default metrics, ranked over the archs that have a
stored row (any status; a failed score ranks last, as the rule ranks it) for every one of them; a rule is listed
only where all its metrics are in the run(s); its s/arch is the sum of its metrics'. `swap_reg` needs its
`--swap-reg MU,SIGMA` (no published value). `--join RUN` (repeatable) joins further run directories of the same
sample (read only: same space, sample, seed, data, batch and image size), e.g. metrics scored in a second run.

`--nbsz`: the data-free metrics of the list (registered `needs_data=False`) are also scored on the 725 NB201 archs
of NAS-Bench-Suite-Zero's sample (`$RAYNAS_DATA/nbsz/nb201_cifar10.parquet`, in RUN_DIR/nbsz) and correlated
with its `val_accuracy` and with the 200-epoch test accuracy, beside the correlation of the values NASLib
computed for the same archs (its columns of the same proxy: `l2_norm`, `synflow`, `params`, `flops`, ...;
data-using proxies are listed too when `--nbsz-all` is given, scored on the run's data, not NASLib's CIFAR-10).

    python scripts/bench_correlation.py --out runs/corr --sample 1000 --data digits --workers 2
    python scripts/bench_correlation.py --out runs/corr --sample 1000 --metrics epe_nas,l2_norm,plain,zen,swap --nbsz
    python scripts/bench_correlation.py --out runs/full --all --metrics params,flops,synflow --workers 2
    python scripts/bench_correlation.py --out /work/corr/c1000 --join /work/corr/v1000 --score-only-existing \
        --swap-reg 1000,1e5
"""

from __future__ import annotations

import argparse
import importlib
import logging
import math
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from raynas.metrics import get_metric, resolve_metric_names
from raynas.parallel import run_scoring_from_dict
from raynas.report.correlation import correlate
from raynas.search.zero_shot import RULES, rule_aggregate
from raynas.spaces import create_benchmark
from raynas.store import ScoreStore, to_wide

#: NASLib's column name of a raynas metric in NAS-Bench-Suite-Zero's tables, where the names differ
NASLIB_NAMES = {"naswot": "nwot", "jacob_cov": "jacov"}


def score(out: Path, names: list[str], selection: dict, args: argparse.Namespace) -> None:
    cfg = {
        "space": "nb201",
        "metrics": ",".join(names),
        **selection,
        "seed": args.seed,
        "data": args.data,
        "batch_size": args.batch_size,
        "out": str(out),
        "workers": args.workers,
        "resume": (out / "config.json").exists(),
        **({"metric_modules": list(args.metric_module)} if args.metric_module else {}),
    }
    t0 = time.perf_counter()
    summary = run_scoring_from_dict(cfg)
    logging.info("scoring %s finished in %.0f s: %s", out, time.perf_counter() - t0, summary)


def read_run(out: Path):  # type: ignore[no-untyped-def]
    wide = to_wide(ScoreStore(out).read()).to_pandas()
    secs = ScoreStore(out).read().to_pandas().groupby("metric")["seconds"].mean()
    return wide, secs


#: config identity keys two joined runs must share (a run's metrics may differ: that is why it is joined)
SAME_SAMPLE_KEYS = ("space", "space_kwargs", "all", "sample", "ids", "seed", "data", "batch_size", "image_size")


def read_runs(outs: list[Path]):  # type: ignore[no-untyped-def]
    """``(wide, secs, scored)`` of one or several runs of the same sample joined on ``arch_index``: ``wide`` one
    column per metric (null where failed or not scored), ``secs`` each metric's mean seconds over all its rows,
    ``scored`` a boolean frame: the arch has a stored row of the metric (any status)."""
    import pandas as pd

    longs, identity = [], None
    for out in outs:
        cfg = ScoreStore(out).load_config() or {}
        ident = {k: cfg.get("identity", {}).get(k) for k in SAME_SAMPLE_KEYS}
        if identity is not None and ident != identity:
            diff = {k: (identity[k], ident[k]) for k in SAME_SAMPLE_KEYS if ident[k] != identity[k]}
            raise SystemExit(f"--join: {out} is not a run of the same sample as {outs[0]}: {diff}")
        identity = ident
        longs.append(ScoreStore(out).read())
    long = pa.concat_tables(longs)
    wide = to_wide(long).to_pandas()
    if wide["arch_index"].duplicated().any():
        raise SystemExit("the joined runs hold an arch under two seeds or spaces: join runs of one sample only")
    rows = long.select(["arch_index", "metric"]).to_pandas().drop_duplicates()
    scored = pd.crosstab(rows["arch_index"], rows["metric"]).astype(bool)
    scored = scored.reindex(index=wide["arch_index"], fill_value=False).reset_index(drop=True)
    secs = long.select(["metric", "seconds"]).to_pandas().groupby("metric")["seconds"].mean()
    return wide, secs, scored


def rule_columns(wide, scored, rules: list[str], options: dict[str, dict[str, float]]):  # type: ignore[no-untyped-def]
    """``{"rule:<name>": aggregate [P]}`` for each rule whose default metrics are all stored: the aggregate over
    the archs with a row of each (NaN elsewhere), failed scores ranked last (-inf), as the zero-shot search ranks."""
    out: dict[str, np.ndarray] = {}
    for rule in rules:
        metrics = list(RULES.get(rule).default_metrics)
        if not all(m in wide.columns and m in scored.columns for m in metrics):
            logging.info("rule %s: not every one of %s is in the run(s), no row", rule, ",".join(metrics))
            continue
        have = scored[metrics].all(axis=1).to_numpy()
        sign = np.array([1.0 if get_metric(m).higher_is_better else -1.0 for m in metrics])
        x = wide.loc[have, metrics].to_numpy(dtype=float) * sign
        agg = np.full(len(wide), np.nan)
        if have.any():
            agg[have] = rule_aggregate(rule, np.where(np.isfinite(x), x, -np.inf), options.get(rule))
        out[f"rule:{rule}"] = np.where(np.isfinite(agg), agg, np.nan)
    return out


def fmt(x: float | None, digits: int = 3) -> str:
    return "-" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"


def table(df, names: list[str], truths: dict[str, str], published: dict[str, float], secs,  # type: ignore[no-untyped-def]
          rules: dict[str, np.ndarray] | None = None) -> str:
    """One Markdown row per metric: rho / tau against each truth column, published rho, seconds per arch; and one
    per ``rules`` column (``rule:<name>`` -> aggregate aligned with ``df``, higher is better; its seconds the sum
    of its metrics')."""
    rules = rules or {}
    direction = {m: get_metric(m).higher_is_better for m in names}
    if rules:
        df = df.assign(**rules)
        direction.update({r: True for r in rules})
        if secs is not None:
            secs = secs.copy()
            for r in rules:
                secs[r] = sum(float(secs.get(m, float("nan"))) for m in RULES.get(r[len("rule:"):]).default_metrics)
        names = [*names, *rules]
    per_truth = {label: {c.metric: c for c in correlate({m: df[m].to_numpy(dtype=float) for m in names},
                                                         df[col].to_numpy(dtype=float), direction)}
                 for label, col in truths.items()}
    ref = float(secs.get("grad_norm", float("nan"))) if secs is not None else float("nan")
    head = "| metric | n | " + " | ".join(f"rho {t} | tau {t}" for t in truths) + " | published rho |"
    rule = "|---|---:|" + "---:|---:|" * len(truths) + "---:|"
    if secs is not None:
        head, rule = head + " s/arch | x grad_norm |", rule + "---:|---:|"
    first = next(iter(truths))
    order = sorted(names, key=lambda m: -np.nan_to_num(per_truth[first][m].rho, nan=-9))
    lines = [head, rule]
    for m in order:
        cells = [f"{per_truth[t][m].rho:.3f} | {per_truth[t][m].tau:.3f}" for t in truths]
        line = f"| {m} | {per_truth[first][m].n} | " + " | ".join(cells) + f" | {fmt(published.get(m), 2)} |"
        if secs is not None:
            s = float(secs.get(m, float("nan")))
            line += f" {fmt(s)} | {fmt(s / ref if ref > 0 else float('nan'), 2)} |"
        lines.append(line)
    return "\n".join(lines)


def nbsz_report(out: Path, names: list[str], args: argparse.Namespace, bench, truth) -> None:  # type: ignore[no-untyped-def]
    import pandas as pd

    path = Path(args.nbsz_path) if args.nbsz_path else bench.resolve_path(None).parents[1] / "nbsz" / "nb201_cifar10.parquet"
    if not path.exists():
        raise SystemExit(f"--nbsz: {path} not found (set RAYNAS_DATA or --nbsz-path)")
    nbsz = pd.read_parquet(path)
    chosen = [m for m in names if args.nbsz_all or not get_metric(m).needs_data]
    if not chosen:
        logging.info("--nbsz: no data-free metric in the list")
        return
    run = out / "nbsz"
    if not args.score_only_existing:
        score(run, chosen, {"ids": sorted(int(i) for i in nbsz["arch_index"])}, args)
    wide, secs = read_run(run)
    df = wide.merge(truth, on="arch_index", how="inner").merge(nbsz, on="arch_index", how="inner",
                                                                suffixes=("", "_naslib"))
    if (df["arch"] != df["arch_str"]).any():
        raise SystemExit("arch strings of the nbsz run do not match the ground truth indexing")
    final = bench.final_column()
    ours = [m for m in chosen if m in wide.columns]
    print(f"\nNAS-Bench-Suite-Zero's {len(df)} NB201 archs: raynas's values (data={args.data} for data-using ones)")
    print(table(df, ours, {"val_accuracy (NB-Suite-Zero)": "val_accuracy", "test 200ep": final}, {}, secs))
    theirs = {m: NASLIB_NAMES.get(m, m) for m in ours}
    have = {m: c for m, c in theirs.items() if c in nbsz.columns}
    if have:
        renamed = df.rename(columns={(c if c not in wide.columns else f"{c}_naslib"): f"naslib:{m}"
                                     for m, c in have.items()})
        cols = [f"naslib:{m}" for m in have]
        print("\nthe values NASLib computed for the same archs (real CIFAR-10 batch):")
        # NASLib's proxies share raynas's direction
        direction_names = {f"naslib:{m}": m for m in have}
        per = {label: correlate({c: renamed[c].to_numpy(dtype=float) for c in cols}, renamed[col].to_numpy(dtype=float),
                                {c: get_metric(direction_names[c]).higher_is_better for c in cols})
               for label, col in (("val_accuracy", "val_accuracy"), ("test 200ep", final))}
        print("| NASLib column | n | rho val_accuracy | tau val_accuracy | rho test 200ep | tau test 200ep |")
        print("|---|---:|---:|---:|---:|---:|")
        for a, b in zip(per["val_accuracy"], per["test 200ep"]):
            print(f"| {a.metric} | {a.n} | {a.rho:.3f} | {a.tau:.3f} | {b.rho:.3f} | {b.tau:.3f} |")


def rule_names(args: argparse.Namespace) -> list[str]:
    """The rules of ``--rules`` (all: every registered one; swap_reg only with ``--swap-reg``)."""
    if args.rules.strip() == "all":
        return [r for r in RULES.names() if not RULES.get(r).options or (r == "swap_reg" and args.swap_reg)]
    names = [r.strip() for r in args.rules.split(",") if r.strip()]
    for r in names:
        RULES.get(r)  # unknown: an error naming the registered ones
    return names


def rule_options(args: argparse.Namespace) -> dict[str, dict[str, float]]:
    if not args.swap_reg:
        return {}
    try:
        mu, sigma = (float(v) for v in args.swap_reg.split(","))
    except ValueError:
        raise SystemExit(f"--swap-reg wants MU,SIGMA, got {args.swap_reg!r}") from None
    return {"swap_reg": {"mu": mu, "sigma": sigma}}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="runs/correlation")
    sel = ap.add_mutually_exclusive_group()
    sel.add_argument("--sample", type=int, default=1000, help="archs drawn by --seed (default 1000)")
    sel.add_argument("--all", action="store_true", help="every arch of the space (15,625)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--metrics", default="all", help="'all' (every registered metric, the default) or a list")
    ap.add_argument("--metric-module", action="append", default=[], help="a module registering more metrics")
    ap.add_argument("--data", default="digits")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--workers", type=int, default=0, help="Ray actors (0 = in-process loop)")
    ap.add_argument("--truth", default=None, help="nb201_cifar10.parquet (default: $RAYNAS_DATA or ../shared/data)")
    ap.add_argument("--score-only-existing", action="store_true", help="do not score, only report what is stored")
    ap.add_argument("--nbsz", action="store_true", help="also the data-free metrics on NB-Suite-Zero's 725 archs")
    ap.add_argument("--nbsz-all", action="store_true", help="with --nbsz: every listed metric, not only data-free")
    ap.add_argument("--nbsz-path", default=None, help="NB-Suite-Zero's nb201_cifar10.parquet")
    ap.add_argument("--skip-sample", action="store_true", help="only the --nbsz part")
    ap.add_argument("--join", action="append", default=[], metavar="RUN",
                    help="another run directory of the same sample whose metric columns are joined (read only)")
    ap.add_argument("--rules", default="all", help="zero-shot rules given a row ('all': every registered one whose "
                    "metrics are stored; '' none)")
    ap.add_argument("--swap-reg", default=None, metavar="MU,SIGMA",
                    help="the swap_reg rule's mu (thousands of parameters) and sigma; without it no swap_reg row")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    for module in args.metric_module:
        importlib.import_module(module)

    bench = create_benchmark("nb201")
    truth_path = bench.resolve_path(args.truth)
    names = resolve_metric_names(args.metrics)
    out = Path(args.out)
    final, query = bench.final_column(), bench.query_column
    truth = bench.read([bench.index_column, "arch_str", final, query], truth_path).to_pandas()
    if not args.skip_sample:
        if not args.score_only_existing:
            score(out, names, {"all": True} if args.all else {"sample": args.sample}, args)
        wide, secs, scored = read_runs([out, *map(Path, args.join)])
        keep = wide["arch_index"].isin(truth["arch_index"]).to_numpy()
        wide, scored = wide[keep].reset_index(drop=True), scored[keep].reset_index(drop=True)
        df = wide.merge(truth, on="arch_index", how="left")
        if (df["arch"] != df["arch_str"]).any():
            raise SystemExit("arch strings in the run do not match the ground truth indexing")
        metrics = [m for m in names if m in df.columns]
        rules = rule_columns(wide, scored, rule_names(args), rule_options(args))
        which = "the whole space" if len(df) == len(truth) else f"sample seed {args.seed}"
        print(f"\nNB201 CIFAR-10, {len(df)} archs ({which}), data={args.data}, batch={args.batch_size}, "
              f"network seed {args.seed}; fused engine, one CPU process")
        print("rho / tau are signed by the metric's registered direction (positive = predicts accuracy); "
              "published rho: NAS-Bench-Suite-Zero, against its own CIFAR-10 accuracy\n")
        print(table(df, metrics, {"test 200ep": final, "val 12ep": query}, bench.published_rho, secs, rules))
    if args.nbsz:
        nbsz_report(out, names, args, bench, truth)
    return 0


if __name__ == "__main__":
    sys.exit(main())
