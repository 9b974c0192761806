"""Issue 29 (3, 4): one writer per run or search directory, duplicate keys shown and repaired, and always a way
back: a run whose config.json is lost is adopted from its shards, a search whose state is lost or damaged says what
is left and restarts with --restart."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow as pa
import pytest

import raynas.search.runner as runner
import raynas.search.session as session
from raynas.cli.main import main
from raynas.store import open_store, row_keys
from raynas.testing import FakeOracle, planned_score_run

TINY = ["--space", "nb201", "--C", "4", "--N", "1", "--batch-size", "8", "--image-size", "8", "--workers", "0",
        "--no-progress"]


def _hold(directory: Path, kind: str) -> subprocess.Popen:
    """Another process writing ``directory`` (``run``: a scoring run, ``search``: a search directory)."""
    opener = (f"open_store({str(directory)!r})" if kind == "run" else f"SearchDir({str(directory)!r})")
    code = textwrap.dedent(f"""
        import time
        from raynas.store import SearchDir, open_store
        claim = {opener}.claim().acquire()
        print("ready", flush=True)
        time.sleep(120)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


def _keys(run: Path) -> list:
    return row_keys(open_store(run).read(["arch_index", "metric", "seed"]))


# --- (3) one writer per run ---------------------------------------------------------------------------------------


def test_a_second_resume_of_a_run_in_use_exits_2_naming_the_holder(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture) -> None:
    run = tmp_path / "run"
    assert main(["score", *TINY, "--metrics", "params", "--sample", "3", "--shard-size", "1", "--out", str(run)]) == 0
    (run / "scores" / "shard-000002.parquet").unlink()  # something left to score
    capsys.readouterr()
    holder = _hold(run, "run")
    try:
        assert main(["score", "--resume", str(run), "--no-progress"]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"raynas: error: {run} is in use: raynas pid {holder.pid} on host ") and "\n" not in \
            err.rstrip()
        assert len(_keys(run)) == 2  # nothing scored twice
    finally:
        holder.send_signal(signal.SIGKILL)  # the lock dies with its process
        holder.wait()
    assert main(["score", "--resume", str(run), "--no-progress"]) == 0
    keys = _keys(run)
    assert len(keys) == len(set(keys)) == 3


def test_a_search_directory_in_use_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture) -> None:
    pool = _pool(tmp_path, monkeypatch)
    holder = _hold(tmp_path / "s", "search")
    try:
        assert main(["search", "robot", "--scores", str(pool), "--metrics", "params,snip", "--budget", "3",
                     "--out", str(tmp_path / "s"), "--no-progress"]) == 2
        assert f"is in use: raynas pid {holder.pid}" in capsys.readouterr().err
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()


def test_show_reports_duplicate_keys_and_resume_repairs_them(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    run = tmp_path / "run"
    assert main(["score", *TINY, "--metrics", "params", "--sample", "3", "--shard-size", "1", "--out", str(run)]) == 0
    store = open_store(run)
    # what two resumes with different --shard-size left: the same keys in a second shard
    store.write_shard(9, pa.concat_tables([store.read()]))
    capsys.readouterr()
    assert main(["show", str(run)]) == 0
    shown = capsys.readouterr().out
    assert ("3 (arch, metric, seed) key(s) stored more than once (3 extra row(s) in shard(s) 0, 1, 2, 9); raynas "
            "score --resume drops them") in shown
    assert main(["score", "--resume", str(run), "--no-progress"]) == 0
    keys = _keys(run)
    assert len(keys) == len(set(keys)) == 3
    capsys.readouterr()
    assert main(["show", str(run)]) == 0
    assert "stored more than once" not in capsys.readouterr().out


# --- (4a) a lost config.json --------------------------------------------------------------------------------------


def test_a_run_without_its_config_is_adopted_from_its_shards(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    run = tmp_path / "run"
    assert main(["score", *TINY, "--metrics", "params,naswot", "--sample", "3", "--seed", "2", "--shard-size", "1",
                 "--out", str(run)]) == 0
    original = json.loads((run / "config.json").read_text())
    rows = sorted(open_store(run).read(["arch_index", "metric", "value"]).to_pylist(), key=str)
    (run / "config.json").unlink()
    capsys.readouterr()
    assert main(["score", "--resume", str(run), "--no-progress"]) == 2
    assert "holds shard files but no run config (config.json): pass --adopt" in capsys.readouterr().err
    assert main(["score", "--resume", str(run), "--sample", "3", "--no-progress"]) == 2  # a selection alone: same
    assert "pass --adopt" in capsys.readouterr().err

    assert main(["score", "--resume", str(run), "--adopt", "--C", "4", "--N", "1", "--workers", "0",
                 "--no-progress"]) == 0
    adopted = json.loads((run / "config.json").read_text())["identity"]
    for key in ("space", "seed", "data", "batch_size", "image_size", "space_kwargs"):
        assert adopted[key] == original["identity"][key], key
    assert sorted(adopted["metrics"]) == ["naswot", "params"] and sorted(adopted["ids"]) == sorted(
        {r["arch_index"] for r in rows})
    assert sorted(open_store(run).read(["arch_index", "metric", "value"]).to_pylist(), key=str) == rows
    capsys.readouterr()
    assert main(["show", str(run)]) == 0
    assert "completeness: complete" in capsys.readouterr().out


def test_adopting_into_the_original_selection_scores_what_was_lost(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture) -> None:
    run = tmp_path / "run"
    argv = ["score", *TINY, "--metrics", "params", "--sample", "3", "--shard-size", "1", "--out", str(run)]
    assert main(argv) == 0
    before = sorted(open_store(run).read(["arch_index", "metric", "value"]).to_pylist(), key=str)
    (run / "config.json").unlink()
    (run / "scores" / "shard-000001.parquet").unlink()
    # a flag that contradicts the shards is named, and nothing is written
    assert main(["score", "--resume", str(run), "--adopt", "--seed", "5", "--sample", "3", "--C", "4", "--N", "1",
                 "--workers", "0", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "cannot adopt the shards of" in err and "seed: the shards hold [0], the config 5" in err
    assert not (run / "config.json").exists()
    assert main(["score", "--resume", str(run), "--adopt", "--sample", "3", "--shard-size", "1", "--C", "4", "--N",
                 "1", "--workers", "0", "--no-progress"]) == 0
    assert sorted(open_store(run).read(["arch_index", "metric", "value"]).to_pylist(), key=str) == before
    assert json.loads((run / "config.json").read_text())["identity"]["sample"] == 3


def test_adopt_is_refused_where_it_makes_no_sense(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    run = tmp_path / "run"
    assert main(["score", *TINY, "--metrics", "params", "--ids", "1", "--out", str(run)]) == 0
    capsys.readouterr()
    assert main(["score", "--resume", str(run), "--adopt", "--no-progress"]) == 2
    assert "--adopt is only for a run whose config.json is lost" in capsys.readouterr().err
    assert main(["score", *TINY, "--metrics", "params", "--ids", "1", "--adopt", "--out", str(tmp_path / "x")]) == 2
    assert "give it with --resume RUN" in capsys.readouterr().err


# --- (4b) a lost or damaged search state --------------------------------------------------------------------------


def _pool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    ids = list(range(0, 40, 3))
    monkeypatch.setattr(session, "make_oracle", lambda *a, **k: FakeOracle(ids, [float(i % 7) for i in ids]))
    monkeypatch.setenv("RAYNAS_DATA", str(tmp_path / "no_data"))
    return planned_score_run(tmp_path / "pool", ids, lambda a: {"params": 1.0 + a, "snip": float((a * 7) % 5)})


def _robot(pool: Path, out: Path, *flags: str) -> int:
    return main(["search", "robot", "--scores", str(pool), "--metrics", "params,snip", "--budget", "3",
                 "--out", str(out), "--no-progress", *flags])


def test_a_resume_without_its_state_exits_2_with_what_is_left_and_restart(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch,
                                                                          capsys: pytest.CaptureFixture) -> None:
    pool, out = _pool(tmp_path, monkeypatch), tmp_path / "s"
    assert _robot(pool, out) == 0
    result = json.loads((out / "result.json").read_text())
    (out / "state.parquet").unlink()
    capsys.readouterr()
    assert _robot(pool, out, "--resume") == 2  # before: a silent restart from step 0
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith(f"raynas: error: cannot resume {out}: its search state (state.parquet) "
                                              "is missing; what is left: its config (search.json), the finished "
                                              f"result (result.json: arch {result['arch_index']}, the 3 queries' "
                                              "values)")
    assert err.endswith("Pass --restart to start the search over there (this replaces it), or give another --out")
    assert not (out / "state.parquet").exists()
    assert _robot(pool, out, "--restart") == 0
    assert (out / "state.parquet").exists() and json.loads((out / "result.json").read_text())["queries"] == 3


def test_a_resume_with_a_damaged_state_exits_2_with_the_way_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture) -> None:
    pool, out = _pool(tmp_path, monkeypatch), tmp_path / "s"
    assert _robot(pool, out) == 0
    (out / "state.parquet").write_bytes(b"not an arrow file")
    capsys.readouterr()
    assert _robot(pool, out, "--resume") == 2
    err = capsys.readouterr().err
    assert f"cannot resume {out}: search state {out / 'state.parquet'} is corrupt or not an Arrow file" in err
    assert "what is left: its config (search.json), the finished result" in err and "Pass --restart" in err
    assert _robot(pool, out, "--resume", "--restart") == 0


def test_a_search_refused_before_its_first_state_leaves_no_directory(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    pool, out = _pool(tmp_path, monkeypatch), tmp_path / "s"

    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise KeyboardInterrupt

    monkeypatch.setattr(session, "run_with_executor", broken)
    assert _robot(pool, out) == 130
    assert not out.exists()
    monkeypatch.undo()
    monkeypatch.setattr(session, "make_oracle", lambda *a, **k: FakeOracle(range(0, 40, 3), [1.0] * 14))
    assert _robot(pool, out) == 0  # the same command, no "already holds a search"
