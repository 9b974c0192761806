"""The human-readable lines of a search result, as ``raynas search METHOD`` prints them.

Kept out of the CLI so every front end (the CLI, scripts, notebooks) formats a result the same way: the trace
table (one line per step), then after the result's JSON the budget actually used, why the search ended, the pool
(and what its score runs lack) and the benchmark's answer for the chosen arch.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping


def trace_lines(trace: Iterable[Mapping[str, Any]] | None) -> list[str]:
    """The trace table: a header and one line per step (step, kind, arch, value, cumulative cost, weights);
    no lines for an empty or missing trace."""
    rows = list(trace or [])
    if not rows:
        return []
    lines = [f"{'step':>4} {'kind':6} {'arch':>6} {'value':>8} {'cum. cost':>10}  weights"]
    for r in rows:
        w = " ".join(f"{v:+.2f}" for v in (r.get("weights") or []))
        lines.append(f"{r['step']:>4} {r['kind']:6} {r['arch_index']:>6} {r['value']:>8.3f} "
                     f"{r['cumulative_cost']:>10.1f}  {w}")
    return lines


#: what each ``stop`` of a query search's result means (:meth:`raynas.search.base.QuerySearch.stop_reason`)
STOP_TEXT = {
    "budget": "the budget was spent",
    "pool_exhausted": "every arch the search can propose was queried (or its query failed)",
    "patience": "the BO kept re-proposing queried archs (patience)",
    "max_iters": "the BO iteration cap (max_iters) was reached",
}


def summary_lines(result: Mapping[str, Any]) -> list[str]:
    """Human lines after a search's JSON: the budget actually used, why the search ended (``stop``), the pool
    (and what its runs lack), and the benchmark's answer for the chosen arch (e.g. NAS-Bench-201: 200-epoch test
    accuracy and rank)."""
    lines = []
    budget, asked = result.get("budget"), result.get("budget_requested")
    if budget is not None:
        capped = f" (requested {asked}, capped to the pool size {result.get('pool_size')})" if asked != budget else ""
        most = result.get("bo_iters", result.get("max_iters"))  # RoBoT's BO phase / HNAS's whole search
        iters = f", BO iterations at most {most}" if most is not None else ""
        lines.append(f"budget: {budget} distinct queries{capped}{iters}")
    stop = result.get("stop")
    if stop is not None:
        lines.append(f"ended after {result.get('queries')} distinct queries: {STOP_TEXT.get(stop, stop)}")
    pool = result.get("pool")
    if isinstance(pool, dict):
        state = (f"the published table {pool['published']} (no score run)" if pool.get("published") else
                 "complete score run" if pool.get("complete") else "INCOMPLETE score run (--allow-incomplete)")
        lines.append(f"pool: {pool.get('size')} archs searched, {state}")
        for run in pool.get("runs") or []:
            lines.append(f"  {run['run']}: {run['summary']}")
            lines += [f"    {p}" for p in run.get("problems") or []]
    answer = benchmark_line(result)
    if answer is not None:
        lines.append(answer)
    return lines


def benchmark_line(result: Mapping[str, Any]) -> str | None:
    """The benchmark line of the chosen arch: from the result when the search stored it, else looked up
    (:func:`raynas.oracles.base.benchmark_answer`; None for spaces without a benchmark table)."""
    stored = result.get("benchmark")
    if isinstance(stored, dict):
        return stored.get("line")
    from raynas.oracles.base import benchmark_answer

    answer = benchmark_answer(str(result.get("space", "")), result.get("arch_index"))
    return answer.line if answer is not None else None
