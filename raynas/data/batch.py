"""The unit of input every metric sees: one fixed mini-batch."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from raynas.errors import DataError


@dataclass(frozen=True)
class Batch:
    """One mini-batch.

    Attributes:
        inputs: float tensor ``[B, C, H, W]`` (normalised images).
        labels: int64 tensor ``[B]`` with values in ``[0, num_classes)``.
        num_classes: number of classes of the dataset the batch was drawn from.
        name: a short description stored with the scores (e.g. ``"digits:seed=0:n=64"``).
    """

    inputs: torch.Tensor
    labels: torch.Tensor
    num_classes: int
    name: str = "batch"

    def __post_init__(self) -> None:
        if self.inputs.dim() != 4:
            raise DataError(f"batch inputs must be [B, C, H, W], got shape {tuple(self.inputs.shape)}")
        if self.labels.dim() != 1 or self.labels.shape[0] != self.inputs.shape[0]:
            raise DataError(
                f"batch labels must be [B] with B={self.inputs.shape[0]}, got {tuple(self.labels.shape)}"
            )
        if self.num_classes < 1:
            raise DataError(f"num_classes must be >= 1, got {self.num_classes}")
        if self.labels.numel() and (int(self.labels.min()) < 0 or int(self.labels.max()) >= self.num_classes):
            raise DataError(f"labels outside [0, {self.num_classes})")

    @property
    def size(self) -> int:
        return int(self.inputs.shape[0])

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> "Batch":
        x = self.inputs.to(device=device, dtype=dtype) if dtype is not None else self.inputs.to(device)
        return Batch(x, self.labels.to(device), self.num_classes, self.name)

    def head(self, n: int) -> "Batch":
        """The first ``n`` samples (used to retry with a smaller batch after an OOM)."""
        return Batch(self.inputs[:n], self.labels[:n], self.num_classes, f"{self.name}[:{n}]")
