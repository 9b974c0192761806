"""Gaussian-noise "data": standard normal images and uniformly random labels.

Useful as a data-independent control (a proxy that ranks as well on noise does not use the data) and for
tests; it needs no files. Inputs are already zero-mean unit-variance, so no normalisation is applied.
"""

from __future__ import annotations

import torch

from raynas.data.batch import Batch
from raynas.errors import DataError

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


def noise_batch(batch_size: int = 64, size: int = 32, num_classes: int = DEFAULT_CLASSES, seed: int = 0,
                name: str | None = None) -> Batch:
    """A :class:`Batch` of Gaussian noise (see :func:`noise_tensors`)."""
    x, y = noise_tensors(batch_size, size, num_classes, seed)
    return Batch(x, y, num_classes, name or f"noise:{num_classes}:seed={seed}:n={batch_size}")
