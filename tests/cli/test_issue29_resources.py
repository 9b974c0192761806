"""Issue 29 (1): a GPU request that no node can meet fails fast (exit 2, one line: what exists, what to pass)
instead of a search that sits at ``0 step`` forever."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from raynas.cli.main import main
from raynas.testing import planned_score_run


def _pool(tmp_path: Path) -> Path:
    return planned_score_run(tmp_path / "pool", list(range(0, 12, 3)),
                             lambda a: {"params": 1.0 + a, "snip": float(a % 4)})


@pytest.mark.timeout(120)
def test_robot_with_a_gpu_per_query_on_a_machine_without_gpus_exits_2_before_any_work(tmp_path: Path) -> None:
    pool, out = _pool(tmp_path), tmp_path / "search"
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}  # this machine has no GPU, whatever it really has
    env.pop("RAY_ADDRESS", None)
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "raynas.cli.main", "search", "robot", "--scores", str(pool), "--metrics",
         "params,snip", "--oracle", "train", "--q", "2", "--query-backend", "ray", "--gpus-per-query", "1",
         "--out", str(out), "--no-progress"],
        capture_output=True, text=True, env=env, timeout=110)
    assert proc.returncode == 2, proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("raynas: error: a query task asks 1 CPU, 1 GPU, more than any node of this machine's "
                           "local Ray has (1 node: ")
    assert line.endswith("it could never start: pass --gpus-per-query 0, or --address of a Ray cluster with "
                         "such nodes")
    assert not out.exists()  # refused before the search directory was made
    assert time.perf_counter() - t0 < 60  # no Ray was started to find out


def test_pipeline_refuses_gpu_queries_before_scoring(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture) -> None:
    import raynas.parallel
    from raynas.parallel import session

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setattr(session, "local_resources", lambda *a: {"CPU": 2.0, "GPU": 0.0})
    monkeypatch.setattr(raynas.parallel, "run_scoring", lambda *a, **k: pytest.fail("scored before the check"))
    rc = main(["search", "pipeline", "--out", str(tmp_path / "p"), "--set", "search.query_backend=ray",
               "--set", "search.gpus_per_query=1", "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and "a query task asks 1 CPU, 1 GPU" in err
    assert "pass --set search.gpus_per_query=0" in err
    assert not (tmp_path / "p").exists()
