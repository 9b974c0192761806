"""Shared helpers of the linear-region counts: their inputs and the count of distinct activation patterns.

Used by ``linear_regions`` (TE-NAS: 3 x 1000 crops of real images), ``linear_regions_gaussian`` and TE-NAS
pruning (:mod:`raynas.pruning.measure`).
"""

from __future__ import annotations

from typing import Literal, Sequence

import torch
import torch.nn as nn

from raynas.errors import ConfigError
from raynas.metrics._codes import activation_codes

RegionInputs = Literal["gaussian", "crops"]


def region_inputs(
    kind: RegionInputs, n: int, channels: int, seed: int, images: torch.Tensor | None = None, size: int = 3
) -> torch.Tensor:
    """``[n, channels, size, size]`` float32 inputs for the region count, deterministic in ``seed``.

    ``gaussian``: standard normal. ``crops``: for each sample a random image of ``images [B, C, H, W]``,
    ``channels`` distinct random channels of it (sorted) and a random ``size x size`` window (TE-NAS:
    ``RandomCrop(3)`` then ``RandChannel(1)`` of normalised dataset images). Tiled images ``[B, T, C, H, W]``
    (TransNAS-Bench-101's jigsaw) give ``[n, T, channels, size, size]``: the same window and channels of every
    tile of the drawn image (the same draws as for ``[B, C, H, W]``).
    """
    gen = torch.Generator().manual_seed(seed)
    if kind == "gaussian":
        return torch.randn(n, channels, size, size, generator=gen)
    if kind != "crops":
        raise ConfigError(f"region inputs must be 'gaussian' or 'crops', got {kind!r}")
    if images is None or images.dim() not in (4, 5):
        raise ConfigError("crop region inputs need the batch images [B, C, H, W] (or tiles [B, T, C, H, W])")
    imgs = images.detach().float().cpu()
    B, (C, H, W), tiles = imgs.shape[0], imgs.shape[-3:], tuple(imgs.shape[1:-3])
    if C < channels or H < size or W < size:
        raise ConfigError(f"cannot crop {channels}x{size}x{size} inputs from images of shape {tuple(imgs.shape)}")
    idx = torch.randint(B, (n,), generator=gen)
    ys = torch.randint(H - size + 1, (n,), generator=gen)
    xs = torch.randint(W - size + 1, (n,), generator=gen)
    out = torch.empty(n, *tiles, channels, size, size)
    for s in range(n):
        ch = torch.randperm(C, generator=gen)[:channels].sort().values
        y, x = int(ys[s]), int(xs[s])
        out[s] = imgs[int(idx[s])].index_select(-3, ch)[..., y : y + size, x : x + size]
    return out


def input_channels(model: nn.Module, default: int) -> int:
    """The channels ``model`` takes: its ``in_channels`` attribute (the space networks set it), else its first
    ``nn.Conv2d``'s ``in_channels``, else ``default`` (a cell of only pools and skips has no conv to ask)."""
    declared = getattr(model, "in_channels", None)
    if isinstance(declared, int) and not isinstance(declared, bool):
        return declared
    conv = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    return int(conv.in_channels) if conv is not None else default


def count_patterns(model: nn.Module, chunks: Sequence[torch.Tensor]) -> int:
    """Distinct ReLU activation patterns over all samples of ``chunks`` (each ``[n_k, C, h, w]`` is ONE forward:
    in train mode its BatchNorms normalise over that chunk, as TE-NAS's batches of 1000)."""
    codes = torch.cat([activation_codes(model, x) for x in chunks], dim=0)
    return int(torch.unique(codes.to(torch.uint8), dim=0).shape[0])
