"""``raynas report``: a Markdown summary plus PNG plots for any directory the other commands write.

Recognised content (any combination, found recursively one level deep):
- a score run (``scores/shard-*.parquet`` + ``config.json``): status counts, metric-vs-accuracy scatter with
  Spearman rho when ground truth is known (NB201 table) or when a search queried some of the archs;
- a search dir (``search.json`` + ``state.parquet``): the trace (best-so-far vs queries and vs cost), the RoBoT
  weight vector over BO steps, the top-k queried architectures.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

import pyarrow as pa

from raynas.errors import DataError, StoreError
from raynas.report.correlation import correlate, format_table

log = logging.getLogger(__name__)


def _find(run_dir: Path) -> tuple[list[Path], list[Path]]:
    """(score run dirs, search dirs) at ``run_dir`` and one level below."""
    cands = [run_dir] + sorted(p for p in run_dir.iterdir() if p.is_dir() and p.name not in ("report", "scores"))
    scores = [p for p in cands if (p / "scores").is_dir()]
    searches = [p for p in cands if (p / "search.json").exists() and (p / "state.parquet").exists()]
    return scores, searches


def _truth(path: str | Path | None) -> dict[int, float] | None:
    from raynas.search.oracle import default_nb201_path

    p = Path(path) if path else default_nb201_path()
    if not p.exists():
        return None
    import pyarrow.parquet as pq

    try:
        t = pq.read_table(p, columns=["arch_index", "cifar10_test_acc_200ep"])
    except (OSError, KeyError, pa.ArrowException) as e:
        raise DataError(f"cannot read NB201 ground truth {p}: {e}") from None
    return dict(zip(t.column(0).to_pylist(), t.column(1).to_pylist()))


def _score_section(run: Path, out: Path, truth_path: str | None, queried: dict[int, float]) -> list[str]:
    from raynas.metrics import METRICS, get_metric
    from raynas.report.plots import scatter_metrics
    from raynas.store import ScoreStore, to_wide

    store = ScoreStore(run)
    table = store.read()
    cfg = store.load_config() or {}
    cfg = cfg.get("identity", cfg)  # scoring runs store identity and volatile keys apart
    lines = [f"## Scores: `{run}`", ""]
    if table.num_rows == 0:
        return lines + ["(no scores stored yet)", ""]
    df = table.select(["metric", "status", "seconds"]).to_pandas()
    counts = df.pivot_table(index="metric", columns="status", values="seconds", aggfunc="count", fill_value=0)
    secs = df.groupby("metric")["seconds"].mean()
    lines += [f"space `{cfg.get('space', '?')}`, data `{cfg.get('data', '?')}`, seed {cfg.get('seed', '?')}, "
              f"{table.num_rows} rows", "", "| metric | " + " | ".join(counts.columns) + " | mean s/arch |",
              "|---|" + "---:|" * (len(counts.columns) + 1)]
    for m, row in counts.iterrows():
        lines.append(f"| {m} | " + " | ".join(str(int(v)) for v in row) + f" | {secs[m]:.3f} |")
    lines.append("")

    wide = to_wide(table).to_pandas().groupby("arch_index").mean(numeric_only=True)
    metrics = [m for m in wide.columns if m != "seed" and m in METRICS]
    acc, label = None, None
    truth = _truth(truth_path) if cfg.get("space", "nb201") == "nb201" else None
    if truth is not None:
        acc = np.array([truth.get(int(i), np.nan) for i in wide.index])
        label = "CIFAR-10 test acc (200 ep)"
    elif queried:
        acc = np.array([queried.get(int(i), np.nan) for i in wide.index])
        label = "queried accuracy"
    if acc is not None and np.isfinite(acc).sum() >= 3 and metrics:
        scores = {m: wide[m].to_numpy(dtype=float) for m in metrics}
        rows = correlate(scores, acc, {m: get_metric(m).higher_is_better for m in metrics})
        png = scatter_metrics(scores, acc, rows, out / "metrics_vs_accuracy.png", label)
        lines += [f"Rank correlation with {label} (n = {int(np.isfinite(acc).sum())} archs; rho signed by each "
                  "metric's direction):", "", format_table(rows, published=truth is not None), "", f"![metrics vs accuracy]({png.name})", ""]
    else:
        lines += ["(no accuracy known for these archs: no correlation plot)", ""]
    return lines


def _search_section(search: Path, out: Path, top_k: int) -> tuple[list[str], dict[int, float]]:
    from raynas.report.plots import search_trace, weight_trace
    from raynas.search.state import load_state

    rows, cfg = load_state(search / "state.parquet")
    result: dict[str, Any] = {}
    if (search / "result.json").exists():
        try:
            result = json.loads((search / "result.json").read_text())
        except (OSError, ValueError) as e:
            raise StoreError(f"{search / 'result.json'} is unreadable or corrupt: {e}") from None
    tag = search.name or "search"
    lines = [f"## Search: `{search}` ({cfg.get('method', '?')})", ""]
    if not rows:
        return lines + ["(no queries yet)", ""], {}
    new = [r for r in rows if r.get("new_query", True)]
    values = np.array([r["value"] for r in new], dtype=float)
    cost = np.array([r["cumulative_cost"] for r in new], dtype=float)
    png = search_trace(np.arange(1, len(new) + 1), values, cost, out / f"{tag}_trace.png", "query value")
    lines += [f"{len(new)} distinct queries, total cost {cost[-1]:.1f} s. ![trace]({png.name})", ""]
    bo = [r for r in rows if r.get("kind") == "bo" and r.get("weights") is not None]
    names = (cfg.get("pool") or {}).get("metrics") or []
    if bo and names:
        w = np.array([r["weights"] for r in bo], dtype=float)
        wpng = weight_trace(w, names, out / f"{tag}_weights.png")
        lines += [f"Weights over BO steps: ![weights]({wpng.name})", ""]
    if result:
        lines += [f"**Result**: arch {result.get('arch_index')} `{result.get('arch', '')}`, query value "
                  f"{result.get('value')}, final {result.get('final')}, cost {result.get('cost', 0):.1f} s", ""]
    queried = {int(r["arch_index"]): float(r["value"]) for r in new}
    top = sorted(queried.items(), key=lambda kv: -kv[1])[:top_k]
    lines += [f"Top {len(top)} queried architectures:", "", "| rank | arch_index | value |", "|---:|---:|---:|"]
    lines += [f"| {i + 1} | {a} | {v:.3f} |" for i, (a, v) in enumerate(top)]
    return lines + [""], queried


def write_report(run_dir: str | Path, truth: str | None = None, top_k: int = 10) -> list[Path]:
    """Write ``RUN_DIR/report/report.md`` and its PNGs; returns the written paths."""
    run = Path(run_dir)
    if not run.is_dir():
        raise StoreError(f"{run} is not a directory")
    scores, searches = _find(run)
    if not scores and not searches:
        raise StoreError(f"{run} holds neither scores (scores/) nor a search (search.json + state.parquet)")
    out = run / "report"
    out.mkdir(exist_ok=True)
    lines = [f"# raynas report: `{run}`", ""]
    queried: dict[int, float] = {}
    search_lines: list[str] = []
    for s in searches:
        sec, q = _search_section(s, out, top_k)
        search_lines += sec
        queried.update(q)
    for s in scores:
        lines += _score_section(s, out, truth, queried)
    lines += search_lines
    md = out / "report.md"
    tmp = md.with_suffix(".tmp")
    tmp.write_text("\n".join(lines) + "\n")
    os.replace(tmp, md)
    return [md] + sorted(out.glob("*.png"))
