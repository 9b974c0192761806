"""The unit of input every metric sees: one fixed mini-batch, with its targets and the task they belong to."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from raynas.errors import DataError
from raynas.tasks import Task, classification


@dataclass(frozen=True)
class Batch:
    """One mini-batch and its task.

    Representation (explicit, so nothing downstream has to guess):

    * ``targets`` is ALWAYS the tensor the task's loss reads, ``[B, *task.target_shape]``: class labels ``[B]``
      (int64), pixel labels ``[B, H, W]`` (int64), regression values ``[B, 9]`` or images ``[B, C, H, W]``
      (float).
    * ``labels`` is the per-sample class label tensor ``[B]`` of a ``class`` task, the very same tensor as
      ``targets``; it is ``None`` for every other task, so a metric that reads class labels cannot silently use
      pixel maps or regression values (the engines store it as ``not_applicable`` instead, see
      :mod:`raynas.metrics.registry`).
    * ``task`` defaults to :func:`raynas.tasks.classification` of ``num_classes``: ``Batch(x, y, K, name)`` is the
      classification batch it always was.
    * ``num_classes`` is the task's class count (None for regression and image tasks).

    Build a batch of another task with :meth:`for_task`.

    Attributes:
        inputs: float tensor ``[B, C, H, W]`` (normalised images), or ``[B, T, C, H, W]`` for a task whose
            sample is ``T`` tiles (jigsaw).
        labels: int64 tensor ``[B]`` with values in ``[0, num_classes)`` for a class task, else None.
        num_classes: number of classes of the task (None: the task has no classes).
        name: a short description stored with the scores (e.g. ``"digits:seed=0:n=64"``).
        targets: ``[B, *task.target_shape]``; for a class task set from ``labels`` (leave it None).
        task: the :class:`~raynas.tasks.Task`; None: classification with ``num_classes``.
    """

    inputs: torch.Tensor
    labels: torch.Tensor | None
    num_classes: int | None
    name: str = "batch"
    targets: torch.Tensor | None = None
    task: Task | None = None

    def __post_init__(self) -> None:
        if self.inputs.dim() not in (4, 5):  # 5: tiles of one sample, [B, T, C, H, W] (TransNAS-Bench-101's jigsaw)
            raise DataError(f"batch inputs must be [B, C, H, W], got shape {tuple(self.inputs.shape)}")
        task = self.task
        if task is None:
            if self.num_classes is None or self.num_classes < 1:
                raise DataError(f"num_classes must be >= 1, got {self.num_classes}")
            task = classification(self.num_classes)
            object.__setattr__(self, "task", task)
        if task.tiles and (self.inputs.dim() != 5 or int(self.inputs.shape[1]) != task.tiles):
            raise DataError(f"task {task.name!r} takes {task.tiles} tiles per sample: inputs "
                            f"[B, {task.tiles}, C, H, W], got shape {tuple(self.inputs.shape)}")
        if task.is_class:
            if self.labels is None:
                raise DataError(f"a {task.name!r} batch needs labels [B]")
            if self.targets is not None and self.targets is not self.labels:
                raise DataError("a class batch's targets are its labels: pass labels only")
            if self.num_classes != task.num_classes:
                raise DataError(f"num_classes {self.num_classes} differs from the task's {task.num_classes}")
            object.__setattr__(self, "targets", self.labels)
        else:
            if self.labels is not None:
                raise DataError(f"task {task.name!r} has {task.target_kind} targets, not class labels: pass targets "
                                "(labels must be None)")
            if self.targets is None:
                raise DataError(f"a {task.name!r} batch needs targets [B, {', '.join(map(str, task.target_shape))}]")
            if self.num_classes != task.num_classes:
                raise DataError(f"num_classes {self.num_classes} differs from the task's {task.num_classes}")
        if task.is_class:  # the checks (and messages) class batches always had
            labels = self.labels
            if labels.dim() != 1 or labels.shape[0] != self.inputs.shape[0]:  # type: ignore[union-attr]
                raise DataError(f"batch labels must be [B] with B={self.inputs.shape[0]}, got {tuple(labels.shape)}")  # type: ignore[union-attr]
            if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= self.num_classes):  # type: ignore[union-attr,operator]
                raise DataError(f"labels outside [0, {self.num_classes})")
        else:
            task.check_targets(self.targets, int(self.inputs.shape[0]))  # type: ignore[arg-type]

    @classmethod
    def for_task(cls, inputs: torch.Tensor, targets: torch.Tensor, task: Task, name: str = "batch") -> "Batch":
        """A batch of any task: ``labels`` are the targets for a class task and None otherwise.

        Args:
            inputs: ``[B, C, H, W]``.
            targets: ``[B, *task.target_shape]``.
            task: the task.
            name: the batch's description.
        """
        if task.is_class:
            return cls(inputs, targets, task.num_classes, name, task=task)
        return cls(inputs, None, task.num_classes, name, targets=targets, task=task)

    @property
    def size(self) -> int:
        return int(self.inputs.shape[0])

    def _with(self, inputs: torch.Tensor, targets: torch.Tensor, name: str | None = None) -> "Batch":
        return Batch.for_task(inputs, targets, self.task, self.name if name is None else name)  # type: ignore[arg-type]

    def with_inputs(self, inputs: torch.Tensor) -> "Batch":
        """The same batch (targets, task, name) with other inputs of the same batch size (another memory
        format, device or dtype)."""
        return self._with(inputs, self.targets)  # type: ignore[arg-type]

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> "Batch":
        """The batch on ``device``; ``dtype`` converts the inputs and float targets (class indices stay int64)."""
        x = self.inputs.to(device=device, dtype=dtype) if dtype is not None else self.inputs.to(device)
        t = self.targets.to(device)  # type: ignore[union-attr]
        if dtype is not None and t.dtype.is_floating_point:  # a float64 metric compares float64 outputs with them
            t = t.to(dtype)
        return self._with(x, t)

    def head(self, n: int) -> "Batch":
        """The first ``n`` samples (used to retry with a smaller batch after an OOM)."""
        return self._with(self.inputs[:n], self.targets[:n], f"{self.name}[:{n}]")  # type: ignore[index]
