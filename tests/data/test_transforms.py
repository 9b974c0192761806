"""Balanced draws, stratified splits and normalisation on tiny hand-checkable inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from raynas.data.transforms import (
    MEAN_STD,
    balanced_indices,
    channel_stats,
    normalize,
    resize,
    stratified_split,
    uint8_nhwc_to_float,
)
from raynas.errors import DataError


def test_balanced_indices_gives_shortfall_to_other_classes():
    labels = np.array([0, 0, 0, 1, 1, 2])
    for seed in range(5):
        idx = balanced_indices(labels, 5, seed)
        assert len(set(idx.tolist())) == 5
        assert np.bincount(labels[idx], minlength=3).tolist() == [2, 2, 1]
    assert sorted(balanced_indices(labels, 6, 0).tolist()) == [0, 1, 2, 3, 4, 5]
    with pytest.raises(DataError, match="exceeds the 6 samples"):
        balanced_indices(labels, 7, 0)


def test_balanced_indices_exact_balance_and_determinism():
    labels = np.repeat(np.arange(4), 10)
    idx = balanced_indices(labels, 12, seed=7)
    assert np.bincount(labels[idx]).tolist() == [3, 3, 3, 3]
    assert np.array_equal(idx, balanced_indices(labels, 12, seed=7))
    assert not np.array_equal(idx, balanced_indices(labels, 12, seed=8))
    # remainder: 14 = 4 * 3 + 2 -> two classes get 4
    assert sorted(np.bincount(labels[balanced_indices(labels, 14, 0)]).tolist()) == [3, 3, 4, 4]


def test_stratified_split():
    labels = np.array([0] * 5 + [1] * 3)
    train, val = stratified_split(labels, 0.4, seed=0)
    assert np.bincount(labels[val]).tolist() == [2, 1]  # round(2.0), round(1.2)
    assert sorted(train.tolist() + val.tolist()) == list(range(8))


def test_normalisation_values():
    img = np.zeros((1, 2, 2, 3), np.uint8)
    img[..., 0] = 255
    img[..., 2] = 51
    x = uint8_nhwc_to_float(img)
    assert x.shape == (1, 3, 2, 2) and x[0, :, 0, 0].tolist() == pytest.approx([1.0, 0.0, 0.2])
    y = normalize(x, (0.5, 0.0, 0.1), (0.25, 1.0, 0.5))
    assert y[0, :, 1, 1].tolist() == pytest.approx([2.0, 0.0, 0.2])
    mean, std = channel_stats(torch.tensor([[[[1.0, 3.0]]], [[[5.0, 7.0]]]]))  # one channel: 1 3 5 7
    assert mean == pytest.approx((4.0,)) and std == pytest.approx((5.0 ** 0.5,))
    # NB201's CIFAR-10 statistics
    assert MEAN_STD["cifar10"][0][0] == pytest.approx(0.4913725)
    assert MEAN_STD["cifar10"][1][2] == pytest.approx(0.2615686)


def test_resize_constant_and_noop():
    x = torch.full((2, 3, 8, 8), 0.25)
    assert resize(x, 8) is x
    assert torch.allclose(resize(x, 32), torch.full((2, 3, 32, 32), 0.25))
    assert torch.allclose(resize(torch.full((1, 3, 32, 32), 0.5), 4), torch.full((1, 3, 4, 4), 0.5))
