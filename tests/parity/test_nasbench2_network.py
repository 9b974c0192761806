"""``network="zero_cost_nas"`` is zero-cost-nas's ``nasbench2`` network, logit for logit.

``fixture/nasbench2.npz`` (written by ``scripts/make_nasbench2_fixture.py`` from a checkout of
SamsungLabs/zero-cost-nas) holds, per case, the reference network's parameters and buffers under raynas's
state-dict names, one input batch ``[8, 3, 32, 32]`` and the reference's logits ``[8, 10]`` in train mode and in
eval mode. raynas's network must take that state dict strictly (same modules, same shapes, no extra or missing
entries) and give the same logits; the benchmark's network must not.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn as nn

from raynas.spaces.nb201.space import NB201Space
from raynas.spaces.nb201.model import NB201Cell

FIXTURE = Path(__file__).parent / "fixture" / "nasbench2.npz"
#: max abs logit difference, relative to the largest reference logit (float32; threads may reorder sums)
REL_TOL = 1e-5
SPACE = NB201Space()


@lru_cache(maxsize=None)
def fixture() -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    with np.load(FIXTURE, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    return json.loads(str(arrays.pop("meta"))), arrays


META, _ = fixture()
CASES = sorted(META["cases"])


def state_of(case: str) -> dict[str, torch.Tensor]:
    prefix = f"{case}/state/"
    return {k[len(prefix):]: torch.from_numpy(v.copy()) for k, v in fixture()[1].items() if k.startswith(prefix)}


def build(case: str, network: str) -> nn.Module:
    return SPACE.to_module(META["cases"][case]["arch"], META["num_classes"], C=META["C"], N=META["N"],
                           network=network)


def logits(model: nn.Module, state: dict[str, torch.Tensor], train: bool) -> torch.Tensor:
    """Forward of the stored batch from the stored state (reloaded: a train pass moves the running stats)."""
    model.load_state_dict(state, strict=True)
    model.train(train)
    with torch.no_grad():
        return model(torch.from_numpy(fixture()[1]["inputs"]))


def test_fixture_covers_the_required_cells() -> None:
    archs = {c["arch"] for c in META["cases"].values()}
    ops = [set(SPACE.parse(a).ops) for a in archs]
    assert str(SPACE.index_to_arch(0)) in archs
    assert {"nor_conv_3x3"} in ops and {"skip_connect", "none"} in ops
    assert any("avg_pool_3x3" in o for o in ops) and len(archs) >= 4
    assert META["reference"]["repo"] == "SamsungLabs/zero-cost-nas" and META["network"] == "zero_cost_nas"


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
def test_logits_equal_the_reference(case: str, train: bool) -> None:
    ref = torch.from_numpy(fixture()[1][f"{case}/logits_{'train' if train else 'eval'}"])
    out = logits(build(case, "zero_cost_nas"), state_of(case), train)
    assert out.shape == ref.shape == (fixture()[1]["inputs"].shape[0], META["num_classes"])
    if float((out - ref).abs().max()) <= REL_TOL * float(ref.abs().max()):
        return
    # beyond that: float32 rounding of this forward if within 4x its own float32 error, measured against the same
    # network, weights and batch in float64 (a deep all-conv cell sums ~C*9 products per output through N cells:
    # SSE kernels move its logits by ~1e-5 of their maximum; a wrong op or wiring moves them by far more)
    double = build(case, "zero_cost_nas").double()
    double.load_state_dict({k: v.double() if v.is_floating_point() else v for k, v in state_of(case).items()})
    double.train(train)
    with torch.no_grad():
        out64 = double(torch.from_numpy(fixture()[1]["inputs"]).double())
    f32_error = float((out.double() - out64).abs().max())
    assert float((out - ref).abs().max()) <= max(REL_TOL * float(ref.abs().max()), 4 * f32_error)


@pytest.mark.parametrize("case", CASES)
def test_eval_mode_reads_running_statistics(case: str) -> None:
    """The two modes differ (stem/reduction/head BNs use running stats in eval), so both comparisons count."""
    _, arrays = fixture()
    assert not np.allclose(arrays[f"{case}/logits_train"], arrays[f"{case}/logits_eval"], rtol=1e-3, atol=1e-4)


def _cell_convs_and_bns(model: nn.Module) -> tuple[list[nn.Conv2d], list[nn.BatchNorm2d]]:
    cells = [m for m in model.modules() if isinstance(m, NB201Cell)]
    convs = [m for c in cells for m in c.modules() if isinstance(m, nn.Conv2d)]
    bns = [m for c in cells for m in c.modules() if isinstance(m, nn.BatchNorm2d)]
    return convs, bns


def _outside_cells(model: nn.Module) -> dict[str, tuple[int, ...]]:
    cell_prefixes = tuple(f"{n}." for n, m in model.named_modules() if isinstance(m, NB201Cell))
    return {k: tuple(v.shape) for k, v in model.state_dict().items() if not k.startswith(cell_prefixes)}


@pytest.mark.parametrize("case", CASES)
def test_benchmark_network_differs_only_inside_conv_cells(case: str) -> None:
    zcn, bench = build(case, "zero_cost_nas"), build(case, "benchmark")
    assert _outside_cells(zcn) == _outside_cells(bench)  # stem, reductions, head: the same modules
    zcn_convs, zcn_bns = _cell_convs_and_bns(zcn)
    bench_convs, bench_bns = _cell_convs_and_bns(bench)
    assert len(zcn_convs) == len(bench_convs) and len(zcn_bns) == len(bench_bns)
    assert all(c.bias is not None for c in zcn_convs) and all(c.bias is None for c in bench_convs)
    assert all(not b.affine and not b.track_running_stats for b in zcn_bns)
    assert all(b.affine and b.track_running_stats for b in bench_bns)
    state = state_of(case)
    if zcn_convs:
        n_zcn, n_bench = (sum(p.numel() for p in m.parameters()) for m in (zcn, bench))
        # per cell conv: bias C_out in nasbench2; BN weight + bias 2 * C_out in the benchmark
        assert n_bench - n_zcn == sum(c.out_channels for c in bench_convs)
        with pytest.raises(RuntimeError, match="Missing key|Unexpected key"):
            bench.load_state_dict(state, strict=True)
    else:  # cells without parameters: the two networks are the same function
        for train in (True, False):
            assert torch.equal(logits(bench, state, train), logits(zcn, state, train))
