"""MeCo: minimum correlation eigenvalues of every module's output for one Gaussian 64x64 sample."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn

from raynas.data.batch import Batch
from raynas.metrics import get_metric
from raynas.metrics.engine import compute_metrics
from raynas.metrics.meco import MECO_HW
from raynas_tests.nb201 import tiny_nb201


def _batch(n: int = 4, seed: int = 0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    return Batch(torch.randn(n, 3, 8, 8, generator=g), torch.arange(n) % 4, 4)


def _min_eig_corr(a: np.ndarray) -> float:
    c = np.nan_to_num(np.corrcoef(a.reshape(a.shape[0], -1)), nan=0.0, posinf=0.0, neginf=0.0)
    return float(np.linalg.eigvalsh(c).min())


def test_sum_over_modules_of_the_min_correlation_eigenvalue() -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 5, 3, padding=1)
    net = nn.Sequential(conv, nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(5, 4))
    torch.manual_seed(7)
    x = torch.randn(1, 3, MECO_HW, MECO_HW)
    with torch.no_grad():
        c = conv(x)[0].numpy()
        r = torch.relu(conv(x))[0].numpy()
    # the pool/flatten/linear/root outputs are one value per channel: corrcoef NaN -> 0 -> eigenvalue 0
    expected = _min_eig_corr(c) + _min_eig_corr(r)
    (res,) = compute_metrics(lambda: net, _batch(), ["meco"], seed=7)
    assert res.status == "ok" and res.value == pytest.approx(expected, rel=1e-5, abs=1e-6)


def test_one_random_sample_the_batch_is_not_read() -> None:
    a = compute_metrics(lambda: tiny_nb201(C=4, N=1), _batch(seed=0), ["meco"], seed=3)
    b = compute_metrics(lambda: tiny_nb201(C=4, N=1), _batch(seed=1).head(2), ["meco"], seed=3)
    c = compute_metrics(lambda: tiny_nb201(C=4, N=1), _batch(seed=0), ["meco"], seed=4)
    assert a[0].value == b[0].value != c[0].value


def test_metadata_and_fused_equal() -> None:
    spec = get_metric("meco")
    assert (spec.needs_data, spec.needs_labels, spec.bn, spec.mode) == (False, False, "keep", "train")
    assert "HamsterMimi/MeCo" in spec.reference and "64, 64" in spec.inputs
    assert get_metric("grad_norm").inputs == "batch"
    plain = compute_metrics(lambda: tiny_nb201(C=4, N=1), _batch(), ["meco", "snip"], seed=1)
    fast = compute_metrics(lambda: tiny_nb201(C=4, N=1), _batch(), ["meco", "snip"], seed=1, fused=True)
    assert plain[0].value == fast[0].value
