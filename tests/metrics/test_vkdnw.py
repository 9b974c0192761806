"""vkdnw: entropy of the deciles of the Fisher spectrum (VKDNW), Cholesky factor of the softmax covariance."""

from __future__ import annotations

import math

import torch

from raynas.data.batch import Batch
from raynas.metrics import get_metric
from raynas.metrics.engine import compute_metrics
from raynas.metrics.vkdnw import ALPHA, fisher_entropy, selected_jacobian, softmax_cholesky
from raynas.testing import tiny_bn_convnet


def _batch(seed: int = 0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    return Batch(torch.randn(5, 3, 6, 6, generator=g), torch.arange(5) % 3, 3)


def test_cholesky_factor_reproduces_the_smoothed_softmax_covariance() -> None:
    logits = torch.randn(4, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    low = softmax_cholesky(logits)
    a = float(ALPHA)
    p = torch.softmax(logits, 1) * (1 - a) + a / 5
    cov = torch.diag_embed(p) - p[:, :, None] * p[:, None, :]
    # not exact: (1 - a) and a / K are float16 in the reference, so p sums to 1 only to ~1e-4 while q_K is set to
    # 0; the reference's own back-test accepts an error below 1e-3
    err = float((low @ low.transpose(1, 2) - cov).abs().max())
    assert err < 1e-3
    assert float((low.transpose(1, 2) @ low - cov).abs().max()) > 10 * err  # the factor is L, not L^T
    assert torch.equal(low, torch.tril(low))


def test_jacobian_of_the_selected_weights_equals_autograd_per_sample() -> None:
    net = tiny_bn_convnet(3, 3).double().eval()
    x = _batch().inputs.double()
    jac = selected_jacobian(net, x)
    params = list(net.parameters())
    assert jac.shape == (5, 3, len(params))
    for b in range(2):
        for k in range(3):
            grads = torch.autograd.grad(net(x[b:b + 1])[0, k], params)
            want = torch.stack([g.reshape(-1)[0] for g in grads])
            assert torch.allclose(jac[b, k], want, atol=1e-12)


def test_reinitialised_so_the_networks_weights_do_not_matter_but_the_seed_does() -> None:
    (a,) = compute_metrics(lambda: tiny_bn_convnet(3, 3), _batch(), ["vkdnw"], seed=0)
    torch.manual_seed(99)
    other = tiny_bn_convnet(3, 3)
    (b,) = compute_metrics(lambda: other, _batch(), ["vkdnw"], seed=0)
    (c,) = compute_metrics(lambda: tiny_bn_convnet(3, 3), _batch(), ["vkdnw"], seed=1)
    assert a.status == "ok" and a.value == b.value and c.value != a.value
    assert 0.0 <= a.value <= math.log(9) + 1e-9  # entropy of 9 normalised deciles


def test_spec() -> None:
    spec = get_metric("vkdnw")
    assert spec.dtype == torch.float64 and spec.mode == "eval" and not spec.needs_labels


def test_vkdnw_f32_is_the_same_computation_in_float32() -> None:
    spec = get_metric("vkdnw_f32")
    assert spec.dtype == torch.float32 and spec.mode == "eval" and not spec.needs_labels
    (f64, f32) = compute_metrics(lambda: tiny_bn_convnet(3, 3), _batch(), ["vkdnw", "vkdnw_f32"], seed=0)
    torch.manual_seed(0)
    net = tiny_bn_convnet(3, 3).eval()
    torch.manual_seed(0)  # the engine seeds before the metric's own Kaiming re-initialisation
    want = fisher_entropy(net, _batch())
    assert f32.status == "ok" and f32.value == want
    assert f64.status == "ok" and f64.value != f32.value  # float64 is another rounding of the same definition
