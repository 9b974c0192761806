"""A Ray scoring run's terminal holds raynas's lines only (issue 29 item 9): not Ray's ``core_worker.cc ...
max_restarts`` error (an actor constructor argument in the object store, printed once per driver process), nor its
token-auth announcement, nor its INFO start line.

The run is a fresh ``raynas score`` process with its own local Ray: Ray prints the ``core_worker`` line at most
once per process, so only a process of its own shows whether a run prints it. The batch is the default 64
images of 32x32 (768 KiB, over Ray's 100 KiB inline limit: the size that Ray put in the object store even when
passed by value).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("ray")

from raynas_tests.waits import TEST_LIMIT_S, WAIT_S  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.timeout(TEST_LIMIT_S)]

#: what Ray prints that raynas's users should not see on a run where nothing is wrong
RAY_NOISE = ("core_worker.cc", "constructor arguments in the object store", "max_restarts",
             "Token authentication is enabled", "Started a local Ray instance")


def test_a_ray_scoring_run_prints_none_of_rays_noise(tmp_path: Path) -> None:
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_ADDRESS", None)
    proc = subprocess.run(
        [sys.executable, "-m", "raynas.cli.main", "score", "--metrics", "params,grad_norm", "--sample", "2",
         "--shard-size", "1", "--C", "4", "--N", "1", "--workers", "2", "--max-retries", "2", "--out", str(out),
         "--no-progress"],
        capture_output=True, text=True, env=env, timeout=WAIT_S)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "outcome: ok" in proc.stdout
    assert "actors:" in proc.stdout and proc.stdout.count("'pid'") == 2  # two actors really scored
    noise = [line for line in proc.stderr.splitlines() if any(n in line for n in RAY_NOISE)]
    assert not noise, "\n".join(noise)
