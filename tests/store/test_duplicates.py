"""Issue 29 (3): keys stored twice (two writers of one run) are reported by completeness and repaired, one row per
key, the one the wide table reads kept."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from raynas.parallel import open_run
from raynas.store import results_to_table, row_keys, to_wide
from raynas.testing import metric_results, planned_score_run


def _rows(arch: int, values: dict, status: dict | None = None) -> pa.Table:
    return results_to_table("nb201", arch, f"arch{arch}", 0, "digits", metric_results(values, status), "h")


def _run_with_duplicates(tmp_path: Path) -> Path:
    run = planned_score_run(tmp_path / "run", [0, 1, 2, 3], lambda a: {"params": float(a), "snip": 10.0 + a},
                            status=lambda a: {"snip": "error"} if a == 1 else {})
    store = open_run(run)
    # a second writer stored shards 0 and 1's archs again: arch 1's snip now ok (its retry), arch 0 re-scored
    store.write_shard(7, pa.concat_tables([_rows(0, {"params": 0.0, "snip": 10.0}), _rows(1, {"snip": 11.5})]))
    return run


def test_completeness_reports_duplicate_keys(tmp_path: Path) -> None:
    c = open_run(_run_with_duplicates(tmp_path)).completeness()
    assert (c.duplicate_keys, c.duplicate_rows, c.duplicate_shards) == (3, 3, (0, 7))
    assert not c.complete
    assert ("3 (arch, metric, seed) key(s) stored more than once (3 extra row(s) in shard(s) 0, 7); raynas score "
            "--resume drops them") in c.problems()
    assert "2 with duplicate keys" in c.summary()


def test_repair_keeps_one_row_per_key_the_one_the_wide_table_reads(tmp_path: Path) -> None:
    store = open_run(_run_with_duplicates(tmp_path))
    wide_before = to_wide(store.read())
    assert store.repair_duplicates() == 3
    keys = row_keys(store.read(["arch_index", "metric", "seed"]))
    assert len(keys) == len(set(keys)) == 8
    assert to_wide(store.read()).equals(wide_before)  # the ok retry of arch 1's snip kept, the error dropped
    t = store.read(["arch_index", "metric", "status", "value"]).to_pylist()
    assert {"arch_index": 1, "metric": "snip", "status": "ok", "value": 11.5} in t
    c = store.completeness()
    assert c.duplicate_keys == 0 and c.failed_shards == () and c.complete
    assert store.repair_duplicates() == 0  # idempotent


def test_a_run_without_duplicates_is_left_alone(tmp_path: Path) -> None:
    run = planned_score_run(tmp_path / "run", [0, 1], lambda a: {"params": float(a)})
    store = open_run(run)
    mtimes = [p.stat().st_mtime_ns for p in store.shard_files()]
    assert store.repair_duplicates() == 0 and store.completeness().duplicate_keys == 0
    assert [p.stat().st_mtime_ns for p in store.shard_files()] == mtimes
