"""CUDA paths of the metric engines: same values as on CPU, no host sync inside the fused loss pass, real OOM.

Skipped without a CUDA device (CI has none); run on a GPU machine with ``pytest tests/metrics/test_cuda.py``.
"""

from __future__ import annotations

import pytest
import torch

from raynas.data.batch import Batch
from raynas.metrics import fused, get_metric
from raynas.metrics.engine import compute_metrics
from raynas_tests.nb201 import tiny_nb201

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

ROBOT = ["grad_norm", "snip", "grasp", "fisher", "synflow", "jacob_cov"]
CUDA = torch.device("cuda")


def _batch(n: int = 8, hw: int = 16, classes: int = 10) -> Batch:
    g = torch.Generator().manual_seed(0)
    return Batch(torch.randn(n, 3, hw, hw, generator=g), torch.arange(n) % classes, classes)


def _factory():  # type: ignore[no-untyped-def]
    return tiny_nb201(C=8, N=1, num_classes=10)


@pytest.mark.parametrize("fused_engine", [False, True], ids=["unfused", "fused"])
def test_cuda_values_equal_cpu_values(fused_engine: bool) -> None:
    names = ROBOT + ["naswot", "ntk_trace"]
    cpu = compute_metrics(_factory, _batch(), names, seed=0, fused=fused_engine)
    gpu = compute_metrics(_factory, _batch(), names, seed=0, fused=fused_engine, device=CUDA)
    for a, b in zip(cpu, gpu):
        assert b.status == "ok" and b.device.startswith("cuda"), (a.metric, b.status, b.error)
        assert b.value == pytest.approx(a.value, rel=1e-3), a.metric  # cuDNN picks other algorithms


def test_fused_equals_unfused_on_cuda_with_channels_last_and_tf32() -> None:
    plain = compute_metrics(_factory, _batch(), ROBOT, seed=0, device=CUDA)
    fast = compute_metrics(_factory, _batch(), ROBOT, seed=0, fused=True, device=CUDA, channels_last=True,
                           allow_tf32=True)
    for a, b in zip(plain, fast):
        assert b.status == "ok" and b.value == pytest.approx(a.value, rel=1e-2), a.metric


def test_fused_loss_pass_makes_no_host_sync() -> None:
    model = _factory().to(CUDA).train()
    batch = _batch().to(CUDA)
    uses = frozenset({"weights", "weight_grads", "hvp", "fisher", "input_jac"})
    fused.loss_pass(model, batch, uses)  # warm-up: lazy CUDA initialisation may sync
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        shared = fused.loss_pass(model, batch, uses)
        # not jacob_cov's reduce: torch.linalg.eigvalsh checks its solver's status on the host
        for name in ("grad_norm", "snip", "grasp", "fisher"):
            get_metric(name).reduce(shared, batch)  # type: ignore[misc]
    finally:
        torch.cuda.set_sync_debug_mode("default")


def test_real_cuda_oom_is_retried_on_a_smaller_batch_or_recorded() -> None:
    free, _ = torch.cuda.mem_get_info()
    hold = torch.empty(int(free * 0.98) // 4, dtype=torch.float32, device=CUDA)  # leave ~2 % for the run
    try:
        res = compute_metrics(lambda: tiny_nb201(C=64, N=5, num_classes=10), _batch(n=512, hw=32), ["grasp"],
                              seed=0, fused=True, device=CUDA)
    finally:
        del hold
        torch.cuda.empty_cache()
    (r,) = res
    assert r.status in ("ok", "oom"), (r.status, r.error)
    if r.status == "ok":  # the note says which batch size it finally used
        assert "after out-of-memory" in r.error
