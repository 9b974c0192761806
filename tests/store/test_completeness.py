"""Store.completeness (issue 13, defect 7) and non-finite ``ok`` values re-labelled ``nan`` (defect 9).

Runs are opened with :func:`raynas.parallel.open_run` (the scoring planner); a store opened without a planner
cannot know the plan and says so (issue 15: the store no longer imports the planner itself).
"""

from __future__ import annotations

import dataclasses
import math

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from raynas.errors import StoreError
from raynas.parallel import open_run, plan_run
from raynas.parallel.config import ScoreConfig
from raynas.store import RunCompleteness, RunPlan, Store, open_store, results_to_table, to_wide
from raynas.testing import metric_results


def rows(arch_index: int, values: dict, status: dict | None = None) -> pa.Table:
    return results_to_table("nb201", arch_index, f"arch{arch_index}", 0, "digits", metric_results(values, status), "h")


def planned_run(tmp_path, ids=(0, 1, 2, 3, 4, 5), shard_size=2) -> Store:
    """A store whose config plans ``ids`` (sorted) in shards of ``shard_size``; no shard written yet."""
    cfg = ScoreConfig(out=str(tmp_path), space="nb201", metrics=("params", "snip"), ids=tuple(ids),
                      shard_size=shard_size, workers=0)
    store = open_run(tmp_path)
    store.save_config(cfg.resolved())
    return store


def two(*archs: int) -> pa.Table:
    return pa.concat_tables([rows(a, {"params": 1.0 + a, "snip": 2.0 + a}) for a in archs])


def test_complete_run(tmp_path):
    store = planned_run(tmp_path)
    for sid, archs in enumerate(((0, 1), (2, 3), (4, 5))):
        store.write_shard(sid, two(*archs))
    c = store.completeness()
    assert isinstance(c, RunCompleteness)
    assert c.config_present and c.config_error is None
    assert c.planned_archs == 6 and c.planned_shards == (0, 1, 2)
    assert c.present_shards == (0, 1, 2) and c.corrupt_shards == () and c.missing_shards == ()
    assert c.failed_shards == () and c.archs_present == 6 and c.archs_missing == 0 and c.archs_partial == 0
    assert dict(c.rows_by_status) == {"ok": 12}
    assert c.complete and c.problems() == []
    store.require_complete("search")  # no error
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.archs_present = 0  # type: ignore[misc]


def test_missing_corrupt_and_failed_shards(tmp_path):
    store = planned_run(tmp_path, ids=range(8), shard_size=2)
    store.write_shard(0, two(0, 1))
    store.write_shard(1, two(2, 3))
    (tmp_path / "scores" / "shard-000001.parquet").write_bytes(b"garbage")  # corrupt
    # shard 2 missing; shard 3 holds an arch whose snip failed
    store.write_shard(3, pa.concat_tables([two(6), rows(7, {"params": 1.0, "snip": None}, {"snip": "error"})]))
    c = store.completeness()
    assert c.planned_archs == 8 and c.planned_shards == (0, 1, 2, 3)
    assert c.present_shards == (0, 3)
    assert [name for name, _ in c.corrupt_shards] == ["shard-000001.parquet"]
    assert "ArrowInvalid" in c.corrupt_shards[0][1]
    assert c.missing_shards == (2,) and c.failed_shards == (3,)
    assert c.archs_present == 4 and c.archs_missing == 4
    assert dict(c.rows_by_status) == {"ok": 7, "error": 1}
    assert not c.complete
    text = "\n".join(c.problems())
    assert "1 of 4 planned shards missing (2)" in text
    assert "corrupt shard shard-000001.parquet" in text
    assert "failed rows (error/oom) in shard 3" in text
    assert "4 of 8 planned archs have no stored rows" in text
    assert "archs 4 of 8 planned" in c.summary()
    with pytest.raises(StoreError, match="incomplete.*refusing to search.*shard-000001.parquet"):
        store.require_complete("search")


def test_resharded_run_is_not_missing_shards(tmp_path):
    # a resume with another shard_size plans other shard ids; archs already stored elsewhere are not missing
    store = planned_run(tmp_path, ids=range(6), shard_size=2)
    store.write_shard(0, two(0, 1, 2, 3))
    store.write_shard(7, two(4, 5))
    c = store.completeness()
    assert c.missing_shards == () and c.present_shards == (0, 7) and c.complete


def test_archs_lacking_planned_metrics(tmp_path):
    store = planned_run(tmp_path, ids=(0, 1), shard_size=2)
    store.write_shard(0, pa.concat_tables([rows(0, {"params": 1.0, "snip": 2.0}), rows(1, {"params": 1.0})]))
    c = store.completeness()
    assert c.archs_missing == 0 and c.archs_partial == 1 and not c.complete
    assert "1 of 2 planned archs lack rows for some planned metrics" in c.problems()


def test_config_missing_or_invalid(tmp_path):
    store = open_run(tmp_path)
    store.write_shard(0, two(0, 1))
    c = store.completeness()
    assert not c.config_present and c.planned_archs is None and c.planned_shards is None
    assert c.missing_shards == () and c.archs_present == 2 and c.archs_missing is None and c.archs_partial is None
    assert not c.complete
    assert any("config.json missing" in p for p in c.problems())
    assert "of ? planned" in c.summary()
    (tmp_path / "config.json").write_text("{not json")
    c = store.completeness()
    assert c.config_present and "not valid JSON" in (c.config_error or "") and not c.complete
    store.save_config({"identity": {"space": "nb201", "sample": 3, "bogus": 1}, "volatile": {}})
    c = store.completeness()
    assert c.config_present and "bogus" in (c.config_error or "") and c.planned_archs is None


def test_footer_ok_but_data_damaged_counts_as_corrupt(tmp_path, monkeypatch):
    store = planned_run(tmp_path, ids=(0, 1), shard_size=2)
    store.write_shard(0, two(0, 1))
    real = pq.read_table

    def broken(path, *a, **k):  # type: ignore[no-untyped-def]
        raise pa.ArrowInvalid("page checksum mismatch")

    monkeypatch.setattr(pq, "read_table", broken)
    c = store.completeness()
    monkeypatch.setattr(pq, "read_table", real)
    assert c.present_shards == () and [n for n, _ in c.corrupt_shards] == ["shard-000000.parquet"]
    assert c.archs_present == 0 and not c.complete


def test_quarantined_files_are_listed(tmp_path):
    store = planned_run(tmp_path, ids=(0, 1), shard_size=2)
    store.write_shard(0, two(0, 1))
    (tmp_path / "scores" / "shard-000000.parquet").write_bytes(b"bad")
    store.quarantine(tmp_path / "scores" / "shard-000000.parquet")
    c = store.completeness()
    assert c.quarantined == ("shard-000000.parquet",) and c.missing_shards == (0,)


# --- defect 9: NaN / inf stored with status ok --------------------------------------------------------------


def nonfinite_ok() -> pa.Table:
    """Rows as a buggy writer would leave them: status ok with a NaN and an inf value."""
    t = rows(3, {"params": 5.0, "snip": float("nan"), "synflow": float("inf")})
    assert t.column("status").to_pylist() == ["ok", "ok", "ok"]
    return t


def test_nonfinite_ok_rows_relabelled_nan_on_read(tmp_path):
    store = open_store(tmp_path)
    store.scores_dir.mkdir(parents=True)
    pq.write_table(nonfinite_ok(), store.shard_path(0))  # bypasses write_shard
    t = store.read()
    by_metric = {r["metric"]: r for r in t.to_pylist()}
    assert by_metric["params"]["status"] == "ok" and by_metric["params"]["value"] == 5.0
    for m, text in (("snip", "nan"), ("synflow", "inf")):
        assert by_metric[m]["status"] == "nan" and by_metric[m]["value"] is None
        assert f"non-finite value {text}" in by_metric[m]["error"] and "status ok" in by_metric[m]["error"]
    # a column subset sees the same statuses
    assert store.read(["metric", "status"]).column("status").to_pylist() == ["ok", "nan", "nan"]
    assert dict(store.completeness().rows_by_status) == {"ok": 1, "nan": 2}
    wide = to_wide(store.read()).to_pylist()[0]
    assert wide["params"] == 5.0 and wide["snip"] is None and wide["synflow"] is None
    # nothing stored is lost: the file still holds the original rows
    raw = pq.read_table(store.shard_path(0))
    assert raw.column("status").to_pylist() == ["ok", "ok", "ok"]
    v = raw.column("value").to_pylist()
    assert v[0] == 5.0 and math.isnan(v[1]) and v[2] == math.inf


def test_write_shard_relabels_nonfinite_ok(tmp_path):
    store = open_store(tmp_path)
    store.write_shard(0, nonfinite_ok())
    raw = pq.read_table(store.shard_path(0))
    assert raw.column("status").to_pylist() == ["ok", "nan", "nan"]
    assert raw.column("value").to_pylist()[1:] == [None, None]


def test_to_wide_ignores_nonfinite_ok_values():
    wide = to_wide(nonfinite_ok()).to_pylist()[0]
    assert wide["params"] == 5.0 and wide["snip"] is None and wide["synflow"] is None
    assert not any(isinstance(v, float) and not math.isfinite(v) for v in wide.values())


# --- issue 15: the plan comes from a planner the caller supplies ---------------------------------------------


def test_plan_run_plans_as_raynas_score(tmp_path):
    store = planned_run(tmp_path, ids=(5, 1, 3), shard_size=2)
    plan = plan_run(store.flat_config(), tmp_path)
    assert plan == RunPlan((1, 3, 5), ((0, (1, 3)), (1, (5,))), ("params", "snip"), 0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.seed = 1  # type: ignore[misc]


def test_store_without_planner_does_not_claim_completeness(tmp_path):
    planned = planned_run(tmp_path, ids=(0, 1), shard_size=2)
    planned.write_shard(0, two(0, 1))
    assert planned.completeness().complete
    c = open_store(tmp_path).completeness()  # same files, no planner: the plan is unknown, never "complete"
    assert c.planned_archs is None and not c.complete
    assert any("no planner" in p for p in c.problems())


def test_completeness_uses_the_given_planner(tmp_path):
    planned_run(tmp_path, ids=(0, 1), shard_size=2).write_shard(0, two(0, 1))
    seen = []

    def planner(cfg, run_dir):  # type: ignore[no-untyped-def]
        seen.append((cfg["space"], run_dir))
        return RunPlan((0, 1, 2), ((0, (0, 1)), (1, (2,))), ("params", "snip"), 0)

    c = open_store(tmp_path, planner=planner).completeness()
    assert seen == [("nb201", tmp_path)]
    assert c.planned_archs == 3 and c.missing_shards == (1,) and c.archs_missing == 1

    def refuses(cfg, run_dir):  # type: ignore[no-untyped-def]
        raise StoreError("not mine")

    c = open_store(tmp_path, planner=refuses).completeness()
    assert c.config_error is not None and "does not describe a scoring run: not mine" in c.config_error
