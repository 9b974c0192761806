"""``raynas report``: a Markdown summary plus PNG plots for any directory the other commands write.

Recognised content (any combination, found recursively one level deep):
- a score run (``scores/shard-*.parquet`` + ``config.json``): status counts, metric-vs-accuracy scatter with
  Spearman rho when ground truth is known (the space's benchmark table) or when a search queried some of the archs;
- a search dir (``search.json`` + ``state.parquet``): the trace (best-so-far vs queries and vs cost), the RoBoT
  weight vector over BO steps, the top-k queried architectures.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

import pyarrow as pa

from raynas.errors import StoreError
from raynas.report.correlation import correlate, format_table
from raynas.store import ReportDir, RunLayout, SearchDir, atomic_write, find_runs

if TYPE_CHECKING:
    from raynas.spaces.benchmarks import Benchmark

log = logging.getLogger(__name__)


def _truth(space: str, path: str | Path | None) -> tuple[dict[int, float], Benchmark] | None:
    """``({arch index: final accuracy}, benchmark)`` of ``space``'s benchmark, read from ``path`` (default: the
    benchmark's own location); None when the space has no benchmark or its table is absent (the report then
    correlates with queried values, if any). An unreadable table is a :class:`DataError`."""
    from raynas.spaces import benchmark_for_space

    bench = benchmark_for_space(space)
    if bench is None:
        return None
    p = Path(path) if path else bench.default_path()
    if not p.exists():
        return None
    return bench.final_values(p), bench


def _plot(written: list[Path], fn: Callable[..., Path], *args: Any) -> Path:
    """Run one plot function and add its PNG to ``written``; an unwritable PNG (the args' Path) becomes a
    :class:`StoreError`."""
    try:
        png = fn(*args)
    except OSError as e:
        path = next((a for a in args if isinstance(a, Path)), None)
        raise StoreError(f"cannot write {path or 'a report plot'}: {e.strerror or e}") from None
    written.append(png)
    return png


def _from_rows(table: pa.Table, column: str) -> str:
    """The distinct values of ``column`` (what the rows say when the config is missing), or ``?``."""
    values = sorted({str(v) for v in table.column(column).to_pylist() if v is not None})
    return ", ".join(values) if values else "?"


def _completeness_lines(store: Any) -> list[str]:
    c = store.completeness()
    return [f"**Completeness** ({c.summary()})", ""] + [f"- {p}" for p in c.problems()] + \
        ([""] if c.problems() else [])


def _score_section(run: Path, out: Path, truth_path: str | None, queried: dict[int, float],
                   written: list[Path]) -> list[str]:
    from raynas.metrics import METRICS, get_metric
    from raynas.parallel import open_run
    from raynas.report.plots import scatter_metrics
    from raynas.store import to_wide

    store = open_run(run)
    table = store.read()
    try:
        cfg = store.load_config() or {}
    except StoreError:  # unreadable config.json: the completeness lines below say so
        cfg = {}
    cfg = cfg.get("identity", cfg)  # scoring runs store identity and volatile keys apart
    lines = [f"## Scores: `{run}`", ""] + _completeness_lines(store)
    if table.num_rows == 0:
        return lines + ["(no scores stored yet)", ""]
    df = table.select(["metric", "status", "seconds"]).to_pandas()
    counts = df.pivot_table(index="metric", columns="status", values="seconds", aggfunc="count", fill_value=0)
    secs = df.groupby("metric")["seconds"].mean()
    if cfg:
        space, data, seed = cfg.get("space", "?"), cfg.get("data", "?"), cfg.get("seed", "?")
        origin = ""
    else:  # no config: say what the stored rows themselves hold
        space, data, seed = (_from_rows(table, c) for c in ("space", "data", "seed"))
        origin = " (from the stored rows: no usable config.json)"
    lines += [f"space `{space}`, data `{data}`, seed {seed}{origin}, "
              f"{table.num_rows} rows", "", "| metric | " + " | ".join(counts.columns) + " | mean s/arch |",
              "|---|" + "---:|" * (len(counts.columns) + 1)]
    for m, row in counts.iterrows():
        lines.append(f"| {m} | " + " | ".join(str(int(v)) for v in row) + f" | {secs[m]:.3f} |")
    lines.append("")

    wide = to_wide(table).to_pandas().groupby("arch_index").mean(numeric_only=True)
    metrics = [m for m in wide.columns if m != "seed" and m in METRICS]
    acc, label = None, None
    known = _truth(str(space), truth_path)
    truth, bench = known if known is not None else (None, None)
    if truth is not None and bench is not None:
        acc = np.array([truth.get(int(i), np.nan) for i in wide.index])
        label = bench.axis_label()
    elif queried:
        acc = np.array([queried.get(int(i), np.nan) for i in wide.index])
        label = "queried accuracy"
    if acc is not None and np.isfinite(acc).sum() >= 3 and metrics:
        scores = {m: wide[m].to_numpy(dtype=float) for m in metrics}
        rows = correlate(scores, acc, {m: get_metric(m).higher_is_better for m in metrics},
                         bench.published_rho if bench is not None else None)
        png = _plot(written, scatter_metrics, scores, acc, rows, ReportDir(out).plot("metrics_vs_accuracy"), label)
        lines += [f"Rank correlation with {label} (n = {int(np.isfinite(acc).sum())} archs; rho signed by each "
                  "metric's direction):", "", format_table(rows, published=truth is not None), "", f"![metrics vs accuracy]({png.name})", ""]
    else:
        lines += ["(no accuracy known for these archs: no correlation plot)", ""]
    return lines


def _search_section(search: Path, out: Path, top_k: int, written: list[Path]) -> tuple[list[str], dict[int, float]]:
    from raynas.report.plots import search_trace, weight_trace

    sd = SearchDir(search)
    rows, cfg = sd.load_state()
    result: dict[str, Any] = sd.read_result() or {}
    tag = search.name or "search"
    lines = [f"## Search: `{search}` ({cfg.get('method', '?')})", ""]
    if not rows:
        return lines + ["(no queries yet)", ""], {}
    new = [r for r in rows if r.get("new_query", True)]
    values = np.array([r["value"] for r in new], dtype=float)
    cost = np.array([r["cumulative_cost"] for r in new], dtype=float)
    png = _plot(written, search_trace, np.arange(1, len(new) + 1), values, cost, ReportDir(out).plot(f"{tag}_trace"),
                "query value", None, result.get("query_label"))
    lines += [f"{len(new)} distinct queries, total cost {cost[-1]:.1f} s. ![trace]({png.name})", ""]
    names = result.get("weight_names")
    if names is None:  # a result written before searches named their weights: RoBoT's BO rows over its metrics
        names = (cfg.get("pool") or {}).get("metrics") or []
        chosen = [r for r in rows if r.get("kind") == "bo" and r.get("weights") is not None]
    else:  # each row's weights, as the search names them (RoBoT's proxies, LinUCB's + intercept, HNAS's t, c)
        chosen = [r for r in rows if r.get("weights") is not None and len(r["weights"]) == len(names)]
    if chosen and names:
        w = np.array([r["weights"] for r in chosen], dtype=float)
        wpng = _plot(written, weight_trace, w, names, ReportDir(out).plot(f"{tag}_weights"))
        lines += [f"Weights of each query ({', '.join(names)}): ![weights]({wpng.name})", ""]
    if result:
        lines += [f"**Result**: arch {result.get('arch_index')} `{result.get('arch', '')}`, query value "
                  f"{result.get('value')}, final {result.get('final')}, cost {result.get('cost', 0):.1f} s", ""]
    queried = {int(r["arch_index"]): float(r["value"]) for r in new}
    top = sorted(queried.items(), key=lambda kv: -kv[1])[:top_k]
    lines += [f"Top {len(top)} queried architectures:", "", "| rank | arch_index | value |", "|---:|---:|---:|"]
    lines += [f"| {i + 1} | {a} | {v:.3f} |" for i, (a, v) in enumerate(top)]
    return lines + [""], queried


def _prepare_out(out: Path, default: bool) -> None:
    """Create ``out`` and check a file can be written there; a :class:`StoreError` otherwise."""
    hint = "; write the report elsewhere with --out DIR" if default else ""
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".report.", suffix=".tmp", dir=out)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise StoreError(f"cannot write the report to {out}: {e.strerror or e}{hint}") from None


def write_report(run_dir: str | Path, truth: str | None = None, top_k: int = 10,
                 out: str | Path | None = None) -> list[Path]:
    """Write ``report.md`` and its PNGs into ``out`` (default ``RUN_DIR/report``); returns the written paths.

    Every score run's section states its completeness (:meth:`raynas.store.ScoreStore.completeness`): archs
    with rows out of the planned total, and a missing or unusable config, missing, corrupt and failed shards.

    Raises:
        StoreError: ``run_dir`` holds neither scores nor a search, or ``out`` cannot be written.
    """
    run = Path(run_dir)
    if not run.is_dir():
        raise StoreError(f"{run} is not a directory")
    scores, searches = find_runs(run)
    if not scores and not searches:
        raise StoreError(f"{run} holds neither scores (scores/) nor a search (search.json + state.parquet)")
    dest = Path(out) if out is not None else RunLayout(run).report.path
    _prepare_out(dest, default=out is None)
    lines = [f"# raynas report: `{run}`", ""]
    queried: dict[int, float] = {}
    search_lines: list[str] = []
    written: list[Path] = []
    for s in searches:
        sec, q = _search_section(s, dest, top_k, written)
        search_lines += sec
        queried.update(q)
    for s in scores:
        lines += _score_section(s, dest, truth, queried, written)
    lines += search_lines
    md = ReportDir(dest).markdown
    text = ("\n".join(lines) + "\n").encode()
    atomic_write(md, lambda f: f.write(text))
    return [md] + sorted(set(written))
