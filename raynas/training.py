"""Real (short) training of one architecture: SGD + cosine schedule, validation accuracy per epoch.

Pure torch, no Ray: the real-training oracle calls :func:`train_and_evaluate`, the Ray Tune trainable drives
:class:`Trainer` epoch by epoch (reporting and checkpointing between epochs).

The configs (:class:`TrainConfig`, :class:`QueryOptions`, :class:`NetworkSize`) import no torch (torch is imported
where a network is trained): the CLI generates the training flags of ``raynas search robot|hnas`` from them
while it parses its arguments.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from raynas.errors import ConfigError

if TYPE_CHECKING:
    import torch
    import torch.nn as nn

    from raynas.tasks import Task

log = logging.getLogger(__name__)


def _help(text: str) -> dict[str, str]:
    """A config field's metadata: the help line of the flag the CLI generates from the field."""
    return {"help": text}


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of short training (NAS-Bench-201-style: SGD, nesterov, cosine, weight decay 5e-4)."""

    epochs: int = field(default=4, metadata=_help("training epochs of one query"))
    batch_size: int = field(default=64, metadata=_help("training batch size"))
    lr: float = field(default=0.1, metadata=_help("initial SGD learning rate (cosine schedule to 0)"))
    momentum: float = field(default=0.9, metadata=_help("SGD momentum"))
    weight_decay: float = field(default=5e-4, metadata=_help("SGD weight decay"))
    nesterov: bool = field(default=True, metadata=_help("Nesterov momentum"))
    seed: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or not (self.lr > 0):
            raise ConfigError(f"invalid training config {self}")


@dataclass(frozen=True)
class QueryOptions:
    """What one query of the real-training oracle trains on and how it runs, beside :class:`TrainConfig`: the
    keyword arguments of :class:`raynas.oracles.training.TrainingOracle` (whose defaults these are)."""

    dataset: str = field(default="digits", metadata=_help(
        "training data: digits | cifar10:PATH | cifar100:PATH | folder:PATH | noise"))
    device: str = field(default="cpu", metadata=_help("cpu | cuda | auto"))
    input_size: int = field(default=32, metadata=_help("image side of the training data"))
    max_train: int | None = field(default=None, metadata=_help("train on at most this many samples"))
    max_val: int | None = field(default=None, metadata=_help("validate on at most this many samples"))
    threads: int = field(default=1, metadata=_help("torch threads of one training"))


@dataclass(frozen=True)
class NetworkSize:
    """The size of the network a training query builds (``space.to_module`` options). None: the space's own
    value; a space refuses a size its network does not have (NAS-Bench-201: ``C``, ``N``; NAS-Bench-101: ``C``
    stem width, ``N`` cells per stack; DARTS: ``C``, ``layers``)."""

    C: int | None = field(default=None, metadata=_help("network width (NAS-Bench-101: stem channels)"))
    N: int | None = field(default=None, metadata=_help("cells per stage (NAS-Bench-101: per stack)"))
    layers: int | None = field(default=None, metadata=_help("cells of the network (DARTS)"))

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                raise ConfigError(f"network size {f.name} must be an integer >= 1, got {v!r}")

    def kwargs(self) -> dict[str, Any]:
        """The sizes given (not None), as ``to_module`` keyword arguments."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if getattr(self, f.name) is not None}


class Trainer:
    """Trains ``model`` on ``(x_train [N,C,H,W], y_train [N, *target_shape])``, evaluates on ``(x_val, y_val)``.

    The loss is the task's (:meth:`raynas.tasks.Task.loss_fn`; without a task, or for a class task, the mean
    cross-entropy against labels ``[N]``, :func:`raynas.tasks.cross_entropy_loss`). The cosine schedule is defined
    over ``cfg.epochs`` so stopping early (ASHA) trains the same prefix of the full schedule a longer trial would
    have run.
    """

    def __init__(
        self,
        model: nn.Module,
        train: tuple[torch.Tensor, torch.Tensor],
        val: tuple[torch.Tensor, torch.Tensor],
        cfg: TrainConfig,
        device: torch.device | str = "cpu",
        task: Task | None = None,
    ):
        import torch

        from raynas.tasks import cross_entropy_loss

        self.task = task
        self.loss_fn = task.loss_fn if task is not None else cross_entropy_loss
        self.cfg = cfg
        self.device = torch.device(device)
        self.model = model.to(self.device)
        self.x_train, self.y_train = train
        self.x_val, self.y_val = val
        self.opt = torch.optim.SGD(
            self.model.parameters(),
            lr=cfg.lr,
            momentum=cfg.momentum,
            weight_decay=cfg.weight_decay,
            nesterov=cfg.nesterov,
        )
        steps_per_epoch = math.ceil(len(self.x_train) / cfg.batch_size)
        self.sched = torch.optim.lr_scheduler.CosineAnnealingLR(self.opt, T_max=cfg.epochs * steps_per_epoch)
        self.epoch = 0
        self.gen = torch.Generator().manual_seed(cfg.seed)

    def train_epoch(self) -> float:
        """One pass over the training set in a seeded order; returns the mean training loss."""
        import torch

        self.model.train()
        perm = torch.randperm(len(self.x_train), generator=self.gen)
        total, count = 0.0, 0
        for start in range(0, len(perm), self.cfg.batch_size):
            idx = perm[start : start + self.cfg.batch_size]
            if len(idx) < 2:  # BatchNorm cannot train on a single sample
                continue
            x = self.x_train[idx].to(self.device, non_blocking=True)
            y = self.y_train[idx].to(self.device, non_blocking=True)
            loss = self.loss_fn(self.model(x), y)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            self.sched.step()
            total += loss.detach() * len(idx)  # stays on device: no host sync per step
            count += len(idx)
        self.epoch += 1
        return float(total / max(count, 1))

    def evaluate(self) -> float:
        """Validation accuracy in percent (class tasks); for another task the negative mean task loss over the
        validation set (higher is better; a task's published metric, e.g. SSIM, is the benchmark's, not this)."""
        import torch

        self.model.eval()
        if self.task is not None and not self.task.is_class:
            with torch.no_grad():
                total = torch.zeros((), device=self.device)
                for start in range(0, len(self.x_val), 512):
                    x = self.x_val[start : start + 512].to(self.device)
                    y = self.y_val[start : start + 512].to(self.device)
                    total += self.loss_fn(self.model(x), y) * len(x)
            return -float(total) / max(len(self.x_val), 1)
        with torch.no_grad():
            correct = torch.zeros((), device=self.device)
            for start in range(0, len(self.x_val), 512):
                x = self.x_val[start : start + 512].to(self.device)
                y = self.y_val[start : start + 512].to(self.device)
                correct += (self.model(x).argmax(1) == y).sum()
        return 100.0 * float(correct) / max(len(self.x_val), 1)

    def state_dict(self) -> dict:
        return {
            "model": self.model.state_dict(),
            "opt": self.opt.state_dict(),
            "sched": self.sched.state_dict(),
            "epoch": self.epoch,
            "gen": self.gen.get_state(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["opt"])
        self.sched.load_state_dict(state["sched"])
        self.epoch = int(state["epoch"])
        self.gen.set_state(state["gen"])

    def to_bytes(self) -> bytes:
        import torch

        buf = io.BytesIO()
        torch.save(self.state_dict(), buf)
        return buf.getvalue()


def train_and_evaluate(
    model_factory: Callable[[], nn.Module],
    train: tuple[torch.Tensor, torch.Tensor],
    val: tuple[torch.Tensor, torch.Tensor],
    cfg: TrainConfig,
    device: torch.device | str = "cpu",
    epochs: int | None = None,
    on_epoch: Callable[[int, int, float], None] | None = None,
    task: Task | None = None,
) -> list[float]:
    """Train for ``epochs`` (default ``cfg.epochs``) and return validation accuracy (%) after each epoch;
    ``on_epoch(epoch, epochs, val_acc)`` is called after each one (progress of a long training). ``task``: the
    loss and validation of :class:`Trainer` (None: classification)."""
    import torch

    torch.manual_seed(cfg.seed)
    trainer = Trainer(model_factory(), train, val, cfg, device, task=task)
    accs: list[float] = []
    total = epochs or cfg.epochs
    for _ in range(total):
        loss = trainer.train_epoch()
        accs.append(trainer.evaluate())
        log.debug("epoch %d loss %.4f val acc %.2f", trainer.epoch, loss, accs[-1])
        if on_epoch is not None:
            on_epoch(trainer.epoch, total, accs[-1])
    return accs
