"""A real Ray Tune ASHA run on CPU: 4 tiny NB201 nets on a digits subset (+ one failing trial).

Trials run one at a time in grid order, so the ASHA decisions are deterministic: the all-``none`` cell (chance
accuracy) is recorded at a rung after the conv cell and is stopped early.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

pytest.importorskip("ray.tune")

import ray  # noqa: E402

from raynas.tune.asha import best_trial, read_trials, run_asha  # noqa: E402
from raynas.tune.trainable import CHECKPOINT_FILE  # noqa: E402
from raynas_tests.waits import TEST_LIMIT_S  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.timeout(TEST_LIMIT_S)]

ARCHS = [
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|",
    "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
    "|nor_conv_1x1~0|+|skip_connect~0|nor_conv_3x3~1|+|avg_pool_3x3~0|skip_connect~1|nor_conv_1x1~2|",
    "|avg_pool_3x3~0|+|none~0|avg_pool_3x3~1|+|none~0|none~1|avg_pool_3x3~2|",
]
BAD = "|bogus~0|"
KW = dict(space_kwargs={"C": 4, "N": 1}, input_size=16, max_train=300, max_val=100, device="cpu",
          max_concurrent_trials=1)


@pytest.fixture(scope="module")
def ray_cluster():
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    if started:
        ray.shutdown()


def test_asha_stops_bad_archs_early_and_keeps_the_best_checkpoint(tmp_path, ray_cluster):
    trials = run_asha(ARCHS + [BAD], "nb201", "digits", {"batch_size": 32, "lr": 0.05}, max_epochs=4,
                      grace_period=1, reduction_factor=2, storage_path=tmp_path / "tune", name="asha", **KW)
    assert [t.arch for t in trials] == ARCHS + [BAD]
    by = {t.arch: t for t in trials}
    ok = [by[a] for a in ARCHS]
    assert all(t.status in ("completed", "stopped") and 1 <= t.epochs <= 4 for t in ok)
    # early stopping happened: the chance-level all-none cell ran fewer epochs than the maximum
    assert any(t.stopped_early and t.epochs < 4 for t in ok)
    assert by[ARCHS[1]].stopped_early and by[ARCHS[1]].val_acc == pytest.approx(10.0, abs=5.0)
    assert by[ARCHS[0]].epochs == 4  # the first trial is always promoted (nothing recorded before it)
    # a failing trial is recorded with its reason and the run went on
    assert by[BAD].status == "failed" and "InvalidArchitectureError" in by[BAD].error and by[BAD].val_acc is None
    # the best trial's checkpoint is on disk and loads
    best = best_trial(trials)
    assert best.status == "completed" and best.val_acc == max(t.val_acc for t in ok)
    ckpt = Path(best.checkpoint) / CHECKPOINT_FILE
    assert ckpt.is_file()
    state = torch.load(ckpt, weights_only=True)
    assert 1 <= state["epoch"] <= best.epochs
    # per-trial results stored as Parquet beside the experiment
    assert read_trials(tmp_path / "tune" / "asha_trials.parquet") == trials

    # resuming the finished experiment restores it without training again
    again = run_asha(ARCHS + [BAD], "nb201", "digits", {"batch_size": 32, "lr": 0.05}, max_epochs=4,
                     grace_period=1, reduction_factor=2, storage_path=tmp_path / "tune", name="asha", resume=True,
                     **KW)
    assert [(t.arch, t.status, t.epochs, t.val_acc) for t in again] == \
        [(t.arch, t.status, t.epochs, t.val_acc) for t in trials]
