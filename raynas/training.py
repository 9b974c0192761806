"""Real (short) training of one architecture: SGD + cosine schedule, validation accuracy per epoch.

Pure torch, no Ray: the real-training oracle calls :func:`train_and_evaluate`, the Ray Tune trainable drives
:class:`Trainer` epoch by epoch (reporting and checkpointing between epochs).
"""

from __future__ import annotations

import io
import logging
import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from raynas.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of short training (NAS-Bench-201-style: SGD, nesterov, cosine, weight decay 5e-4)."""

    epochs: int = 4
    batch_size: int = 64
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    nesterov: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or not (self.lr > 0):
            raise ConfigError(f"invalid training config {self}")


class Trainer:
    """Trains ``model`` on ``(x_train [N,C,H,W], y_train [N])``, evaluates on ``(x_val, y_val)``.

    The cosine schedule is defined over ``cfg.epochs`` so stopping early (ASHA) trains the same prefix of
    the full schedule a longer trial would have run.
    """

    def __init__(
        self,
        model: nn.Module,
        train: tuple[torch.Tensor, torch.Tensor],
        val: tuple[torch.Tensor, torch.Tensor],
        cfg: TrainConfig,
        device: torch.device | str = "cpu",
    ):
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
        self.model.train()
        perm = torch.randperm(len(self.x_train), generator=self.gen)
        total, count = 0.0, 0
        for start in range(0, len(perm), self.cfg.batch_size):
            idx = perm[start : start + self.cfg.batch_size]
            if len(idx) < 2:  # BatchNorm cannot train on a single sample
                continue
            x = self.x_train[idx].to(self.device, non_blocking=True)
            y = self.y_train[idx].to(self.device, non_blocking=True)
            loss = F.cross_entropy(self.model(x), y)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            self.sched.step()
            total += loss.detach() * len(idx)  # stays on device: no host sync per step
            count += len(idx)
        self.epoch += 1
        return float(total / max(count, 1))

    @torch.no_grad()
    def evaluate(self) -> float:
        """Validation accuracy in percent."""
        self.model.eval()
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
) -> list[float]:
    """Train for ``epochs`` (default ``cfg.epochs``) and return validation accuracy (%) after each epoch."""
    torch.manual_seed(cfg.seed)
    trainer = Trainer(model_factory(), train, val, cfg, device)
    accs = []
    for _ in range(epochs or cfg.epochs):
        loss = trainer.train_epoch()
        accs.append(trainer.evaluate())
        log.debug("epoch %d loss %.4f val acc %.2f", trainer.epoch, loss, accs[-1])
    return accs
