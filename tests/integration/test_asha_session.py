"""ASHA on the one Ray session owner (issue 30 item 5) and Tune's advice kept off the terminal (issue 29 item 9).

* A trial no node can run is refused before any trial, on a Ray with *logical* GPUs (none physical here), and
  a Ray that was running before is left running.
* Without a running Ray, ASHA starts one through :mod:`raynas.parallel.session` and stops it afterwards; Tune's
  "experiment state snapshotting" warnings go to the experiment's log file only, while a failed trial's error
  still reaches the terminal (and the file).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("ray.tune")

import ray  # noqa: E402

from raynas.parallel.resources import ResourceRequestError  # noqa: E402
from raynas.tune.asha import run_asha  # noqa: E402
from raynas_tests.waits import TEST_LIMIT_S, WAIT_S  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.timeout(TEST_LIMIT_S)]

CONV = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
BAD = "|bogus~0|"
TINY = dict(space_kwargs={"C": 4, "N": 1}, input_size=8, max_train=64, max_val=32, device="cpu",
            max_concurrent_trials=1)
TRAIN = {"batch_size": 32, "lr": 0.05}


@pytest.fixture
def no_ray(monkeypatch: pytest.MonkeyPatch) -> None:
    """No Ray running and none named: ASHA must start (and stop) a local one."""
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    if ray.is_initialized():
        ray.shutdown()


def test_a_trial_no_node_can_run_is_refused_before_any_trial_on_logical_gpus(tmp_path: Path, no_ray: None) -> None:
    ray.init(num_cpus=2, num_gpus=2, include_dashboard=False, log_to_driver=False)  # 2 logical GPUs
    try:
        with pytest.raises(ResourceRequestError, match=r"an ASHA trial asks 1 CPU, 3 GPU, more than any node") as e:
            run_asha([CONV], "nb201", "digits", TRAIN, max_epochs=1, gpus_per_trial=3.0,
                     storage_path=tmp_path / "tune", name="asha", **TINY)
        assert "gpus_per_trial=2" in str(e.value)  # what to pass instead: the most a node has
        assert not (tmp_path / "tune").exists()  # no trial, no experiment, no log
        assert ray.is_initialized()  # a Ray ASHA did not start is left running

        # what a node can run does run: one logical GPU per trial, trained on CPU
        (ok,) = run_asha([CONV], "nb201", "digits", TRAIN, max_epochs=1, gpus_per_trial=1.0,
                         storage_path=tmp_path / "tune", name="asha", **TINY)
        assert ok.status == "completed" and ok.val_acc is not None
        assert ray.is_initialized()
    finally:
        ray.shutdown()


#: ASHA in a process of its own (its stderr is the terminal a user sees; in this process Ray's log handler writes
#: to whatever stream pytest had when Ray was imported), on a Ray it starts itself
ASHA_SCRIPT = """
import json, sys
import ray
from raynas.tune.asha import run_asha
kw = json.loads(sys.argv[1])
trials = run_asha(kw.pop("archs"), "nb201", "digits", kw.pop("train"), **kw)
print("RESULT " + json.dumps({"status": [t.status for t in trials], "ray_left": ray.is_initialized()}))
"""


def test_asha_starts_and_stops_its_ray_and_keeps_tunes_advice_in_its_log(tmp_path: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "RAY_USAGE_STATS_ENABLED": "0",
           # Tune warns when forced snapshots come closer than this (default 5 s, met only by fast epochs): an
           # hour makes every forced snapshot after the first warn, whatever this machine's speed
           "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "3600"}
    env.pop("RAY_ADDRESS", None)  # nothing named: ASHA starts a local Ray
    kw = dict(archs=[CONV, BAD], train=TRAIN, max_epochs=4, grace_period=4, storage_path=str(tmp_path / "tune"),
              name="asha", **TINY)
    proc = subprocess.run([sys.executable, "-c", ASHA_SCRIPT, json.dumps(kw)], capture_output=True, text=True,
                          env=env, timeout=WAIT_S)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    result = json.loads(line[len("RESULT "):])
    assert result == {"status": ["completed", "failed"], "ray_left": False}  # the Ray it started is stopped
    err = proc.stderr
    log = (tmp_path / "tune" / "asha.log").read_text(encoding="utf-8")
    assert "Experiment state snapshotting has been triggered multiple times" in log
    assert "snapshotting" not in err  # advice about Tune's bookkeeping: the log file only
    assert "Token authentication is enabled" not in err and "Started a local Ray instance" not in err
    # something wrong still reaches the terminal, and the file
    assert "Trial task failed" in err and "InvalidArchitectureError" in err
    assert "ERROR ray.tune" in log and "InvalidArchitectureError" in log
