"""Light-weight training (Yang, Yang, Jin & Chen, WACV 2023): the shared short-training loop.

"Revisiting Training-free NAS Metrics: An Efficient Training-based Method" trains each candidate for a few
dozen SGD iterations on a tiny labelled set (100 CIFAR images, 10 per class, one batch of 100) and reads
two signals:

* the angle between the final classifier's weight before and after training (cosine similarity of the
  flattened ``.weight``; the bias is not included). A *smaller* angle (higher cosine) ranks better, except
  that networks whose classifier barely moves (cosine >= :data:`TRIVIAL_COSINE`, e.g. cells that output
  zeros so the classifier sees constant features) are trivial and rank last;
* the training loss of the last iteration (lower is better).

The paper ranks candidates by ``rank(angle) + rank(loss)`` and ensembles that rank with ``rank(#params)``;
here each signal is its own metric (``lwt_angle``, ``lwt_loss``) and the rank combination is left to
whoever combines metric columns.

Trivial networks, as the authors' ``evaluate_anglefc.py`` scores them: a network one of whose cells holds no
Conv2d, BatchNorm2d or AvgPool module (a cell of only ``skip_connect``/``none`` edges) is not trained at all,
and a trained network whose classifier cosine is at least :data:`TRIVIAL_COSINE` hardly moved; both get angle
score 0 and loss :data:`TRIVIAL_LOSS` (the reference's loss score -100, negated as ``lwt_loss`` is a loss). The hyper-parameters below are those of the authors' released code.
Training uses the engine's fixed batch as the whole training set (every iteration sees the same batch, as
with their batch size equal to the subset size), so the result is deterministic given the model and batch.
The model keeps the initialisation the engine gave it (the authors re-initialise with Kaiming-normal).

Divergence. lr 0.2 with Nesterov momentum was set for NAS-Bench-201 networks, whose classifier reads
BN + ReLU + pooled features (norm ~3-4 per sample). A network whose classifier reads un-normalised features
is far less stable: a 3-cell DARTS-V2 net ends in its reduction cell (max pools and skip connections), its
pooled features are all positive with norm ~30, the cross-entropy curvature in the classifier weight grows with
the squared feature norm, and the FIRST step alone takes the loss from 1.4 to 75; the run then swings through
1e6-1e12 and ends wherever float rounding takes it (0 on one CPU, 1.8e8 on another). Such a run has no score:
a loss that turns non-finite, or exceeds :data:`DIVERGENCE_FACTOR` times ``max(first loss, ln K)``, raises
:class:`~raynas.errors.NonFiniteError` naming the step, which the engine records as status ``nan``. Stable runs
(every NAS-Bench-201 cell, the DARTS presets) stay within 1.3x of their first loss, far from the bound.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn

from raynas.data.batch import Batch
from raynas.errors import MetricError, NonFiniteError
from raynas.metrics._layers import task_loss

#: SGD iterations of the light-weight training
STEPS = 50
#: SGD learning rate, momentum (Nesterov) and weight decay
LR = 0.2
MOMENTUM = 0.9
NESTEROV = True
WEIGHT_DECAY = 5e-4
#: classifier cosine at or above which a network counts as trivial (its classifier hardly trained)
TRIVIAL_COSINE = 0.95
#: a training run diverged once a loss exceeds this multiple of max(first loss, ln K) (or is not finite)
DIVERGENCE_FACTOR = 10.0
#: the scores of a trivial network (see the module doc): angle 0, loss 100
TRIVIAL_ANGLE = 0.0
TRIVIAL_LOSS = 100.0
#: module types whose presence makes a cell non-trivial (the reference matches these class names)
_CELL_WEIGHT_TYPES: tuple[type[nn.Module], ...] = (nn.Conv2d, nn.BatchNorm2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d)


@dataclass(frozen=True)
class FirstStep:
    """The first SGD step's forward/backward of :func:`light_weight_train`, computed by another pass.

    The fused engine's ``"loss"`` pass runs the same train-mode forward of the task loss on the same batch with
    the same (untrained) weights, after the same ``torch.manual_seed``; its backward then yields exactly the
    gradients that step 0's ``loss.backward()`` would (see :func:`raynas.metrics.fused.loss_pass`).

    Attributes:
        loss: the task loss of the forward (0-dim, detached).
        grads: ``dL/dp`` of every trainable parameter, in ``model.parameters()`` order (None where the loss does
            not depend on it, as ``.backward()`` leaves ``p.grad``).
        rng: the CPU generator state after the forward, and the CUDA device's (None off CUDA; the fused engine
            offers no first step on other accelerators), so that step 1 draws what it would have drawn after
            running step 0's forward itself (dropout, drop-path).
        batch_size: the batch the forward saw (a pass that retried on a halved batch does not match).
    """

    loss: torch.Tensor
    grads: tuple[torch.Tensor | None, ...]
    rng: tuple[torch.Tensor, torch.Tensor | None]
    batch_size: int


@dataclass(frozen=True)
class LWTResult:
    """Outcome of :func:`light_weight_train`.

    Attributes:
        cosine: cosine similarity of the classifier weight before / after training, in ``[-1, 1]``.
        loss: mean cross-entropy of the last iteration's forward pass (before its update).
        weight_before: classifier weight at initialisation ``[K, F]`` (detached copy).
        weight_after: classifier weight after training ``[K, F]`` (detached copy).
        trained: False when the network was not trained because a cell holds no weights (then ``cosine`` is 1
            and ``loss`` NaN).
    """

    cosine: float
    loss: float
    weight_before: torch.Tensor
    weight_after: torch.Tensor
    trained: bool = True

    @property
    def trivial(self) -> bool:
        """The authors' trivial network: untrained (weightless cell) or classifier cosine >= TRIVIAL_COSINE."""
        return not self.trained or self.cosine >= TRIVIAL_COSINE

    @property
    def angle_score(self) -> float:
        """``lwt_angle``: the cosine, or :data:`TRIVIAL_ANGLE` for a trivial network."""
        return TRIVIAL_ANGLE if self.trivial else self.cosine

    @property
    def loss_score(self) -> float:
        """``lwt_loss``: the last loss, or :data:`TRIVIAL_LOSS` for a trivial network."""
        return TRIVIAL_LOSS if self.trivial else self.loss


def has_weightless_cell(model: nn.Module) -> bool:
    """True when ``model.cells`` (NAS-Bench-201, DARTS networks) has a cell without Conv2d / BatchNorm2d / AvgPool."""
    cells = getattr(model, "cells", None)
    if not isinstance(cells, nn.Module):
        return False
    return any(not any(isinstance(m, _CELL_WEIGHT_TYPES) for m in cell.modules()) for cell in cells.children())


def classifier_layer(model: nn.Module) -> nn.Linear:
    """The final classifier: the last ``nn.Linear`` in module order (raises :class:`MetricError` if none)."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise MetricError(f"{type(model).__name__} has no nn.Linear classifier for the light-weight training angle")
    return linears[-1]


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    """Cosine similarity of two flattened tensors, in float64; undefined (MetricError) for a zero tensor."""
    a64, b64 = a.detach().flatten().double(), b.detach().flatten().double()
    na, nb = a64.norm(), b64.norm()
    if float(na) == 0.0 or float(nb) == 0.0:
        raise MetricError("classifier weight is all zeros: its angle is undefined")
    return float(a64.dot(b64) / (na * nb))


def light_weight_train(
    model: nn.Module,
    batch: Batch,
    *,
    steps: int = STEPS,
    lr: float = LR,
    momentum: float = MOMENTUM,
    nesterov: bool = NESTEROV,
    weight_decay: float = WEIGHT_DECAY,
    first_step: FirstStep | None = None,
) -> LWTResult:
    """Train ``model`` in place for ``steps`` full-batch SGD iterations on ``batch``; see the module doc.

    Args:
        model: maps ``batch.inputs [B, C, H, W]`` to logits ``[B, K]``; its mode (train/eval) is the caller's.
        batch: the whole training set (every step sees it).
        steps, lr, momentum, nesterov, weight_decay: the SGD run (defaults: the authors' released code).
        first_step: step 0's loss and gradients, already computed on ``model``'s current weights and ``batch``
            (the fused engine's loss pass); used instead of step 0's own forward and backward, which would give
            the same numbers. Ignored when its batch size or parameter count does not match.

    Returns:
        The classifier cosine, the last loss and the classifier weight before / after (:class:`LWTResult`).
    """
    if steps < 1:
        raise MetricError(f"light-weight training needs steps >= 1, got {steps}")
    fc = classifier_layer(model)
    before = fc.weight.detach().clone()
    params = [p for p in model.parameters() if p.requires_grad]
    if not fc.weight.requires_grad:
        raise MetricError("the classifier weight is frozen: light-weight training cannot move it")
    if has_weightless_cell(model):  # trivial by structure: the reference does not train it
        return LWTResult(1.0, float("nan"), before, before.clone(), trained=False)
    opt = torch.optim.SGD(params, lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay)
    losses: list[torch.Tensor] = []
    reuse = first_step is not None and first_step.batch_size == batch.size and len(first_step.grads) == len(params)
    for step in range(steps):
        opt.zero_grad(set_to_none=True)
        if step == 0 and reuse:
            assert first_step is not None  # narrowing for the type checker: reuse implies it
            for p, g in zip(params, first_step.grads):
                # a copy: SGD may update .grad in place (Nesterov without weight decay), and the caller's tensors
                # may be the loss pass's weight_grads
                p.grad = None if g is None else g.clone()
            loss = first_step.loss
            _set_rng(first_step.rng, params[0].device)  # step 1 draws as if step 0's forward had run here
        else:
            loss = task_loss(model, batch)
            loss.backward()
        opt.step()
        losses.append(loss.detach())
    check_convergence(torch.stack(losses), batch.num_classes)  # one host sync per run, not one per step
    after = fc.weight.detach().clone()
    return LWTResult(cosine(before, after), float(losses[-1]), before, after)


def rng_state(device: torch.device) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The CPU generator's state and, on a CUDA ``device``, that device's (for :attr:`FirstStep.rng`)."""
    return torch.get_rng_state(), (torch.cuda.get_rng_state(device) if device.type == "cuda" else None)


def _set_rng(state: tuple[torch.Tensor, torch.Tensor | None], device: torch.device) -> None:
    cpu, cuda = state
    torch.set_rng_state(cpu)
    if cuda is not None:
        torch.cuda.set_rng_state(cuda, device)


def check_convergence(losses: torch.Tensor, num_classes: int) -> None:
    """Raise :class:`NonFiniteError` at the first diverged step of a run's losses ``[steps]`` (see module doc).

    Steps are numbered from 0 (the loss of the initial weights); the bound is ``DIVERGENCE_FACTOR *
    max(losses[0], ln num_classes)``, so a run that starts near chance may rise tenfold before it counts.
    """
    values = losses.double().cpu()
    first = float(values[0])
    bound = DIVERGENCE_FACTOR * max(first if math.isfinite(first) else 0.0, math.log(max(num_classes, 2)))
    bad = ~torch.isfinite(values) | (values > bound)
    if bool(bad.any()):
        step = int(bad.nonzero()[0])
        raise NonFiniteError(
            f"light-weight training diverged at step {step} of {len(values)}: loss {float(values[step]):.4g} "
            f"(first step {first:.4g}, bound {bound:.4g})"
        )
