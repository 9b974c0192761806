"""AZ-NAS's four terms: the formulas on recorded features, the draws, the statuses of degenerate cells."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from raynas.data.batch import Batch
from raynas.metrics import get_metric
from raynas.metrics._az import az_terms, cell_features
from raynas.metrics.engine import compute_metrics
from raynas.testing import tiny_bn_convnet
from raynas_tests.nb201 import tiny_nb201

TERMS = ["az_nas_expressivity", "az_nas_progressivity", "az_nas_trainability"]


def _batch(n: int = 6, hw: int = 8, seed: int = 0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    return Batch(torch.randn(n, 3, hw, hw, generator=g), torch.arange(n) % 4, 4)


def _entropy(feat: np.ndarray) -> float:
    b, c, h, w = feat.shape
    f = feat.transpose(0, 2, 3, 1).reshape(-1, c).astype(np.float64)
    s = np.linalg.eigvalsh(np.cov(f, rowvar=False, bias=True))
    p = s / s.sum()
    return float(-(p * np.log(p + 1e-8)).sum())


def test_expressivity_and_progressivity_are_the_spectral_entropies_of_the_cell_features() -> None:
    net, b = tiny_nb201(C=4, N=1), _batch()
    torch.manual_seed(5)
    x = torch.randn(b.inputs.shape)
    feats = [net.stem(x)]
    for cell in net.cells:
        feats.append(cell(feats[-1]))
    h = np.array([_entropy(f.detach().numpy()) for f in feats])
    assert len(feats) == 1 + 2 + 3  # stem, three cells (N=1) and two reduction blocks
    torch.manual_seed(5)
    t = az_terms(net, b)
    assert float(t.expressivity) == pytest.approx(h.sum(), rel=1e-5)
    assert float(t.progressivity) == pytest.approx(np.min(h[1:] - h[:-1]), rel=1e-4, abs=1e-6)


def test_hooks_record_the_stem_and_every_cell() -> None:
    net = tiny_nb201(C=4, N=2)
    feats = cell_features(net, torch.randn(2, 3, 8, 8))
    assert [f.shape[1] for f in feats] == [4, 4, 4, 8, 8, 8, 16, 16, 16]


def test_trainability_of_a_linear_cell_is_its_singular_value_score() -> None:
    """A 1x1-conv "cell" W (no BN, no ReLU): g_in = W^T g_out, so E[g_in g_out^T] ~ W^T E[g g^T] = W^T for +-1
    probes; the score is -s - 1/(s + 1e-6) + 2 of its top singular value s (up to the probes' sample noise)."""

    class Net(torch.nn.Module):
        def __init__(self, w: torch.Tensor):
            super().__init__()
            self.stem = torch.nn.Identity()
            conv = torch.nn.Conv2d(3, 3, 1, bias=False)
            conv.weight.data = w.reshape(3, 3, 1, 1)
            self.cells = torch.nn.Sequential(conv)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.cells(self.stem(x)).mean(dim=(2, 3))

    w = torch.diag(torch.tensor([2.0, 1.0, 0.5]))
    torch.manual_seed(0)
    t = az_terms(Net(w), Batch(torch.zeros(64, 3, 16, 16), torch.zeros(64, dtype=torch.long), 3))
    s = 2.0
    assert float(t.trainability) == pytest.approx(-s - 1 / (s + 1e-6) + 2, rel=0.02)


def test_the_batch_values_are_not_used_only_its_shape() -> None:
    a = compute_metrics(lambda: tiny_nb201(C=4, N=1), _batch(seed=0), TERMS, seed=1)
    b = compute_metrics(lambda: tiny_nb201(C=4, N=1), _batch(seed=1), TERMS, seed=1)
    c = compute_metrics(lambda: tiny_nb201(C=4, N=1), _batch(seed=0), TERMS, seed=2)
    assert [r.value for r in a] == [r.value for r in b]
    assert [r.value for r in a] != [r.value for r in c]  # the Gaussian input and the probes follow the seed


def test_identity_cell_trainability_is_a_nan_status_not_a_number() -> None:
    skip = "|skip_connect~0|+|none~0|skip_connect~1|+|none~0|none~1|skip_connect~2|"  # the cell is the identity
    (r,) = compute_metrics(lambda: tiny_nb201(skip, C=4, N=1), _batch(), ["az_nas_trainability"])
    assert r.status == "nan" and r.value is None and "-inf" in r.error


def test_all_none_cell_expressivity_is_a_nan_status() -> None:
    none = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
    res = compute_metrics(lambda: tiny_nb201(none, C=4, N=1), _batch(), TERMS[:2], fused=True)
    assert [r.status for r in res] == ["nan", "nan"]


def test_a_network_without_cells_is_an_error_status() -> None:
    (r,) = compute_metrics(lambda: tiny_bn_convnet(3, 4), _batch(), ["az_nas_expressivity"])
    assert r.status == "error" and "stem" in r.error


def test_complexity_is_the_benchmark_flop_count() -> None:
    """MACs plus bias outputs, in millions: raynas's ``flops`` plus the classifier bias (no conv biases in NB201)."""
    net, b = tiny_nb201(C=4, N=1), _batch()
    comp, flops = compute_metrics(lambda: net, b, ["az_nas_complexity", "flops"])
    assert comp.value * 1e6 == pytest.approx(flops.value + 4, abs=1e-6)
    conv = torch.nn.Sequential(torch.nn.Conv2d(3, 2, 3, padding=1, bias=True), torch.nn.Flatten(),
                               torch.nn.Linear(2 * 8 * 8, 5))
    (r,) = compute_metrics(lambda: conv, b, ["az_nas_complexity"])
    assert r.value == pytest.approx((2 * 64 * 27 + 2 * 64 + 128 * 5 + 5) / 1e6)


def test_metadata() -> None:
    for name in TERMS:
        spec = get_metric(name)
        assert (spec.needs_data, spec.needs_labels, spec.pass_kind, spec.uses) == (False, False, "az", ("az",))
        assert "cvlab-yonsei/AZ-NAS" in spec.reference and spec.higher_is_better
        assert spec.inputs.startswith("gaussian")
    assert get_metric("az_nas_complexity").needs_data is False
    assert math.isfinite(compute_metrics(lambda: tiny_nb201(C=4, N=1), _batch(), TERMS)[0].value)
