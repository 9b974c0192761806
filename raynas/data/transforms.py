"""Tensor conversions shared by the dataset readers: layout, resizing, normalisation, balanced draws.

Every reader ends in the same form: ``float32 [N, 3, H, W]`` normalised per channel, so metric values do
not depend on which reader produced the batch.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from raynas.errors import DataError

#: per-channel (mean, std) of the training images in [0, 1], the values NAS-Bench-201 trains with
#: (its CIFAR pipelines use mean=[125.3, 123.0, 113.9]/255, std=[63.0, 62.1, 66.7]/255, and the
#: CIFAR-100 counterparts). Using the benchmark's own numbers keeps scores comparable to the papers.
MEAN_STD: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "cifar10": ((125.3 / 255, 123.0 / 255, 113.9 / 255), (63.0 / 255, 62.1 / 255, 66.7 / 255)),
    "cifar100": ((129.3 / 255, 124.1 / 255, 112.4 / 255), (68.2 / 255, 65.4 / 255, 70.4 / 255)),
}


def uint8_nhwc_to_float(images: np.ndarray) -> torch.Tensor:
    """``uint8 [N, H, W, 3]`` -> ``float32 [N, 3, H, W]`` in ``[0, 1]``."""
    if images.ndim != 4 or images.shape[-1] != 3:
        raise DataError(f"expected images [N, H, W, 3], got shape {images.shape}")
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div_(255.0)


def resize(x: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear resize of ``x [N, C, H, W]`` to ``[N, C, size, size]`` (a no-op at the same size).

    Antialiasing is on when shrinking so that downsampled images do not alias; upsampling is unaffected.
    """
    if size < 1:
        raise DataError(f"image size must be >= 1, got {size}")
    if x.shape[-2:] == (size, size):
        return x
    shrink = size < x.shape[-1] or size < x.shape[-2]
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=shrink)


def channel_stats(x: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and (population) std of ``x [N, C, H, W]``, computed in float64."""
    if x.numel() == 0:
        raise DataError("cannot compute normalisation statistics of an empty dataset")
    d = x.double().transpose(0, 1).reshape(x.shape[1], -1)
    mean = d.mean(dim=1)
    std = d.std(dim=1, unbiased=False)
    # a constant channel carries no information: centre it but do not scale (dividing by ~0 would turn
    # rounding noise into huge values)
    std = torch.where(std < 1e-6, torch.ones_like(std), std)
    return tuple(float(v) for v in mean), tuple(float(v) for v in std)


def normalize(x: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """``(x - mean) / std`` per channel of ``x [N, C, H, W]`` (a new tensor)."""
    if len(mean) != x.shape[1] or len(std) != x.shape[1]:
        raise DataError(f"mean/std have {len(mean)}/{len(std)} entries for {x.shape[1]} channels")
    m = torch.tensor(mean, dtype=x.dtype).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=x.dtype).view(1, -1, 1, 1)
    return (x - m) / s


def balanced_indices(labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    """``n`` distinct indices into ``labels [N]``, as class-balanced as the class sizes allow.

    Every class gets ``n // K`` samples and ``n % K`` randomly chosen classes one more; a class with too
    few samples is taken whole and its shortfall is shared equally by the others. The result is shuffled
    so any prefix (``Batch.head`` after an OOM) stays class-mixed. Same ``(labels, n, seed)`` -> same indices.
    """
    labels = np.asarray(labels)
    if n < 1:
        raise DataError(f"batch size must be >= 1, got {n}")
    if n > len(labels):
        raise DataError(f"batch size {n} exceeds the {len(labels)} samples of the dataset")
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    members = [np.flatnonzero(labels == c) for c in classes]
    counts = np.array([len(m) for m in members])
    # water-filling: small classes are taken whole, the rest share what is left equally, and the
    # remainder goes to randomly chosen classes among those that still have samples
    quota = np.zeros(len(classes), dtype=np.int64)
    remaining = n
    by_size = np.argsort(counts, kind="stable")
    for i, c in enumerate(by_size):
        if counts[c] <= remaining // (len(classes) - i):
            quota[c] = counts[c]
            remaining -= counts[c]
            continue
        rest = by_size[i:]
        level, extra = divmod(remaining, len(rest))
        quota[rest] = level
        quota[rng.choice(rest, size=extra, replace=False)] += 1
        break
    picked = [rng.permutation(m)[:q] for m, q in zip(members, quota)]
    return rng.permutation(np.concatenate(picked)).astype(np.int64)


def stratified_split(labels: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(train_idx, val_idx)``: per class, ``round(n_c * val_fraction)`` samples go to validation.

    Both index arrays are sorted (the split decides membership, not order).
    """
    if not 0.0 < val_fraction < 1.0:
        raise DataError(f"val_fraction must be in (0, 1), got {val_fraction}")
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    val: list[np.ndarray] = []
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        val.append(members[: int(round(len(members) * val_fraction))])
    val_idx = np.sort(np.concatenate(val)) if val else np.zeros(0, dtype=np.int64)
    train_mask = np.ones(len(labels), dtype=bool)
    train_mask[val_idx] = False
    return np.flatnonzero(train_mask).astype(np.int64), val_idx.astype(np.int64)
