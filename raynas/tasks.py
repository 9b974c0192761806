"""The task contract: what a network is trained to predict, the ONE loss it is trained with, and how it is judged.

A :class:`Task` is owned by the benchmark (a space's network is built for a task, see
:meth:`raynas.spaces.base.SearchSpace.task`): it declares the kind and per-sample shape of its targets, the network
output that goes with them, the loss (:meth:`Task.loss_fn`, used by every loss-based metric, the fused and batched
engines and real training) and the validation metric with its direction. Classification
(:func:`classification`) is one task among others and the default everywhere, so NAS-Bench-201, NAS-Bench-101 and
DARTS batches behave exactly as before.

* ``class``: per-sample target ``()`` (an int64 label), network output ``(K,)`` logits, ``cross_entropy``;
* ``class_probs``: ``(K,)`` float probabilities (soft labels), output ``(K,)`` logits, ``soft_cross_entropy`` or
  ``softmax_ce_eps`` (below);
* ``pixel_class``: ``(H, W)`` int64 labels, output ``(K, H, W)`` logits, ``pixel_cross_entropy``;
* ``regression``: ``target_shape`` floats (e.g. ``(9,)``), output of the same shape, ``mse`` or ``l1``;
* ``image``: ``(C, H, W)`` floats, output of the same shape, ``l1`` or ``mse``.

The two soft-label losses. ``soft_cross_entropy`` is the exact ``-sum_k p_k log softmax(z)_k`` (``log_softmax``),
the loss of a generic soft-label task (:func:`class_probabilities`). ``softmax_ce_eps`` is
``-sum_k p_k log(softmax(z)_k + 1e-5)``: the ``SoftmaxCrossEntropyWithLogits`` that TransNAS-Bench-101 trains its
scene / object networks with (its ``lib/losses/all.py``) and that NASLib hands its zero-cost measures on those
tasks (``naslib/search_spaces/transbench101/loss.py``), formula and float32 evaluation order alike. It is a different
function, not a rounding of the exact one: the gradient of every class whose probability is near or below 1e-5 is
damped by ``softmax / (softmax + 1e-5)``. Where the logits spread widely that moves the loss-based zero-cost values
a lot (on the six scene / object networks of the TransNAS-Bench-101 parity fixture, grad_norm, snip, fisher and plain
are 0.36-1.0 times their exact-loss values and grasp changes sign on 3); near uniform logits it changes little. A
benchmark's task owns its loss, so the benchmark's tasks use the benchmark's formula; the exact one stays for
soft-label tasks that are nobody's benchmark.

Every loss uses mean reduction over every target element (the batch for class labels, every pixel for
segmentation), as ``torch.nn.functional``'s default: the cross-entropy sites this replaces used exactly
``F.cross_entropy(logits, labels)``, so the values of classification metrics are unchanged bit for bit.

This module imports torch only inside the functions that compute (the CLI builds tasks while it parses flags).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Literal

from raynas.errors import ConfigError, DataError, MetricError
from raynas.registry import Registry

if TYPE_CHECKING:
    import torch

TargetKind = Literal["class", "class_probs", "pixel_class", "regression", "image"]
LossName = Literal["cross_entropy", "soft_cross_entropy", "softmax_ce_eps", "pixel_cross_entropy", "mse", "l1"]

#: target kinds, and the losses each accepts (the first is the kind's usual one)
TARGET_KINDS: dict[str, tuple[str, ...]] = {
    "class": ("cross_entropy",),
    "class_probs": ("soft_cross_entropy", "softmax_ce_eps"),
    "pixel_class": ("pixel_cross_entropy",),
    "regression": ("mse", "l1"),
    "image": ("l1", "mse"),
}
LOSSES: tuple[str, ...] = ("cross_entropy", "soft_cross_entropy", "softmax_ce_eps", "pixel_cross_entropy", "mse",
                           "l1")
#: the constant ``softmax_ce_eps`` adds to the softmax inside the log (TransNAS-Bench-101's and NASLib's 0.00001)
SOFTMAX_CE_EPS = 1e-5
#: target kinds whose targets are class indices (int64) rather than floats
INTEGER_KINDS = ("class", "pixel_class")


@dataclass(frozen=True)
class Task:
    """A prediction task: targets, the network output they need, the loss and the validation metric.

    Attributes:
        name: e.g. ``"classification"``, ``"room_layout"``.
        target_kind: ``"class"`` | ``"pixel_class"`` | ``"regression"`` | ``"image"``.
        target_shape: per-sample target shape: ``()`` for class labels, ``(K,)`` for class probabilities (soft
            labels, TransNAS-Bench-101's scene/object targets), ``(H, W)`` for pixel labels, ``(9,)``
            for a 9-float regression, ``(3, H, W)`` for an image.
        num_classes: classes of a ``class``/``class_probs``/``pixel_class`` task (the network's ``K`` logits);
            None otherwise.
        loss: the loss's name (:data:`LOSSES`); :meth:`loss_fn` computes it.
        metric: the name of the validation metric (e.g. ``"accuracy"``, ``"valid_neg_loss"``, ``"valid_ssim"``).
        higher_is_better: the direction of ``metric`` (answers, ranks and searches sort by it).
        tiles: 0 (the default): a sample is one image, inputs ``[B, C, H, W]``; ``T > 0``: a sample is ``T`` tiles
            of one image, inputs ``[B, T, C, H, W]`` (TransNAS-Bench-101's jigsaw: 9 tiles). The input layout is
            part of the task because a data source must cut the tiles (:func:`raynas.data.create_batch`).
    """

    name: str
    target_kind: TargetKind
    target_shape: tuple[int, ...]
    num_classes: int | None
    loss: LossName
    metric: str
    higher_is_better: bool = True
    tiles: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError(f"a task needs a non-empty name, got {self.name!r}")
        if self.target_kind not in TARGET_KINDS:
            raise ConfigError(f"task {self.name!r}: unknown target kind {self.target_kind!r} "
                              f"(known: {', '.join(TARGET_KINDS)})")
        if self.loss not in TARGET_KINDS[self.target_kind]:
            raise ConfigError(f"task {self.name!r}: loss {self.loss!r} does not fit {self.target_kind} targets "
                              f"(use {' or '.join(TARGET_KINDS[self.target_kind])})")
        shape = tuple(self.target_shape)
        if any(isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in shape):
            raise ConfigError(f"task {self.name!r}: target_shape must be positive integers, got {self.target_shape!r}")
        object.__setattr__(self, "target_shape", shape)  # a list from YAML becomes the tuple the field says
        want = {"class": 0, "class_probs": 1, "pixel_class": 2, "image": 3}.get(self.target_kind)
        if want is not None and len(shape) != want:
            raise ConfigError(f"task {self.name!r}: {self.target_kind} targets have {want} dimension(s) per sample, "
                              f"got target_shape {shape}")
        if self.target_kind in (*INTEGER_KINDS, "class_probs"):
            if isinstance(self.num_classes, bool) or not isinstance(self.num_classes, int) or self.num_classes < 1:
                raise ConfigError(f"task {self.name!r}: {self.target_kind} targets need num_classes >= 1, "
                                  f"got {self.num_classes!r}")
        elif self.num_classes is not None:
            raise ConfigError(f"task {self.name!r}: {self.target_kind} targets have no classes "
                              f"(num_classes must be None, got {self.num_classes!r})")
        if self.target_kind == "class_probs" and shape != (self.num_classes,):
            raise ConfigError(f"task {self.name!r}: class probabilities are one per class, target_shape "
                              f"({self.num_classes},), got {shape}")
        if not isinstance(self.metric, str) or not self.metric:
            raise ConfigError(f"task {self.name!r}: metric must be a non-empty name, got {self.metric!r}")
        if isinstance(self.tiles, bool) or not isinstance(self.tiles, int) or self.tiles < 0:
            raise ConfigError(f"task {self.name!r}: tiles must be an int >= 0, got {self.tiles!r}")

    @property
    def is_class(self) -> bool:
        """True for per-sample class labels (``labels [B]``, logits ``[B, K]``): what label-needing metrics need."""
        return self.target_kind == "class"

    @property
    def output_shape(self) -> tuple[int, ...]:
        """The per-sample shape of the network output the loss takes: ``(K,)``, ``(K, H, W)`` or the target's."""
        if self.target_kind in ("class", "class_probs"):
            return (int(self.num_classes),)  # type: ignore[arg-type]  # checked in __post_init__
        if self.target_kind == "pixel_class":
            return (int(self.num_classes), *self.target_shape)  # type: ignore[arg-type]
        return self.target_shape

    @property
    def integer_targets(self) -> bool:
        """Targets are int64 class indices (else float tensors in the inputs' dtype)."""
        return self.target_kind in INTEGER_KINDS

    def describe(self) -> dict[str, Any]:
        """The task as JSON-able values (run configs, listings)."""
        out = {"name": self.name, "target_kind": self.target_kind, "target_shape": list(self.target_shape),
               "num_classes": self.num_classes, "loss": self.loss, "metric": self.metric,
               "higher_is_better": self.higher_is_better}
        if self.tiles:  # only where set: the description of every one-image task stays as it was
            out["tiles"] = self.tiles
        return out

    def check_targets(self, targets: "torch.Tensor", batch_size: int) -> None:
        """Raise :class:`DataError` unless ``targets`` is ``[B, *target_shape]`` of this task's kind.

        Args:
            targets: a batch's targets.
            batch_size: ``B``.
        """
        import torch

        if not isinstance(targets, torch.Tensor):
            raise DataError(f"task {self.name!r}: targets must be a tensor, got {type(targets).__name__}")
        want = (batch_size, *self.target_shape)
        if tuple(targets.shape) != want:
            label = "labels" if self.is_class else "targets"
            raise DataError(f"batch {label} must be {list(want)} for task {self.name!r}, got {tuple(targets.shape)}")
        if self.integer_targets:
            if targets.dtype != torch.int64:
                raise DataError(f"task {self.name!r}: class targets must be int64, got {targets.dtype}")
            if targets.numel() and (int(targets.min()) < 0 or int(targets.max()) >= int(self.num_classes)):  # type: ignore[arg-type]
                raise DataError(f"labels outside [0, {self.num_classes})")
        elif not targets.dtype.is_floating_point:
            raise DataError(f"task {self.name!r}: {self.target_kind} targets must be floating point, got {targets.dtype}")

    def check_output(self, output: Any, batch_size: int) -> None:
        """Raise :class:`MetricError` unless ``output`` is the network output this task's loss takes.

        Args:
            output: what ``model(inputs)`` returned.
            batch_size: ``B``.
        """
        import torch

        if self.is_class:  # the message the classification engines always gave
            if not isinstance(output, torch.Tensor) or output.dim() != 2:
                shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
                raise MetricError(f"model must return logits [B, K], got {shape}")
            return
        want = (batch_size, *self.output_shape)
        if not isinstance(output, torch.Tensor) or tuple(output.shape) != want:
            shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
            raise MetricError(f"task {self.name!r} needs a network output {list(want)}, got {shape}")

    def loss_fn(self, output: "torch.Tensor", target: "torch.Tensor") -> "torch.Tensor":
        """The task's loss: a 0-dim tensor, mean over every target element (see the module docstring).

        Args:
            output: the network output ``[B, *output_shape]`` (class: logits ``[B, K]``; pixel_class: ``[B, K, H, W]``).
            target: ``[B, *target_shape]`` (int64 class indices, or floats).
        Returns:
            the mean loss, 0-dim, differentiable w.r.t. ``output``.
        """
        import torch.nn.functional as F

        if self.loss in ("cross_entropy", "pixel_cross_entropy"):
            return cross_entropy_loss(output, target)
        if self.loss == "soft_cross_entropy":  # -sum_k p_k log softmax(z)_k, mean over the batch
            return -(target.to(output.dtype) * F.log_softmax(output, dim=1)).sum(dim=1).mean()
        if self.loss == "softmax_ce_eps":  # the reference's own order: softmax, + 1e-5, log (module docstring)
            return softmax_ce_eps_loss(output, target)
        if self.loss == "mse":
            return F.mse_loss(output, target.to(output.dtype))
        return F.l1_loss(output, target.to(output.dtype))

    def stacked_loss(self, output: "torch.Tensor", target: "torch.Tensor") -> "torch.Tensor":
        """Per-network losses ``[A]`` of ``A`` stacked networks (the batched engine's form).

        Args:
            output: ``[B, A, *output_shape]``: network ``a``'s output is ``output[:, a]``.
            target: ``[B, *target_shape]``, shared by the ``A`` networks.
        Returns:
            ``[A]``: entry ``a`` is :meth:`loss_fn` of network ``a`` (up to float summation order).
        """
        import torch
        import torch.nn.functional as F

        b, a = int(output.shape[0]), int(output.shape[1])
        if self.target_kind == "class":  # one kernel for the A networks: the batched engine's formula since v1
            ce = F.cross_entropy(output.transpose(1, 2), target.unsqueeze(1).expand(b, a), reduction="none")
            return ce.mean(0)
        return torch.stack([self.loss_fn(output[:, i], target) for i in range(a)])


def cross_entropy_loss(output: "torch.Tensor", target: "torch.Tensor") -> "torch.Tensor":
    """Mean cross-entropy: logits ``[B, K]`` against labels ``[B]``, or ``[B, K, H, W]`` against ``[B, H, W]``
    (mean over every pixel); ``F.cross_entropy``'s default reduction, the loss of every class task.

    Args:
        output: logits.
        target: int64 class indices.
    Returns:
        0-dim mean loss.
    """
    import torch.nn.functional as F

    return F.cross_entropy(output, target)


def softmax_ce_eps_loss(output: "torch.Tensor", target: "torch.Tensor") -> "torch.Tensor":
    """``mean_i -sum_k p_ik log(softmax(z_i)_k + 1e-5)``: TransNAS-Bench-101's ``SoftmaxCrossEntropyWithLogits``
    (``lib/losses/all.py``; NASLib's ``search_spaces/transbench101/loss.py`` is the same), evaluated in the same
    order (softmax over the last dimension, then ``+ 1e-5``, then ``log``) so float32 rounds as the reference does.

    Args:
        output: logits ``[B, K]``.
        target: class probabilities ``[B, K]`` (cast to the logits' dtype).
    Returns:
        0-dim mean loss.
    """
    import torch
    import torch.nn.functional as F

    logp = torch.log(F.softmax(output, dim=-1) + SOFTMAX_CE_EPS)
    return -(target.to(output.dtype) * logp).sum(dim=-1).mean()


def classification(num_classes: int) -> Task:
    """The default task: one class label per sample, logits ``[B, num_classes]``, mean cross-entropy, accuracy.

    Args:
        num_classes: ``K``.
    Returns:
        the classification :class:`Task`.
    """
    k = int(num_classes) if isinstance(num_classes, numbers.Integral) and not isinstance(num_classes, bool) else num_classes
    return Task("classification", "class", (), k, "cross_entropy", "accuracy", True)


def class_probabilities(num_classes: int) -> Task:
    """Soft labels: a probability vector ``[B, K]`` per sample against logits ``[B, K]``, the soft cross-entropy
    ``mean_i -sum_k p_ik log softmax(z_i)_k`` (exact: TransNAS-Bench-101's scene and object tasks use the same
    targets with the benchmark's ``softmax_ce_eps`` instead, see the module docstring).

    Args:
        num_classes: ``K``.
    """
    return Task("class_probabilities", "class_probs", (num_classes,), num_classes, "soft_cross_entropy",
                "accuracy", True)


def pixel_classification(num_classes: int, size: int | tuple[int, int]) -> Task:
    """Per-pixel classes (semantic segmentation): logits ``[B, K, H, W]`` against labels ``[B, H, W]``.

    Args:
        num_classes: ``K``.
        size: ``H`` (square) or ``(H, W)`` of the label map.
    """
    hw = (size, size) if isinstance(size, int) else tuple(size)
    return Task("pixel_classification", "pixel_class", hw, num_classes, "pixel_cross_entropy", "pixel_accuracy", True)


def regression(outputs: int | tuple[int, ...], loss: LossName = "mse") -> Task:
    """Real-valued targets ``[B, *outputs]`` (e.g. 9 room-layout floats) with mean squared error (or L1).

    Args:
        outputs: the per-sample target shape (an int for a vector).
        loss: ``"mse"`` (default) or ``"l1"``.
    """
    shape = (outputs,) if isinstance(outputs, int) else tuple(outputs)
    return Task("regression", "regression", shape, None, loss, "neg_loss", True)


def image(channels: int = 3, size: int | tuple[int, int] = 32, loss: LossName = "l1") -> Task:
    """Image targets ``[B, C, H, W]`` (autoencoding, surface normals) with mean absolute error (or MSE).

    Args:
        channels: ``C`` of the target image.
        size: ``H`` (square) or ``(H, W)``.
        loss: ``"l1"`` (default) or ``"mse"``.
    """
    hw = (size, size) if isinstance(size, int) else tuple(size)
    return Task("image", "image", (channels, *hw), None, loss, "neg_loss", True)


#: task factories by name: ``create_task(name, **kwargs)`` calls the factory with the keyword arguments
TASKS: Registry[Callable[..., Task]] = Registry("task")
TASKS.add("classification", classification)
TASKS.add("class_probabilities", class_probabilities)
TASKS.add("pixel_classification", pixel_classification)
TASKS.add("regression", regression)
TASKS.add("image", image)


def create_task(name: str, **kwargs: Any) -> Task:
    """The task ``name`` built by its registered factory.

    Args:
        name: a registered task (``classification``, ``class_probabilities``, ``pixel_classification``,
            ``regression``, ``image``, or one
            a benchmark registered with ``TASKS.add``).
        **kwargs: the factory's arguments (e.g. ``num_classes=10``).
    Returns:
        the :class:`Task`.
    Raises:
        UnknownNameError: ``name`` is not registered (with close matches).
        ConfigError: the arguments do not fit the factory or make an invalid task.
    """
    factory = TASKS.get(name)
    try:
        return factory(**kwargs)
    except TypeError as e:  # wrong keyword: one line naming the task, not a traceback into the factory
        raise ConfigError(f"task {name!r}: {e}") from None
