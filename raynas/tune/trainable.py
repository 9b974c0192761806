"""Training of one architecture as a Tune trial, epoch by epoch, reporting and checkpointing after every epoch.

This module is Tune-free (tested without Ray); :mod:`raynas.tune.asha`, the only module importing ``ray.tune``,
binds :func:`run_trial` to ``tune.report`` / ``tune.get_checkpoint``.

``config`` (keys of :class:`TrialSpec`): ``arch`` (the space's architecture string), ``space``, ``space_kwargs``
(``to_module`` options, e.g. ``{"C": 4, "N": 1}``), ``dataset`` / ``input_size`` / ``max_train`` / ``max_val``
(:func:`raynas.oracles.training.load_train_data`), ``train`` (a :class:`TrainConfig` dict whose ``epochs`` is
the full schedule: ASHA-stopped trials have run a prefix of it) and ``device`` (``"auto"``: CUDA when the trial
was given a GPU).

Every epoch reports ``{"val_acc", "epoch", "train_loss"}`` with a checkpoint directory holding
``Trainer.to_bytes()``; a restarted or resumed trial restores model, optimiser, schedule, epoch and data order
from :func:`ray.tune.get_checkpoint` and continues with the next epoch. The data set is loaded once per worker
process (module-level cache), not once per trial.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import torch

from raynas.config import from_dict
from raynas.oracles.training import TrainData, build_model, load_train_data, resolve_device
from raynas.spaces import DEFAULT_SPACE
from raynas.training import TrainConfig, Trainer

log = logging.getLogger(__name__)

CHECKPOINT_FILE = "trainer.pt"
#: ``report(metrics, checkpoint_dir)``: the directory exists only during the call (Tune copies it to storage)
Reporter = Callable[[dict[str, Any], str], None]

_DATA: dict[tuple, TrainData] = {}


@dataclass(frozen=True)
class TrialSpec:
    arch: str
    space: str = DEFAULT_SPACE
    space_kwargs: Mapping[str, Any] | None = None
    dataset: str = "digits"
    input_size: int = 32
    max_train: int | None = None
    max_val: int | None = None
    train: TrainConfig = TrainConfig()
    device: str = "auto"


def worker_data(spec: TrialSpec) -> TrainData:
    """The trial's data set, loaded at most once per worker process."""
    key = (spec.dataset, spec.input_size, spec.max_train, spec.max_val)
    if key not in _DATA:
        _DATA.clear()  # one data set per worker is the common case; do not pile up copies
        _DATA[key] = load_train_data(*key)
    return _DATA[key]


def run_trial(config: Mapping[str, Any], report: Reporter, checkpoint: Any = None) -> float:
    """Train ``config["arch"]`` from scratch or from ``checkpoint`` until ``train.epochs``; returns the last val acc.

    ``checkpoint``: anything with an ``as_directory()`` context manager (a Tune ``Checkpoint``) or None.

    Raises the typed raynas errors for bad configs / archs / data (Tune records the trial as failed).
    """
    spec = from_dict(TrialSpec, config)
    from raynas.spaces import create_space

    space = create_space(spec.space)
    train, val, k = worker_data(spec)
    device = resolve_device(spec.device)
    torch.manual_seed(spec.train.seed)  # same initial weights as TrainingOracle / train_and_evaluate
    model = build_model(space, spec.arch, k, train[0].shape[1], spec.space_kwargs)
    trainer = Trainer(model, train, val, spec.train, device)
    acc = float("nan")
    if checkpoint is not None:
        with checkpoint.as_directory() as d:
            # CPU first: the data-order generator state must stay on the CPU; tensors move to the model's device
            state = torch.load(Path(d) / CHECKPOINT_FILE, map_location="cpu", weights_only=True)
        trainer.load_state_dict(state)
        log.info("%s: restored after epoch %d", spec.arch, trainer.epoch)
    while trainer.epoch < spec.train.epochs:
        loss = trainer.train_epoch()
        acc = trainer.evaluate()
        with tempfile.TemporaryDirectory(prefix="raynas_ckpt_") as d:
            (Path(d) / CHECKPOINT_FILE).write_bytes(trainer.to_bytes())
            # report persists the directory (copies it to the trial's storage) before returning
            report({"val_acc": acc, "epoch": trainer.epoch, "train_loss": loss}, d)
    return acc
