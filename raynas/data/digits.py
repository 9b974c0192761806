"""scikit-learn's bundled handwritten digits as a tiny RGB image dataset: the project's default data.

1,797 grayscale 8x8 images (values 0..16), 10 classes, shipped inside scikit-learn (no download). They
are scaled to [0, 1], bilinearly upsampled to ``size x size``, the channel replicated to 3, and
normalised with the mean/std of the whole dataset at that size (one statistic for every split, so train
and validation tensors live in the same input space).
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import numpy as np
import torch

from raynas.data.transforms import channel_stats, normalize, resize, stratified_split
from raynas.errors import DataError

NUM_CLASSES = 10
SPLITS = ("train", "val", "all")


def _bundled_csv() -> Path | None:
    """scikit-learn's ``datasets/data/digits.csv.gz``, located without importing scikit-learn."""
    spec = importlib.util.find_spec("sklearn")  # a top-level spec lookup does not run sklearn/__init__
    if spec is None or not spec.submodule_search_locations:
        return None
    p = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data" / "digits.csv.gz"
    return p if p.is_file() else None


@functools.lru_cache(maxsize=1)
def _raw() -> tuple[torch.Tensor, np.ndarray]:
    """``(float32 [1797, 1, 8, 8] in [0, 1], int64 labels [1797])``; cached, the file is parsed once.

    The CSV that ``sklearn.datasets.load_digits`` parses (64 pixel columns, then the label) is read
    directly: importing scikit-learn pulls in SciPy and costs seconds per process. ``load_digits`` is the
    fallback when the file is not where scikit-learn keeps it.
    """
    path = _bundled_csv()
    if path is not None:
        table = np.loadtxt(path, delimiter=",", dtype=np.float32)
        images, target = table[:, :-1].reshape(-1, 8, 8), table[:, -1]
    else:
        try:
            from sklearn.datasets import load_digits
        except ImportError:
            raise DataError("the digits dataset needs scikit-learn (pip install scikit-learn)") from None
        d = load_digits()
        images, target = np.asarray(d.images, dtype=np.float32), d.target
    if images.shape != (1797, 8, 8):
        raise DataError(f"scikit-learn's digits have an unexpected shape {images.shape}")
    x = torch.from_numpy(np.ascontiguousarray(images) / 16.0).unsqueeze(1)
    return x, np.asarray(target, dtype=np.int64)


@functools.lru_cache(maxsize=4)
def _normalised(size: int) -> torch.Tensor:
    """All images as ``float32 [1797, 3, size, size]``, normalised (cached per size; callers index a copy)."""
    x, _ = _raw()
    x = resize(x, size).expand(-1, 3, -1, -1)
    mean, std = channel_stats(x)
    return normalize(x, mean, std).contiguous()


def digits_labels() -> np.ndarray:
    """The 1,797 labels (int64), in the dataset's own order."""
    return _raw()[1].copy()


def digits_split_indices(split: str, seed: int = 0, val_fraction: float = 0.2) -> np.ndarray:
    """Sorted sample indices of ``split``: a per-class stratified split drawn by ``seed``."""
    labels = _raw()[1]
    if split == "all":
        return np.arange(len(labels), dtype=np.int64)
    if split not in SPLITS:
        raise DataError(f"unknown digits split {split!r} (known: {', '.join(SPLITS)})")
    train, val = stratified_split(labels, val_fraction, seed)
    return train if split == "train" else val


def digits_images(indices: np.ndarray, size: int = 32) -> torch.Tensor:
    """``float32 [len(indices), 3, size, size]`` normalised images (a new tensor)."""
    if size < 1:
        raise DataError(f"image size must be >= 1, got {size}")
    return _normalised(int(size))[torch.as_tensor(np.asarray(indices, dtype=np.int64))]


def load_digits_tensors(
    size: int = 32, split: str = "train", seed: int = 0, val_fraction: float = 0.2
) -> tuple[torch.Tensor, torch.Tensor]:
    """The digits as training tensors.

    Args:
        size: output side length (bilinear from 8x8).
        split: ``"train"``, ``"val"`` (``round(val_fraction * n_c)`` of every class ``c``) or ``"all"``.
        seed: draws the split; the same seed always gives the same partition.
        val_fraction: share of each class held out for validation.
    Returns:
        ``x float32 [N, 3, size, size]`` (normalised) and ``y int64 [N]``; with the defaults N is 1,438
        for ``train`` and 359 for ``val``.
    """
    idx = digits_split_indices(split, seed, val_fraction)
    return digits_images(idx, size), torch.from_numpy(_raw()[1][idx].copy())
