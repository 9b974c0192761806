"""A scoring driver SIGKILLed mid-run (after its first shard file appears) resumes to exactly the rows of an
uninterrupted run: nothing lost, nothing duplicated, identical values (same seeds)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("ray")

from raynas.parallel import run_scoring_from_dict  # noqa: E402
from raynas.store import ScoreStore  # noqa: E402
from raynas.testing import score_rows, tiny_score_config  # noqa: E402
from raynas_tests.processes import kill_session  # noqa: E402
from raynas_tests.rows import assert_same_rows  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

REPO = Path(__file__).resolve().parents[2]
DRIVER = (
    "import json, sys\n"
    "from raynas.parallel import run_scoring_from_dict\n"
    "run_scoring_from_dict(json.loads(sys.argv[1]))\n"
)
N_ARCHS = 12


def test_sigkilled_ray_driver_resumes_to_identical_rows(tmp_path: Path) -> None:
    out = tmp_path / "killed"
    cfg = tiny_score_config(out, sample=N_ARCHS, workers=1)  # Ray: a local instance started by the driver
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "RAY_USAGE_STATS_ENABLED": "0"}
    log = (tmp_path / "driver.log").open("wb")
    # own session: the driver and the local Ray it starts can be killed as one, like a lost machine
    proc = subprocess.Popen([sys.executable, "-c", DRIVER, json.dumps(cfg)], env=env, cwd=tmp_path,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not ScoreStore(out).shard_ids():
            if proc.poll() is not None:
                pytest.fail(f"driver exited early ({proc.returncode}): {(tmp_path / 'driver.log').read_text()[-2000:]}")
            if time.monotonic() > deadline:
                pytest.fail("no shard file appeared within 120 s")
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        kill_session(proc.pid)  # the orphaned local Ray (raylet, GCS, actor) of the killed driver
        log.close()
    written = len(ScoreStore(out).shard_ids())
    assert 1 <= written < N_ARCHS, f"the driver was not killed mid-run ({written} shards written)"

    summary = run_scoring_from_dict({**cfg, "resume": True, "workers": 0})
    assert summary["already_done"] == written and summary["scored"] == N_ARCHS - written
    assert summary["corrupt_shards"] == []

    reference = tmp_path / "reference"
    run_scoring_from_dict(tiny_score_config(reference, sample=N_ARCHS))
    resumed, ref = score_rows(out), score_rows(reference)
    assert len(resumed) == len(ref) == N_ARCHS * 3
    assert_same_rows(resumed, ref)  # row by row: (arch_index, metric, seed, value, status)
