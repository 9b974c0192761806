"""Batched engine: K architectures in one stacked network give the per-arch engine's values and statuses."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from raynas.data.batch import Batch
from raynas.metrics import get_metric, list_metrics
from raynas.errors import ConfigError
from raynas.metrics.batched import BATCHED_METRICS, batched_names, compute_metrics_batched, per_arch_metrics
from raynas.metrics.batched import engine as batched_engine
from raynas.metrics._layers import cross_entropy, grads_or_zeros, hessian_gradient, layer_weights
from raynas.metrics.engine import compute_metrics, prepare_model
from raynas.spaces import create_space
from raynas.spaces.parity import CASES, NUM_CLASSES, build_network
from raynas.spaces.stacking import stack_networks
from raynas.testing import TinyConvNet

NB201 = create_space("nb201")
ALL_NONE = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
ALL_SKIP = "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|"
#: mixed cells: official indices (every op occurs), the all-none and all-skip cells, a pool-only cell
ARCHS = [NB201.format(NB201.index_to_arch(i)) for i in (0, 1, 6111, 9930, 13714, 12345)] + [ALL_NONE, ALL_SKIP]
POOL = "|avg_pool_3x3~0|+|avg_pool_3x3~0|avg_pool_3x3~1|+|avg_pool_3x3~0|avg_pool_3x3~1|none~2|"
#: a metric the batched engine does not batch (scored per arch inside the same call)
FALLBACK = ["flops", "ntk_trace"]
#: float32 results of two summation orders (stacked grouped convolutions vs one network): a few ulps of the value
#: for a sum of same-signed terms, accumulated over the ~1e4 terms of these networks
REL = 1e-5
#: GraSP sums terms of both signs that cancel (all-conv cells: the value is ~1e-6 of sum |W ⊙ Hg|), so float32
#: rounding of either order is relative to that sum of magnitudes, not to the value: measured 0.15 float32 ulps of
#: it (1.8e-8) between the engines, on any kernel; 1e-6 of it is ~8 ulps, and still 1e-3 of any one layer's share
GRASP_TERMS_REL = 1e-6


def _grasp_terms(factory, batch: Batch, seed: int) -> float:  # type: ignore[no-untyped-def]
    """``sum |W ⊙ Hg|`` of the network the engine scores (same seed, same preparation): GraSP's float32 scale."""
    torch.manual_seed(seed)
    net = prepare_model(factory(), get_metric("grasp"), torch.device("cpu"))
    w = layer_weights(net)
    g = [t.detach() for t in grads_or_zeros(cross_entropy(net, batch), w)]
    hg = hessian_gradient(g, grads_or_zeros(cross_entropy(net, batch), w, create_graph=True), w)
    return 0.0 if hg is None else float(sum((wi.detach() * h).abs().sum() for wi, h in zip(w, hg)))


def _batch(n: int = 6, hw: int = 8, classes: int = 5, seed: int = 0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    return Batch(torch.randn(n, 3, hw, hw, generator=g), torch.randint(0, classes, (n,), generator=g), classes)


def _factories(archs: list[str], classes: int = 5, **kw):  # type: ignore[no-untyped-def]
    kw = {"C": 4, "N": 1, **kw}
    return [lambda a=a: NB201.to_module(a, classes, **kw) for a in archs]


def _assert_same(per_arch: list, batched: list, facs: list, batch: Batch, seed: int) -> None:  # type: ignore[type-arg]
    """Same metrics, statuses and errors; values within float32 rounding of the two summation orders."""
    assert len(per_arch) == len(batched) == len(facs)
    for ra, rb, fac in zip(per_arch, batched, facs):
        assert [r.metric for r in ra] == [r.metric for r in rb]
        for a, b in zip(ra, rb):
            assert (a.status, a.error) == (b.status, b.error), (a, b)
            if a.value is None:
                continue
            if a.metric == "grasp":
                tol = GRASP_TERMS_REL * _grasp_terms(fac, batch, seed) + 1e-12
                assert abs(b.value - a.value) <= tol, (a.value, b.value, tol)
            else:
                assert b.value == pytest.approx(a.value, rel=REL, abs=1e-12), a.metric


def _no_fallback_for_batched(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Record the metrics the batched engine sends to the per-arch engine."""
    calls: list[list[str]] = []
    real = batched_engine.compute_metrics

    def spy(factory, batch, names, **kw):  # type: ignore[no-untyped-def]
        calls.append(list(names))
        return real(factory, batch, names, **kw)

    monkeypatch.setattr(batched_engine, "compute_metrics", spy)
    return calls


@pytest.mark.parametrize("network", ["benchmark", "zero_cost_nas"])
@pytest.mark.parametrize("k", [1, 3, 8])
def test_equal_to_per_arch_scoring(k: int, network: str, monkeypatch: pytest.MonkeyPatch) -> None:
    archs = (ARCHS * 2)[:k] if k < 8 else ARCHS[-k:]
    if k == 3:
        archs = [POOL, ALL_NONE, ALL_SKIP]
    names = [*BATCHED_METRICS, *FALLBACK]
    batch = _batch()
    facs = _factories(archs, network=network)
    ref = [compute_metrics(f, batch, names, seed=3, fused=True) for f in facs]
    calls = _no_fallback_for_batched(monkeypatch)
    got = compute_metrics_batched(facs, batch, names, seed=3)
    _assert_same(ref, got, facs, batch, 3)
    assert calls == [FALLBACK] * k  # every batchable metric came from the stacked passes
    assert all(r.status == "ok" for rows in got for r in rows if r.metric in ("grad_norm", "synflow", "params"))


def test_nodes_no_arch_feeds_are_zeros(monkeypatch: pytest.MonkeyPatch) -> None:
    """Node 1 is fed by a ``none`` edge in every arch of the stack (a node state no op writes), N=2 cells."""
    calls = _no_fallback_for_batched(monkeypatch)
    archs = [ALL_NONE, "|none~0|+|skip_connect~0|nor_conv_3x3~1|+|nor_conv_1x1~0|avg_pool_3x3~1|none~2|"]
    facs = [lambda a=a: NB201.to_module(a, 5, C=4, N=2) for a in archs]
    names = ["grad_norm", "snip", "synflow", "jacob_cov"]
    batch = _batch()
    _assert_same([compute_metrics(f, batch, names, seed=0, fused=True) for f in facs],
                 compute_metrics_batched(facs, batch, names, seed=0), facs, batch, 0)
    assert calls == []  # computed by the stacked passes, not by the per-arch fallback


@pytest.mark.parametrize("archs", [[ALL_NONE], [ALL_NONE, ALL_SKIP]], ids=["alone", "with_skip"])
def test_a_cell_cutting_the_input_off(archs: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """All-none cells: the logits do not reach the input (a zero Jacobian, NaN correlation: status nan)."""
    calls = _no_fallback_for_batched(monkeypatch)
    names = ["jacob_cov", "grad_norm", "grasp", "fisher", "naswot", "synflow"]
    batch, facs = _batch(), _factories(archs)
    ref = [compute_metrics(f, batch, names, seed=0, fused=True) for f in facs]
    _assert_same(ref, compute_metrics_batched(facs, batch, names, seed=0), facs, batch, 0)
    assert calls == [] and ref[0][0].status == "nan"


def test_a_failing_batched_pass_falls_back_per_arch(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*a, **kw):  # type: ignore[no-untyped-def]
        raise TypeError("a bug in a batched pass")

    monkeypatch.setattr(batched_engine, "_loss_pass", broken)
    calls = _no_fallback_for_batched(monkeypatch)
    batch, facs = _batch(), _factories(ARCHS[:2])
    _assert_same([compute_metrics(f, batch, ["snip", "synflow"], seed=0, fused=True) for f in facs],
                 compute_metrics_batched(facs, batch, ["snip", "synflow"], seed=0), facs, batch, 0)
    assert calls == [["snip"], ["snip"]]


def test_float64_metrics_are_float64_exact() -> None:
    """synflow runs in float64 on both paths: equal to ~1e-12, far inside the float32 tolerance."""
    batch = _batch()
    facs = _factories(ARCHS)
    ref = [compute_metrics(f, batch, ["synflow"], seed=0)[0].value for f in facs]
    got = [rows[0].value for rows in compute_metrics_batched(facs, batch, ["synflow"], seed=0)]
    assert got == pytest.approx(ref, rel=1e-12)


#: mixed stack at a size the float64 check affords: every op on a shared edge, degenerate cells, 2 cells a stage
F64_ARCHS = [POOL, ALL_NONE, ALL_SKIP, *ARCHS[:5]]
#: float64 rounding of the batched sums (grouped convolutions, per-block sums) vs the per-arch ones is ~1e-15
#: relative (grasp, a cancelling sum, up to ~1e-13): 1e-9 is far below float32's rounding (1e-7..1e-2 of the
#: value on these networks) and far above float64's, so a difference of definition cannot hide in it
REL64 = 1e-9


def test_float64_batched_equals_per_arch_float64() -> None:
    """The definition check: in float64, every batchable metric of a mixed stack of 8 (C=8 N=2) equals the
    per-arch value (each metric's own function, unfused, in float64) to 1e-9 relative, with the same statuses;
    the non-batchable metrics go through the per-arch fallback in float64 as well."""
    names = [*BATCHED_METRICS, "flops"]
    batch = _batch(n=8, hw=16)
    facs = _factories(F64_ARCHS, C=8, N=2)
    ref = [per_arch_metrics(f, batch, names, dtype=torch.float64, seed=1) for f in facs]
    got = compute_metrics_batched(facs, batch, names, seed=1, dtype=torch.float64)
    for ra, rb in zip(ref, got):
        for a, b in zip(ra, rb):
            assert (a.metric, a.status, a.error) == (b.metric, b.status, b.error), (a, b)
            if a.value is not None:
                assert b.value == pytest.approx(a.value, rel=REL64, abs=1e-300), a.metric
    assert sum(r.status == "ok" for rows in got for r in rows) >= len(names) * len(F64_ARCHS) - 2  # all-none's nans
    # float32 (the default) is not within that bound: the bound is tighter than what float32 can meet
    got32 = compute_metrics_batched(facs, batch, ["grasp"], seed=1)
    assert any(abs(r32[0].value - r[2].value) > REL64 * abs(r[2].value) for r32, r in zip(got32, ref)
               if r[2].value)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (not run in CI, none there)")
def test_float64_batched_equals_per_arch_float64_on_cuda() -> None:
    names = list(BATCHED_METRICS)
    batch = _batch(n=8, hw=16)
    facs = _factories(F64_ARCHS, C=8, N=2)
    ref = [per_arch_metrics(f, batch, names, dtype=torch.float64, seed=1, device="cuda") for f in facs]
    got = compute_metrics_batched(facs, batch, names, seed=1, dtype=torch.float64, device="cuda")
    for ra, rb in zip(ref, got):
        for a, b in zip(ra, rb):
            assert (a.status, b.device.startswith("cuda")) == (b.status, True), (a, b)
            if a.value is not None:
                assert b.value == pytest.approx(a.value, rel=REL64, abs=1e-300), a.metric


def test_float64_mode_runs_the_per_arch_fallback_in_float64(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _no_fallback_for_batched(monkeypatch)  # the float32 per-arch engine: must not be called
    batch, facs = _batch(), _factories(ARCHS[:2])
    got = compute_metrics_batched(facs, batch, ["snip", "ntk_trace"], seed=0, dtype=torch.float64)
    ref = [per_arch_metrics(f, batch, ["snip", "ntk_trace"], dtype=torch.float64, seed=0) for f in facs]
    assert calls == []
    assert [r.value for rows in got for r in rows] == pytest.approx([r.value for rows in ref for r in rows],
                                                                    rel=REL64)
    assert [rows[1].value for rows in got] != pytest.approx(  # not the float32 per-arch value
        [compute_metrics(f, batch, ["ntk_trace"], seed=0)[0].value for f in facs], rel=1e-12)


def test_per_arch_metrics_in_the_registered_dtype_is_the_unfused_engine() -> None:
    batch, fac = _batch(), _factories(ARCHS[2:3])[0]
    names = ["grad_norm", "jacob_cov", "naswot"]
    assert ([r.value for r in per_arch_metrics(fac, batch, names, dtype=torch.float32, seed=2)]
            == [r.value for r in compute_metrics(fac, batch, names, seed=2)])


def test_per_arch_metrics_thin_network_failure_fails_only_its_metrics() -> None:
    def broken():  # type: ignore[no-untyped-def]
        raise ValueError("no thin form")

    fac = _factories(ARCHS[:1])[0]
    got = per_arch_metrics(fac, _batch(), ["linear_regions", "snip"], dtype=torch.float64, thin_factory=broken)
    ref = compute_metrics(fac, _batch(), ["linear_regions", "snip"], thin_factory=broken)
    assert [(r.status, r.error) for r in got][0] == [(r.status, r.error) for r in ref][0]
    assert got[0].status == "error" and got[1].status == "ok"


@pytest.mark.parametrize("bad", [torch.int64, "float64", torch.bool])
def test_dtype_must_be_a_floating_torch_dtype(bad) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match="dtype"):
        compute_metrics_batched(_factories(ARCHS[:1]), _batch(), ["snip"], dtype=bad)
    with pytest.raises(ConfigError, match="dtype"):
        per_arch_metrics(_factories(ARCHS[:1])[0], _batch(), ["snip"], dtype=bad)


def test_statuses_follow_the_per_arch_engine() -> None:
    """A batch of one: jacob_cov errors, naswot's 1x1 kernel is fine; the same rows as per arch."""
    batch = _batch(n=1)
    names = ["jacob_cov", "naswot", "grad_norm"]
    facs = _factories(ARCHS[:3])
    _assert_same([compute_metrics(f, batch, names, seed=0, fused=True) for f in facs],
                 compute_metrics_batched(facs, batch, names, seed=0), facs, batch, 0)
    assert compute_metrics_batched(facs, batch, names, seed=0)[0][0].status == "error"


def test_stacked_logits_equal_each_network() -> None:
    torch.manual_seed(0)
    nets = [f() for f in _factories(ARCHS)]
    stacked = stack_networks(nets)
    assert stacked is not None and stacked.size == len(nets)
    x = _batch().inputs
    out = stacked(x.unsqueeze(1).expand(x.shape[0], len(nets), *x.shape[1:]))
    for i, net in enumerate(nets):
        torch.testing.assert_close(out[:, i], net.train()(x), rtol=1e-5, atol=1e-6)
    # every parameter of every network is in exactly one block
    assert sum(p.numel() for p in stacked.parameters()) == sum(p.numel() for n in nets for p in n.parameters())


def test_networks_without_a_stacked_form_are_scored_per_arch(monkeypatch: pytest.MonkeyPatch) -> None:
    batch = _batch(hw=8, classes=4)
    darts = create_space("darts_cifar")
    facs = [lambda: TinyConvNet(), lambda: NB201.to_module(ARCHS[0], 4, C=4, N=1)]
    assert stack_networks([f() for f in facs]) is None
    assert stack_networks([NB201.to_module(ARCHS[0], 10, C=4, N=1), NB201.to_module(ARCHS[0], 10, C=8, N=1)]) is None
    assert stack_networks([darts.to_module(darts.index_to_arch(3), 10, C=4, layers=2)]) is None
    names = ["grad_norm", "synflow", "params"]
    calls = _no_fallback_for_batched(monkeypatch)
    got = compute_metrics_batched(facs, batch, names, seed=0)
    _assert_same([compute_metrics(f, batch, names, seed=0, fused=True) for f in facs], got, facs, batch, 0)
    assert calls == [["grad_norm", "synflow"]] * 2  # params is a count on each network either way


def test_out_of_memory_splits_the_arch_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    real = batched_engine._loss_pass
    sizes: list[int] = []

    def small_memory(nets, *a, **kw):  # type: ignore[no-untyped-def]
        sizes.append(len(nets))
        if len(nets) > 2:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(nets, *a, **kw)

    monkeypatch.setattr(batched_engine, "_loss_pass", small_memory)
    batch = _batch()
    facs = _factories(ARCHS)
    names = ["grad_norm", "naswot"]
    got = compute_metrics_batched(facs, batch, names, seed=0)
    assert sizes == [8, 4, 2, 2, 4, 2, 2]  # 8 -> 4 + 4 -> 2 + 2 each
    ref = [compute_metrics(f, batch, names, seed=0, fused=True) for f in facs]
    for ra, rb in zip(ref, got):
        for a, b in zip(ra, rb):
            assert b.status == a.status  # the all-none cell's naswot kernel is singular: nan on both paths
            if a.status == "ok":
                assert b.error == "arch batch 2 of 8 after out-of-memory"
                assert b.value == pytest.approx(a.value, rel=REL)


def test_out_of_memory_down_to_one_arch_goes_per_arch(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_memory(nets, *a, **kw):  # type: ignore[no-untyped-def]
        raise RuntimeError("CUDA out of memory")

    monkeypatch.setattr(batched_engine, "_loss_pass", no_memory)
    calls = _no_fallback_for_batched(monkeypatch)
    facs = _factories(ARCHS[:2])
    got = compute_metrics_batched(facs, _batch(), ["snip"], seed=0)
    assert calls == [["snip"], ["snip"]] and all(rows[0].status == "ok" for rows in got)


def test_a_network_that_cannot_be_built_gets_error_rows() -> None:
    def broken():  # type: ignore[no-untyped-def]
        raise ValueError("no such cell")

    facs = [_factories(ARCHS[:1])[0], broken, _factories(ARCHS[1:2])[0]]
    got = compute_metrics_batched(facs, _batch(), ["grad_norm", "flops"], seed=0)
    assert [r.status for r in got[1]] == ["error", "error"]
    assert got[1][0].error == "build failed: ValueError: no such cell"
    assert all(r.status == "ok" for i in (0, 2) for r in got[i])


def test_registry_flags_match_the_engine() -> None:
    flagged = {m for m in list_metrics() if get_metric(m).batchable}
    assert flagged == set(BATCHED_METRICS)
    assert set(batched_names(list_metrics())) == flagged
    assert not get_metric("ntk_trace").batchable


# --- parity fixture: the batched engine on the fixture's networks equals the authors' values -----------------

FIXTURE = Path(__file__).parents[1] / "parity" / "fixture"


def _fixture() -> tuple[dict[str, np.ndarray], dict]:  # type: ignore[type-arg]
    import json

    with np.load(FIXTURE / "weights.npz", allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    return arrays, json.loads((FIXTURE / "values.json").read_text())


def _fixture_nets() -> tuple[list[str], list[torch.nn.Module], Batch]:
    arrays, _meta = _fixture()
    cases = sorted(c for c, (space, _) in CASES.items() if space == "nb201")
    nets = []
    for case in cases:
        net = build_network(*CASES[case])
        prefix = f"{case}/"
        net.load_state_dict({k[len(prefix):]: torch.from_numpy(v) for k, v in arrays.items()
                             if k.startswith(prefix) and not k.startswith(f"{case}/thin/")}, strict=True)
        nets.append(net)
    batch = Batch(torch.from_numpy(arrays["batch/inputs"]), torch.from_numpy(arrays["batch/labels"]), NUM_CLASSES)
    return cases, nets, batch


def test_block_gradients_are_each_archs_own_in_float64() -> None:
    """The logic, free of float32 conditioning: in float64 every block's gradient of the summed loss equals its
    arch's own gradient (all 12 NB201 fixture networks in one stack)."""
    import torch.nn.functional as F

    from raynas.metrics._layers import layer_weights

    cases, nets, batch = _fixture_nets()
    nets = [n.double().train() for n in nets]
    x, y, k = batch.inputs.double(), batch.labels, len(nets)
    stacked = stack_networks(nets)
    logits = stacked(x.unsqueeze(1).expand(x.shape[0], k, *x.shape[1:]))
    F.cross_entropy(logits.transpose(1, 2), y[:, None].expand(-1, k), reduction="none").mean(0).sum().backward()
    for i, net in enumerate(nets):
        F.cross_entropy(net(x), y).backward()
        own = sorted(float(w.grad.norm()) for w in layer_weights(net))
        mine = sorted(float(stacked.get_parameter(n).grad.reshape(len(a), -1)[a.index(i)].norm())
                      for n, a, is_w in stacked.blocks if is_w and i in a)
        assert mine == pytest.approx(own, rel=1e-10, abs=1e-14), cases[i]


#: float32 values of nb201_13714 depend on the CPU convolution algorithm at ~1e-4 (its grad_norm is 6.321015 with
#: oneDNN's per-arch convolutions, the reference's, and 6.321794 with oneDNN off, per arch as well); the
#: float64 test above shows the batched blocks are exact, so this case is held to the float32 sensitivity
SENSITIVE = {"nb201_13714": 2e-4}


def test_parity_fixture_all_nb201_cases_in_one_stack() -> None:
    _arrays, meta = _fixture()
    cases, nets, batch = _fixture_nets()
    names = [m for m in BATCHED_METRICS if any(m in meta["cases"][c]["values"] for c in cases)]
    assert {"grad_norm", "snip", "grasp", "fisher", "jacob_cov", "synflow"} <= set(names)
    got = compute_metrics_batched([lambda n=n: n for n in nets], batch, names, seed=0)
    checked = 0
    for case, rows in zip(cases, got):
        for r in rows:
            expected = meta["cases"][case]["values"].get(r.metric)
            if r.metric not in meta["cases"][case]["values"]:
                continue
            checked += 1
            if expected is None:
                assert r.status == "nan", (case, r)
                continue
            scale = max(abs(expected), meta["cases"][case].get("scales", {}).get(r.metric, 0.0))
            tol = SENSITIVE.get(case, REL)
            assert r.status == "ok" and abs(r.value - expected) <= tol * scale + 1e-12, (case, r, expected)
    assert checked >= 6 * len(cases)
