"""The README main-job command, with reduced sizes, run as a real subprocess (Ray actors, real training)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from raynas_tests.processes import finish, start_logged
from raynas_tests.waits import TEST_LIMIT_S, WAIT_S

pytestmark = [pytest.mark.integration, pytest.mark.timeout(TEST_LIMIT_S)]


def _run(cmd: list[str], env: dict[str, str], log_stem: Path) -> tuple[int, str, str]:
    """Run ``cmd`` in its own session to the end (no tighter bound than a wait only a hung run reaches), then stop
    whatever it left running (its local Ray); returns ``(returncode, stdout, stderr)``."""
    proc = start_logged(cmd, log_stem, env=env)
    out, err = finish(proc, timeout=WAIT_S)
    return proc.returncode, out, err


def test_main_job_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    cmd = [
        sys.executable, "-m", "raynas.cli.main", "search", "pipeline", "--out", str(out), "--no-progress",
        "--set", "scoring.sample=6", "--set", "scoring.C=4", "--set", "scoring.N=1", "--set", "scoring.batch_size=8",
        "--set", "scoring.metrics=[grad_norm,snip,synflow,naswot]", "--set", "search.budget=3",
        "--set", "oracle.epochs=1", "--set", "oracle.C=4",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    rc, stdout, stderr = _run(cmd, env, tmp_path / "first")
    assert rc == 0, stderr[-3000:]
    assert "chosen architecture |" in stdout and "% validation accuracy on digits" in stdout
    # the scored sample: 6 archs x 4 metrics, Parquet shards written by the Ray actors
    shards = sorted((out / "scores").glob("shard-*.parquet"))
    table = pq.ParquetDataset([str(p) for p in shards]).read()
    assert table.num_rows == 24
    assert set(table.column("metric").to_pylist()) == {"grad_norm", "snip", "synflow", "naswot"}
    # the search state and result, and the report with its plots
    for f in ("robot/search.json", "robot/state.parquet", "robot/result.json", "report/report.md",
              "report/robot_trace.png", "report/robot_weights.png"):
        assert (out / f).exists(), f
    md = (out / "report" / "report.md").read_text()
    assert "## Search:" in md and "Top 3 queried architectures" in md
    # re-running the same command resumes: nothing is rescored, the finished search is read back
    rc, _stdout, stderr = _run(cmd, env, tmp_path / "again")
    assert rc == 0, stderr[-3000:]
    assert sorted((out / "scores").glob("shard-*.parquet")) == shards
