"""Tiny NAS-Bench-201 networks for fast metric, oracle and training tests (8x8 inputs work with the default 3
stages). NB201-specific, so here and not in :mod:`raynas.testing`, which names no search space."""

from __future__ import annotations

import torch
import torch.nn as nn

from raynas.spaces import create_space

#: every edge a 3x3 convolution: a deterministic, non-trivial cell
NB201_CONV3 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"


def tiny_nb201(arch: str = NB201_CONV3, num_classes: int = 4, C: int = 4, N: int = 1, seed: int = 0) -> nn.Module:
    """A freshly initialised NB201 network (``[B, 3, H, W] -> [B, num_classes]``, H and W divisible by 4)."""
    torch.manual_seed(seed)
    return create_space("nb201").to_module(arch, num_classes, C=C, N=N)
