"""SearchDir: a search directory's files, each written atomically and read back as written."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from raynas.errors import StoreError
from raynas.store import SearchDir, prepare_search
from raynas.store.search_dir import read_trials, write_trials

TRIAL = {"arch": "|a|", "val_acc": 91.5, "epochs": 3, "stopped_early": False, "checkpoint": None,
         "status": "completed", "error": None, "trial_id": "t0"}


def _no_temp_files(d):  # type: ignore[no-untyped-def]
    return not [p for p in d.iterdir() if p.name.startswith(".")]


def test_prepare_stores_the_config_and_guards_resume(tmp_path):
    out = tmp_path / "s"
    sd = prepare_search(out, {"budget": 3, "out": str(out), "resume": False}, resume=False)
    assert sd == SearchDir(out) and sd.resumable()
    assert json.loads(sd.config_path.read_text()) == {"budget": 3, "out": str(out), "resume": False}
    with pytest.raises(StoreError, match="already holds a search"):
        sd.prepare({"budget": 3}, resume=False)
    # volatile keys may change on resume, anything else may not
    sd.prepare({"budget": 3, "out": "elsewhere", "resume": True, "allow_incomplete": True}, resume=True)
    with pytest.raises(StoreError, match=r"config differs in \['budget'\]"):
        sd.prepare({"budget": 4}, resume=True)
    sd.config_path.write_text("[1]")
    with pytest.raises(StoreError, match="not a JSON object"):
        sd.prepare({}, resume=True)


def test_result_round_trip_and_corruption(tmp_path):
    sd = SearchDir(tmp_path)
    assert sd.read_result() is None
    sd.write_result({"arch_index": 3, "value": 90.5})
    assert sd.read_result() == {"arch_index": 3, "value": 90.5} and _no_temp_files(tmp_path)
    sd.result_path.write_text("{torn")
    with pytest.raises(StoreError, match="unreadable or corrupt"):
        sd.read_result()


def test_state_round_trip(tmp_path):
    sd = SearchDir(tmp_path / "s")
    assert not sd.has_state()
    row = {"step": 0, "kind": "init", "weights": [0.5], "arch_index": 1, "value": 2.0, "cost": 1.0,
           "cumulative_cost": 1.0, "new_query": True}
    sd.save_state([row], {"method": "x"})
    assert sd.has_state() and sd.load_state() == ([row], {"method": "x"})


def test_trials_round_trip(tmp_path):
    sd = SearchDir(tmp_path)
    assert not sd.has_trials()
    sd.write_trials([TRIAL, {**TRIAL, "arch": "|b|", "val_acc": None, "status": "failed", "error": "boom"}])
    assert sd.has_trials() and _no_temp_files(tmp_path)
    rows = sd.read_trials()
    assert rows[0] == TRIAL and rows[1]["error"] == "boom" and read_trials(sd.trials_path) == rows


def test_trials_errors_name_the_table(tmp_path):
    with pytest.raises(StoreError, match="cannot read ASHA trial table"):
        read_trials(tmp_path / "absent.parquet")
    with pytest.raises(StoreError, match="cannot write ASHA trial table"):
        write_trials(tmp_path / "t.parquet", [{**TRIAL, "epochs": "three"}])
    assert not (tmp_path / "t.parquet").exists()


def test_tenas_round_trip(tmp_path):
    sd = SearchDir(tmp_path / "t")
    assert sd.read_tenas_result() is None
    sd.write_tenas({"arch": "|x|", "config": {"seed": 0}}, [{"round": 0, "op": "none", "pruned": True}])
    assert sd.read_tenas_result() == {"arch": "|x|", "config": {"seed": 0}}
    assert pq.read_table(sd.tenas_rounds_path).to_pylist() == [{"round": 0, "op": "none", "pruned": True}]
    assert _no_temp_files(sd.path)
    sd.tenas_result_path.write_text("nope")
    with pytest.raises(StoreError, match="cannot read"):
        sd.read_tenas_result()
