"""The Tune trainable without a Ray cluster: epoch reports, checkpoints, exact resume, data cache, bad configs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

pytest.importorskip("ray.tune")

from ray import tune  # noqa: E402

import raynas.tune.trainable as tr  # noqa: E402
from raynas.errors import ConfigError, InvalidArchitectureError  # noqa: E402
from raynas.oracles.training import TrainingOracle  # noqa: E402
from raynas_tests.nb201 import NB201_CONV3  # noqa: E402

TRAIN = {"epochs": 3, "batch_size": 8, "lr": 0.05, "seed": 3}


def _data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 3, 8, 8, generator=g)
    y = torch.randint(4, (40,), generator=g)
    x[y == 1, 0] += 1.5  # make the labels partly learnable
    return (x[:32], y[:32]), (x[32:], y[32:]), 4


@pytest.fixture
def data(monkeypatch):
    calls = []

    def fake_load(*key):
        calls.append(key)
        return _data()

    monkeypatch.setattr(tr, "load_train_data", fake_load)
    tr._DATA.clear()
    yield calls
    tr._DATA.clear()


def _config(**kw):
    return {"arch": NB201_CONV3, "space_kwargs": {"C": 4, "N": 1}, "input_size": 8, "train": TRAIN, "device": "cpu",
            **kw}


class Recorder:
    """Collects reports and keeps a copy of every checkpoint directory (the trainable deletes its temp dir)."""

    def __init__(self, root: Path):
        self.root, self.metrics, self.ckpts = root, [], []

    def __call__(self, metrics, checkpoint):
        self.metrics.append(metrics)
        dst = self.root / f"ckpt_{len(self.ckpts)}"
        shutil.copytree(checkpoint, dst)
        self.ckpts.append(dst)


def test_reports_every_epoch_with_a_checkpoint(tmp_path, data):
    rec = Recorder(tmp_path)
    last = tr.run_trial(_config(), rec)
    assert [m["epoch"] for m in rec.metrics] == [1, 2, 3]
    assert all(0.0 <= m["val_acc"] <= 100.0 and m["train_loss"] > 0 for m in rec.metrics)
    assert last == rec.metrics[-1]["val_acc"]
    assert all((d / tr.CHECKPOINT_FILE).is_file() for d in rec.ckpts)
    state = torch.load(rec.ckpts[-1] / tr.CHECKPOINT_FILE, weights_only=True)
    assert state["epoch"] == 3
    # the same curve as the real-training oracle with the same config: ASHA trials and queries agree
    oracle = TrainingOracle("nb201", train_cfg=TRAIN, space_kwargs={"C": 4, "N": 1}, data=_data())
    accs, _ = oracle.train_arch(NB201_CONV3)
    assert accs == [m["val_acc"] for m in rec.metrics]


def test_resume_from_a_checkpoint_continues_exactly(tmp_path, data):
    full = Recorder(tmp_path / "full")
    tr.run_trial(_config(), full)
    resumed = Recorder(tmp_path / "resumed")
    tr.run_trial(_config(), resumed, tune.Checkpoint.from_directory(str(full.ckpts[0])))
    assert [m["epoch"] for m in resumed.metrics] == [2, 3]
    assert resumed.metrics == full.metrics[1:]  # same losses and accuracies, bit for bit
    a = torch.load(full.ckpts[-1] / tr.CHECKPOINT_FILE, weights_only=True)["model"]
    b = torch.load(resumed.ckpts[-1] / tr.CHECKPOINT_FILE, weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    # a finished trial's checkpoint trains no further epoch
    done = Recorder(tmp_path / "done")
    tr.run_trial(_config(), done, tune.Checkpoint.from_directory(str(full.ckpts[-1])))
    assert done.metrics == []


def test_data_is_loaded_once_per_worker(tmp_path, data):
    tr.run_trial(_config(train={**TRAIN, "epochs": 1}), Recorder(tmp_path / "a"))
    tr.run_trial(_config(train={**TRAIN, "epochs": 1}, arch=NB201_CONV3.replace("nor_conv_3x3~2", "skip_connect~2")),
                 Recorder(tmp_path / "b"))
    assert data == [("digits", 8, None, None)]


def test_bad_configs_raise_typed_errors(tmp_path, data):
    with pytest.raises(ConfigError, match="unknown config key"):
        tr.run_trial(_config(epochs=3), Recorder(tmp_path))
    with pytest.raises(InvalidArchitectureError):
        tr.run_trial(_config(arch="|conv_9x9~0|"), Recorder(tmp_path))
    with pytest.raises(ConfigError):
        tr.run_trial(_config(train={**TRAIN, "epochs": 0}), Recorder(tmp_path))


def test_make_trainable_declares_resources():
    from raynas.tune import asha

    a, b = asha.make_trainable(2, 0.5), asha.make_trainable(1, 0)
    assert a is not b and a.__name__ == "train_arch"
    assert a._resources.required_resources == {"CPU": 2.0, "GPU": 0.5}
    assert b._resources.required_resources == {"CPU": 1.0}
    assert not hasattr(asha.train_arch, "_resources")
