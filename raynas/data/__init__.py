"""Datasets and the fixed mini-batches the metrics score with.

A dataset *spec* is a string: ``"digits"`` (embedded default), ``"noise"`` / ``"noise:C"`` (Gaussian noise
with C classes), ``"cifar10:PATH"``, ``"cifar100:PATH"``, ``"folder:PATH"``; for the tasks of a multi-task
benchmark (``create_batch(..., task=)``): ``"noise"`` (targets of any task) and ``"taskonomy:PATH"``
(:mod:`raynas.data.taskonomy`, TransNAS-Bench-101's tasks).

- :func:`create_batch` draws one deterministic, class-balanced :class:`Batch` (same spec and seed ->
  identical tensors) from the dataset's ``train`` split.
- :func:`create_dataset` returns whole splits for real training: ``train`` / ``val`` (a per-class stratified
  80/20 partition of the training images, fixed seed 0), ``all`` (both), and ``test`` for CIFAR.

All images come out as ``float32 [N, 3, size, size]``, normalised per channel.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from raynas.data.batch import Batch
from raynas.data.cifar import ImageData, load_cifar
from raynas.data.digits import NUM_CLASSES as DIGITS_CLASSES
from raynas.data.digits import digits_images, digits_labels, digits_split_indices, load_digits_tensors
from raynas.data.folder import load_image_folder
from raynas.data import taskonomy
from raynas.data.noise import noise_batch, noise_tensors
from raynas.data.transforms import MEAN_STD, balanced_indices, channel_stats, normalize, resize, \
    stratified_split, uint8_nhwc_to_float
from raynas.errors import ConfigError, DataError
from raynas.registry import Registry
from raynas.tasks import Task

__all__ = [
    "Batch", "DATASETS", "DatasetSpec", "ImageData", "Source", "batch_name", "create_batch", "create_dataset",
    "load_cifar", "load_digits_tensors", "load_image_folder", "noise_batch", "parse_batch_name", "parse_spec",
    "task_datasets",
]

#: the train/val partition of file datasets is fixed, so every run and oracle sees the same validation set
SPLIT_SEED = 0
VAL_FRACTION = 0.2
#: sizes of the noise "dataset" used for training smoke tests
NOISE_SIZES = {"train": (1024, 0), "val": (256, 1), "test": (256, 2)}


@dataclass(frozen=True)
class Source:
    """One split of a dataset, images materialised on demand.

    Attributes:
        labels: ``int64 [N]``.
        num_classes: classes of the dataset (not only those present in this split).
        images: ``indices [n] -> float32 [n, 3, size, size]`` normalised.
    """

    labels: np.ndarray
    num_classes: int
    images: Callable[[np.ndarray], torch.Tensor]


#: ``(arg, task, batch_size, seed, size, name) -> Batch``: one scoring batch of any task (see :class:`DatasetSpec`)
TaskBatchFn = Callable[[str, Task, int, int, int, str], Batch]


@dataclass(frozen=True)
class DatasetSpec:
    """A registry entry: how to open the split of a dataset given the spec's argument (path or classes).

    ``task_batch``: how to draw a scoring batch of a task other than classification (targets of the task's kind
    and shape, tiles for a tiled task); None: the dataset has class labels only, and :func:`create_batch` refuses
    other tasks.
    """

    name: str
    open: Callable[[str, str, int], Source]  # (arg, split, size) -> Source
    needs_path: bool
    description: str
    task_batch: TaskBatchFn | None = None


DATASETS: Registry[DatasetSpec] = Registry("dataset")


def parse_spec(spec: str) -> tuple[DatasetSpec, str]:
    """``"cifar10:/data"`` -> (the ``cifar10`` entry, ``"/data"``); validates the argument's presence."""
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError(f"dataset spec must be a non-empty string, got {spec!r}")
    name, _, arg = spec.strip().partition(":")
    entry = DATASETS.get(name)
    if entry.needs_path and not arg:
        raise ConfigError(f"dataset {name!r} needs a path: use '{name}:PATH'")
    if entry.needs_path:
        arg = os.path.expanduser(arg)
        if not Path(arg).exists():
            raise DataError(f"dataset {name!r}: path {arg} does not exist")
    return entry, arg


# --- file-backed datasets -------------------------------------------------------------------------------


def _from_image_data(data: ImageData, split: str, size: int, mean: tuple, std: tuple) -> Source:
    if split in ("train", "val"):
        train, val = stratified_split(data.labels, VAL_FRACTION, SPLIT_SEED)
        keep = train if split == "train" else val
    elif split in ("all", "test"):  # "test" only reaches here with a test-split ImageData
        keep = np.arange(len(data.labels), dtype=np.int64)
    else:
        raise DataError(f"unknown split {split!r} (known: train, val, all, test)")

    def images(idx: np.ndarray) -> torch.Tensor:
        x = resize(uint8_nhwc_to_float(data.images[keep[np.asarray(idx, dtype=np.int64)]]), size)
        return normalize(x, mean, std)

    return Source(data.labels[keep], data.num_classes, images)


@functools.lru_cache(maxsize=2)
def _cifar(path: str, variant: str, split: str) -> ImageData:
    return load_cifar(path, split, variant)


def _open_cifar(variant: str) -> Callable[[str, str, int], Source]:
    def open_(path: str, split: str, size: int) -> Source:
        file_split = "test" if split == "test" else "train"
        data = _cifar(str(Path(path).resolve()), variant, file_split)
        mean, std = MEAN_STD[variant]
        return _from_image_data(data, split, size, mean, std)

    return open_


@functools.lru_cache(maxsize=2)
def _folder(path: str, size: int) -> tuple[ImageData, tuple, tuple]:
    data = load_image_folder(path, size)
    # no standard statistics for an arbitrary folder: normalise with its own per-channel mean/std
    mean, std = channel_stats(uint8_nhwc_to_float(data.images))
    return data, mean, std


def _open_folder(path: str, split: str, size: int) -> Source:
    if split == "test":
        raise DataError("an image folder has no test split (use train, val or all)")
    data, mean, std = _folder(str(Path(path).resolve()), size)
    return _from_image_data(data, split, size, mean, std)


# --- in-memory datasets ---------------------------------------------------------------------------------


def _open_digits(arg: str, split: str, size: int) -> Source:
    if arg:
        raise ConfigError(f"dataset 'digits' takes no argument, got 'digits:{arg}'")
    if split == "test":
        raise DataError("digits has no test split (use train, val or all)")
    keep = digits_split_indices(split, SPLIT_SEED, VAL_FRACTION)
    return Source(digits_labels()[keep], DIGITS_CLASSES,
                  lambda idx: digits_images(keep[np.asarray(idx, dtype=np.int64)], size))


def _noise_classes(arg: str) -> int:
    if not arg:
        return 10
    try:
        k = int(arg)
    except ValueError:
        raise ConfigError(f"noise:C needs an integer number of classes, got {arg!r}") from None
    if k < 1:
        raise ConfigError(f"noise:C needs C >= 1, got {k}")
    return k


def _open_noise(arg: str, split: str, size: int) -> Source:
    k = _noise_classes(arg)
    if split == "all":
        parts = [noise_tensors(n, size, k, s) for n, s in (NOISE_SIZES["train"], NOISE_SIZES["val"])]
        x, y = torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
    elif split in NOISE_SIZES:
        n, s = NOISE_SIZES[split]
        x, y = noise_tensors(n, size, k, s)
    else:
        raise DataError(f"unknown split {split!r} (known: train, val, all, test)")
    return Source(y.numpy(), k, lambda idx: x[torch.as_tensor(np.asarray(idx, dtype=np.int64))])


def _noise_task_batch(arg: str, task: Task, batch_size: int, seed: int, size: int, name: str) -> Batch:
    if arg:  # the classes of a task batch are the network's (the task's), not the spec's
        raise ConfigError(f"noise:{arg} sets the classes of classification; task {task.name!r} has its own "
                          f"({task.num_classes}): use --data noise")
    return noise_batch(batch_size, size, seed=seed, name=name, task=task)


DATASETS.add("digits", DatasetSpec("digits", _open_digits, False, "scikit-learn 8x8 digits, 10 classes (embedded)"))
DATASETS.add("noise", DatasetSpec("noise", _open_noise, False,
                                  "Gaussian noise, noise:C for C classes (default 10); targets of any task",
                                  task_batch=_noise_task_batch))
DATASETS.add("cifar10", DatasetSpec("cifar10", _open_cifar("cifar10"), True, "CIFAR-10 python batches"))
DATASETS.add("cifar100", DatasetSpec("cifar100", _open_cifar("cifar100"), True, "CIFAR-100 python batches"))
DATASETS.add("folder", DatasetSpec("folder", _open_folder, True, "root/<class>/<image> folder (Pillow)"))
DATASETS.add("taskonomy", DatasetSpec("taskonomy", taskonomy.open_source, True,
                                      "Taskonomy RGB + per-task targets (TransNAS-Bench-101's layout), with --task",
                                      task_batch=taskonomy.taskonomy_batch))


# --- factories ------------------------------------------------------------------------------------------


def batch_name(spec: str, batch_size: int, seed: int, size: int) -> str:
    """The name :func:`create_batch` gives its batch (stored in every score row's ``data`` column)."""
    return f"{spec}:seed={seed}:n={batch_size}:size={size}"


def parse_batch_name(name: str) -> dict[str, Any] | None:
    """``{"data": spec, "seed": s, "batch_size": B, "image_size": size}`` of a :func:`batch_name`; None for any
    other text (the spec itself may hold ``:``, e.g. ``cifar10:/data/cifar``)."""
    parts = name.rsplit(":", 3)
    if len(parts) != 4:
        return None
    spec, *fields = parts
    keys = (("seed=", "seed"), ("n=", "batch_size"), ("size=", "image_size"))
    out: dict[str, Any] = {"data": spec}
    for text, (prefix, key) in zip(fields, keys):
        if not text.startswith(prefix):
            return None
        try:
            out[key] = int(text[len(prefix):])
        except ValueError:
            return None
    return out


def task_datasets() -> list[str]:
    """The registered datasets that can make a batch of any task (a ``task_batch`` reader), in registry order."""
    return [n for n in DATASETS.names() if DATASETS.get(n).task_batch is not None]


def create_batch(spec: str, batch_size: int = 64, seed: int = 0, size: int = 32, task: Task | None = None) -> Batch:
    """One fixed mini-batch of ``spec`` for scoring.

    Args:
        spec: dataset spec (see the module docstring).
        batch_size: B.
        seed: draws the samples (class-balanced where class sizes allow, then shuffled); for noise it
            draws the pixels and the uniformly random labels.
        size: image side length (of each tile for a tiled task).
        task: None: classification with the dataset's classes (the batch this function always made). A task
            (e.g. a TransNAS-Bench-101 task from ``space.task(...)``): a batch of its targets, from a dataset
            that has them (:func:`task_datasets`: ``noise``, ``taskonomy:PATH``).
    Returns:
        ``Batch(inputs float32 [B, 3, size, size], labels int64 [B], num_classes,
        name="<spec>:seed=<seed>:n=<B>:size=<size>")``; for a task, ``targets [B, *task.target_shape]`` and
        inputs ``[B, task.tiles, 3, size, size]`` for a tiled task, with the same name.
    Raises:
        UnknownNameError: unknown dataset name. DataError: missing/corrupt files, B larger than the split.
        ConfigError: a task the dataset has no targets for (a class-label dataset given another task).
    """
    entry, arg = parse_spec(spec)
    if batch_size < 1 or size < 1:
        raise ConfigError(f"batch_size and size must be >= 1, got {batch_size} and {size}")
    name = batch_name(spec, batch_size, seed, size)
    if task is not None:
        if entry.task_batch is None:
            raise ConfigError(
                f"dataset {entry.name!r} has class labels only; task {task.name!r} needs {task.target_kind} targets "
                f"{list(task.target_shape)}{f' on {task.tiles} tiles' if task.tiles else ''}: use --data noise "
                f"(noise targets of any task) or a dataset with that task's targets "
                f"({', '.join(f'{n}:PATH' if DATASETS.get(n).needs_path else n for n in task_datasets())})")
        return entry.task_batch(arg, task, batch_size, seed, size, name)
    if entry.name == "noise":  # noise is drawn fresh, labels uniform (there is nothing to balance)
        return noise_batch(batch_size, size, _noise_classes(arg), seed, name)
    src = entry.open(arg, "train", size)
    idx = balanced_indices(src.labels, batch_size, seed)
    x = src.images(idx).float().contiguous()
    y = torch.from_numpy(src.labels[idx].astype(np.int64))
    return Batch(x, y, src.num_classes, name)


def create_dataset(spec: str, split: str = "train", size: int = 32) -> tuple[torch.Tensor, torch.Tensor, int]:
    """A whole split for training: ``(x float32 [N, 3, size, size], y int64 [N], num_classes)``.

    ``split`` is ``train``, ``val``, ``all`` or (CIFAR, noise) ``test``; the train/val partition is fixed.
    """
    entry, arg = parse_spec(spec)
    if size < 1:
        raise ConfigError(f"size must be >= 1, got {size}")
    src = entry.open(arg, split, size)
    x = src.images(np.arange(len(src.labels), dtype=np.int64)).float().contiguous()
    return x, torch.from_numpy(src.labels.astype(np.int64)), src.num_classes
