"""The embedded digits dataset: sizes, split, normalisation and pixel values pinned by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from raynas.data.digits import load_digits_tensors
from raynas.errors import DataError

# sklearn's digits: class sizes 178 182 177 183 181 182 181 179 174 180; pixels 0..16 with mean 4.8842
# (0.305260 after /16) and std 6.0168 (0.376049 after /16) over all 1797 * 64 values.
MEAN8, STD8 = 0.30526028624095713, 0.3760492217920148


def test_split_sizes_are_stratified():
    x_tr, y_tr = load_digits_tensors(size=8, split="train")
    x_va, y_va = load_digits_tensors(size=8, split="val")
    assert x_tr.shape == (1438, 3, 8, 8) and x_va.shape == (359, 3, 8, 8)
    assert x_tr.dtype == torch.float32 and y_tr.dtype == torch.int64
    # per class round(0.2 * n_c) held out: 36 36 35 37 36 36 36 36 35 36
    assert torch.bincount(y_va).tolist() == [36, 36, 35, 37, 36, 36, 36, 36, 35, 36]
    assert torch.bincount(y_tr).tolist() == [142, 146, 142, 146, 145, 146, 145, 143, 139, 144]


def test_pixels_at_native_size():
    x, y = load_digits_tensors(size=8, split="all")
    assert x.shape == (1797, 3, 8, 8) and int(y[0]) == 0
    # image 0, row 0, column 3 holds 13 (of 16); all three channels replicate it
    expected = (13 / 16 - MEAN8) / STD8  # = 1.348839...
    assert x[0, :, 0, 3].tolist() == pytest.approx([expected] * 3, rel=1e-5)
    assert float(x[0, 0, 0, 0]) == pytest.approx(-MEAN8 / STD8, rel=1e-5)


def test_upsampled_is_normalised_and_deterministic():
    x, _ = load_digits_tensors(size=32, split="all")
    assert x.shape == (1797, 3, 32, 32)
    assert torch.equal(x[:, 0], x[:, 2])
    assert float(x.mean()) == pytest.approx(0.0, abs=1e-5)
    assert float(x.std()) == pytest.approx(1.0, abs=1e-3)
    a, ya = load_digits_tensors(size=16, split="val", seed=3)
    b, yb = load_digits_tensors(size=16, split="val", seed=3)
    c, _ = load_digits_tensors(size=16, split="val", seed=4)
    assert torch.equal(a, b) and torch.equal(ya, yb) and not torch.equal(a, c)


def test_train_and_val_partition_the_data():
    x_all, _ = load_digits_tensors(size=8, split="all")
    x_tr, _ = load_digits_tensors(size=8, split="train", seed=1)
    x_va, _ = load_digits_tensors(size=8, split="val", seed=1)
    key = lambda t: {tuple(r) for r in t[:, 0].reshape(len(t), -1).numpy().round(4).tolist()}  # noqa: E731
    assert key(x_tr) | key(x_va) == key(x_all)


def test_bad_arguments():
    with pytest.raises(DataError, match="unknown digits split"):
        load_digits_tensors(split="test")
    with pytest.raises(DataError, match="val_fraction"):
        load_digits_tensors(split="val", val_fraction=1.0)
    assert np.isfinite(load_digits_tensors(size=1, split="val")[0].numpy()).all()


@pytest.mark.slow  # imports scikit-learn (SciPy): seconds on a busy machine
def test_fast_reader_matches_sklearn_load_digits(monkeypatch):
    from raynas.data import digits

    fast_x, fast_y = digits._raw()
    monkeypatch.setattr(digits, "_bundled_csv", lambda: None)
    digits._raw.cache_clear()
    try:
        x, y = digits._raw()
    finally:
        digits._raw.cache_clear()
    assert torch.equal(x, fast_x) and np.array_equal(y, fast_y)
