"""Gaussian-noise "data": standard normal images and uniformly random labels (or targets of any task).

Useful as a data-independent control (a proxy that ranks as well on noise does not use the data) and for
tests; it needs no files. Inputs are already zero-mean unit-variance, so no normalisation is applied.
"""

from __future__ import annotations

import torch

from raynas.data.batch import Batch
from raynas.errors import DataError
from raynas.tasks import Task

DEFAULT_CLASSES = 10


def noise_tensors(n: int, size: int = 32, num_classes: int = DEFAULT_CLASSES, seed: int = 0,
                  channels: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """``x float32 [n, channels, size, size] ~ N(0, 1)`` and ``y int64 [n]`` uniform on ``[0, num_classes)``.

    One CPU generator seeded with ``seed`` draws both, so the result is identical on every machine.
    """
    if n < 1 or size < 1 or channels < 1:
        raise DataError(f"noise needs n, size, channels >= 1, got n={n}, size={size}, channels={channels}")
    if num_classes < 1:
        raise DataError(f"noise needs num_classes >= 1, got {num_classes}")
    g = torch.Generator().manual_seed(int(seed))
    x = torch.randn(n, channels, size, size, generator=g)
    y = torch.randint(num_classes, (n,), generator=g, dtype=torch.int64)
    return x, y


def noise_targets(task: Task, n: int, generator: torch.Generator) -> torch.Tensor:
    """Random targets ``[n, *task.target_shape]`` of ``task``'s kind, drawn from ``generator``.

    Class and pixel-class targets are uniform integers on ``[0, num_classes)`` (int64); class-probability targets
    the softmax of standard normal draws; regression and image targets are standard normal (float32).

    Args:
        task: the task whose targets to draw.
        n: the batch size.
        generator: the CPU generator to draw from (after the inputs, so the inputs do not depend on the task).
    Returns:
        ``[n, *task.target_shape]``.
    """
    shape = (n, *task.target_shape)
    if task.target_kind == "class_probs":  # a probability vector per sample: softmax of normal draws
        return torch.softmax(torch.randn(shape, generator=generator), dim=1)
    if task.integer_targets:
        return torch.randint(int(task.num_classes), shape, generator=generator, dtype=torch.int64)  # type: ignore[arg-type]
    return torch.randn(shape, generator=generator)


def noise_batch(batch_size: int = 64, size: int = 32, num_classes: int = DEFAULT_CLASSES, seed: int = 0,
                name: str | None = None, task: Task | None = None) -> Batch:
    """A :class:`Batch` of Gaussian noise (see :func:`noise_tensors`), for classification or any ``task``.

    Args:
        batch_size: ``B``.
        size: the image side of the inputs ``[B, 3, size, size]`` (of each tile of a tiled task:
            ``[B, T, 3, size, size]``, see :attr:`raynas.tasks.Task.tiles`).
        num_classes: classes of the default classification task (ignored when ``task`` is given).
        seed: seeds the one CPU generator that draws the inputs, then the targets.
        name: the batch's description (default ``noise:<classes or task>:seed=..:n=..``).
        task: None: classification with ``num_classes`` (the batch this function always made, same draws). A
            task: the same input images, then targets of that task's kind and shape (:func:`noise_targets`).
    Returns:
        the batch.
    """
    if task is None or (task.is_class and not task.tiles):
        k = num_classes if task is None else int(task.num_classes)  # type: ignore[arg-type]
        x, y = noise_tensors(batch_size, size, k, seed)
        return Batch(x, y, k, name or f"noise:{k}:seed={seed}:n={batch_size}", task=task)
    if batch_size < 1 or size < 1:
        raise DataError(f"noise needs n, size >= 1, got n={batch_size}, size={size}")
    g = torch.Generator().manual_seed(int(seed))
    # a tiled task (jigsaw) gets T noise tiles of size x size per sample: [B, T, 3, size, size]
    shape = (batch_size, task.tiles, 3, size, size) if task.tiles else (batch_size, 3, size, size)
    x = torch.randn(shape, generator=g)
    t = noise_targets(task, batch_size, g)
    return Batch.for_task(x, t, task, name or f"noise:{task.name}:seed={seed}:n={batch_size}")
