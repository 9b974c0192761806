"""A scoring driver SIGKILLed mid-run (its first shard written, its second arch scored but not written) resumes to
exactly the rows of an uninterrupted run: nothing lost, nothing duplicated, identical values (same seeds).

The driver holds itself at that point until the test kills it (:func:`raynas_tests.gates.hold_at`), so the kill
lands mid-run on a machine of any speed or load."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

pytest.importorskip("ray")

from raynas.parallel import run_scoring_from_dict  # noqa: E402
from raynas.store import ScoreStore  # noqa: E402
from raynas.testing import score_rows, tiny_score_config  # noqa: E402
from raynas_tests import SUPPORT_DIR  # noqa: E402
from raynas_tests.processes import finish, start_logged  # noqa: E402
from raynas_tests.rows import assert_same_rows  # noqa: E402
from raynas_tests.waits import TEST_LIMIT_S, WAIT_S, wait_for  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.timeout(TEST_LIMIT_S)]

REPO = Path(__file__).resolve().parents[2]
# one actor, one arch per shard: when the second arch arrives the first shard is written and the second is not
DRIVER = (
    "import json, sys\n"
    "from raynas.parallel import run_scoring_from_dict\n"
    "from raynas_tests.gates import hold_at\n"
    "run_scoring_from_dict(json.loads(sys.argv[1]), progress_callback=hold_at(2, sys.argv[2]))\n"
)
N_ARCHS = 12


def test_sigkilled_ray_driver_resumes_to_identical_rows(tmp_path: Path) -> None:
    out = tmp_path / "killed"
    cfg = tiny_score_config(out, sample=N_ARCHS, workers=1)  # Ray: a local instance started by the driver
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(SUPPORT_DIR)]), "OMP_NUM_THREADS": "1",
           "RAY_USAGE_STATS_ENABLED": "0"}
    held = tmp_path / "held"
    # own session: the driver and the local Ray it starts can be killed as one, like a lost machine
    proc = start_logged([sys.executable, "-c", DRIVER, json.dumps(cfg), str(held)], tmp_path / "driver", env=env,
                        cwd=tmp_path)
    try:
        wait_for(held.exists, "the driver scoring its second arch", proc=proc, poll=0.05)
    finally:
        # SIGKILL the driver and its local Ray (raylet, GCS, actor) at once; its log is shown if this failed
        print(finish(proc, timeout=WAIT_S, kill=True)[1][-3000:], file=sys.stderr)
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
