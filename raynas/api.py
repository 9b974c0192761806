"""Library entry points the CLI calls (one function per command)."""

from __future__ import annotations

from typing import Iterator


def describe_registry(what: str) -> Iterator[str]:
    """One line per registered entry of ``what`` (spaces, metrics, datasets, oracles)."""
    if what == "metrics":
        from raynas.metrics import METRICS, list_metrics

        for name in list_metrics():
            s = METRICS.get(name)
            flags = [
                "labels" if s.needs_labels else "no-labels",
                "data" if s.needs_data else "data-free",
                f"bn={s.bn}",
                str(s.dtype).replace("torch.", ""),
                "higher-better" if s.higher_is_better else "lower-better",
            ]
            yield f"{name:18s} {' '.join(flags):60s} {s.reference}"
    elif what == "spaces":
        from raynas.spaces import create_space, list_spaces

        for name in list_spaces():
            yield f"{name:16s} size={create_space(name).size}"
    elif what == "datasets":
        from raynas.data import DATASETS

        for name in DATASETS.names():
            yield name
    elif what == "oracles":
        from raynas.search.oracle import ORACLES

        for name in ORACLES.names():
            yield name


def show_run(run_dir: str) -> Iterator[str]:
    """Status lines of a score run: shards done / missing / corrupt, rows by status, per-metric counts."""
    import json
    from pathlib import Path

    from raynas.errors import StoreError
    from raynas.store import ScoreStore

    run = Path(run_dir)
    if not (run / "scores").is_dir() and not (run / "config.json").exists():
        raise StoreError(f"{run} is not a score run directory (no scores/ and no config.json)")
    store = ScoreStore(run)
    full_cfg = store.load_config() or {}
    cfg = full_cfg.get("identity", full_cfg)
    good, bad = store.verify()
    table = store.read()
    yield f"run: {run}"
    if cfg:
        shown = {k: cfg.get(k) for k in ("space", "metrics", "sample", "all", "seed", "data", "batch_size") if k in cfg}
        yield f"config: {json.dumps(shown, default=str)}"
    planned: set[int] | None = None
    if cfg:
        from raynas.config import from_dict
        from raynas.parallel.config import ScoreConfig
        from raynas.parallel.shards import plan_shards, select_ids
        from raynas.spaces import create_space

        sc = from_dict(ScoreConfig, {**cfg, "out": str(run)})
        ids = select_ids(create_space(sc.space), sc)
        planned = {s.shard_id for s in plan_shards(ids, sc.shard_size)}
    done_ids = store.shard_ids()
    yield f"shards: {len(good)} done" + (f", {len(planned - done_ids)} missing" if planned is not None else "") + (
        f", {len(bad)} corrupt" if bad else ""
    )
    for path, reason in bad:
        yield f"  corrupt: {path.name}: {reason}"
    if table.num_rows:
        archs = len(set(table.column("arch_index").to_pylist()))
        yield f"archs scored: {archs}"
        df = table.select(["metric", "status"]).to_pandas()
        counts = df.groupby(["metric", "status"]).size().unstack(fill_value=0)
        yield "rows by metric and status:"
        for line in counts.to_string().splitlines():
            yield f"  {line}"
        failed = counts.drop(columns=["ok"], errors="ignore").sum().sum()
        yield f"failed rows: {int(failed)}"
    else:
        yield "archs scored: 0"
