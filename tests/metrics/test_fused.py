"""Fused metric engine: same values as the unfused engine, one shared pass per group, isolated failures, OOM retry."""

from __future__ import annotations

import copy
import dataclasses
import math

import pytest
import torch
import torch.nn as nn

from raynas.data.batch import Batch
from raynas.errors import MetricError
from raynas.metrics import _ntk, engine, fused, get_metric, list_metrics
from raynas.metrics.engine import compute_metrics
from raynas.metrics.registry import MetricSpec
from raynas.registry import Registry
from raynas.testing import TinyConvNet, linear_net, tiny_bn_convnet
from raynas_tests.nb201 import tiny_nb201

ALL = list_metrics()
LOSS = ["grad_norm", "snip", "grasp", "fisher", "fisher_channel", "jacob_cov", "naswot", "das", "das_distinguish",
        "das_units", "epe_nas", "plain"]
NTK = ["ntk_trace", "ntk_cond", "ntk_trace_jacobian", "ntk_cond_jacobian", "tenas_ntk_cond"]
LWT = ["lwt_angle", "lwt_loss"]
AZ = ["az_nas_expressivity", "az_nas_progressivity", "az_nas_trainability"]
#: metrics whose value is a count (compared exactly) or computed in float64 from a float64 model (synflow)
EXACT = {"synflow", "params", "flops", "das_units", "linear_regions", "linear_regions_gaussian"}


def _batch(n: int = 6, hw: int = 8, classes: int = 4, seed: int = 0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    return Batch(torch.randn(n, 3, hw, hw, generator=g), torch.arange(n) % classes, classes)


def _both(factory, batch: Batch, names=ALL, **kw) -> tuple[dict, dict]:
    plain = {r.metric: r for r in compute_metrics(factory, batch, names, seed=3, **kw)}
    fast = {r.metric: r for r in compute_metrics(factory, batch, names, seed=3, fused=True, **kw)}
    return plain, fast


def _assert_same(plain: dict, fast: dict) -> None:
    assert list(plain) == list(fast)
    for name, a in plain.items():
        b = fast[name]
        assert (a.status, a.error) == (b.status, b.error), name
        if name in EXACT:
            assert a.value == b.value, name
        elif a.value is not None:
            assert b.value == pytest.approx(a.value, rel=1e-5, abs=1e-12), name


#: the light-weight-training metrics (50 SGD steps) are only run on the small conv nets, AZ-NAS's cell terms on
#: the cell network (the conv nets have no stem/cells: test_az_pass_on_a_network_without_cells)
NO_LWT = [n for n in ALL if not n.startswith("lwt")]
NO_AZ = [n for n in ALL if n not in AZ]


@pytest.mark.parametrize(
    "factory, names",
    [(lambda: tiny_nb201(C=4, N=1), NO_LWT), (lambda: tiny_bn_convnet(3, 4), NO_AZ),
     (lambda: TinyConvNet(inplace=True), NO_AZ)],
    ids=["nb201", "bn_convnet", "inplace_convnet"],
)
def test_fused_equals_unfused_for_every_metric(factory, names) -> None:
    plain, fast = _both(factory, _batch(), names)
    assert all(r.status == "ok" for r in plain.values()), {n: r.error for n, r in plain.items() if r.status != "ok"}
    _assert_same(plain, fast)


def test_thin_model_metric_and_duplicates() -> None:
    names = ["linear_regions", "grad_norm", "linear_regions", "ntk_trace"]
    plain, fast = _both(lambda: tiny_nb201(C=4, N=1), _batch(), names, thin_factory=lambda: tiny_nb201(C=1, N=1))
    _assert_same(plain, fast)
    res = compute_metrics(lambda: tiny_nb201(C=4, N=1), _batch(), names, fused=True)
    assert [r.metric for r in res] == names


def test_plan_groups_metrics_into_passes() -> None:
    passes = fused.plan([get_metric(n) for n in ALL])
    kinds = [p.kind for p in passes]
    assert kinds[-4:] == ["loss", "ntk", "lwt", "az"] and set(kinds[:-4]) == {"own"}  # own passes first
    loss, ntk, lwt, az = passes[-4:]
    assert sorted(s.name for s in az.specs) == AZ and az.uses == {"az"}
    assert sorted(s.name for s in loss.specs) == sorted(LOSS)
    assert sorted(s.name for s in ntk.specs) == sorted(NTK)
    assert sorted(s.name for s in lwt.specs) == LWT and lwt.uses == {"lwt"}
    assert ntk.uses == {"hnas_ntk", "hnas_jacobian_ntk", "tenas_ntk"}
    assert {p.specs[0].name for p in passes[:-4]} == set(ALL) - set(LOSS) - set(NTK) - set(LWT) - set(AZ)
    # a metric whose metadata asks for another model state is not shared
    eval_snip = dataclasses.replace(get_metric("snip"), mode="eval")
    assert not fused.shareable(eval_snip) and fused.shareable(get_metric("snip"))
    assert [p.kind for p in fused.plan([eval_snip, get_metric("grad_norm")])] == ["own", "loss"]


def test_light_weight_training_runs_once_for_both_signals(monkeypatch: pytest.MonkeyPatch) -> None:
    from raynas.metrics import _lwt

    calls: list[int] = []
    real = _lwt.light_weight_train

    def counting(model, batch, **kw):
        calls.append(1)
        return real(model, batch, **kw)

    monkeypatch.setattr(fused, "light_weight_train", counting)
    base = tiny_bn_convnet(3, 4)
    before = [p.detach().clone() for p in base.parameters()]
    res = compute_metrics(lambda: base, _batch(), ["lwt_angle", "grad_norm", "lwt_loss"], seed=3, fused=True)
    assert len(calls) == 1 and all(r.status == "ok" for r in res)
    assert all(torch.equal(a, b) for a, b in zip(before, base.parameters()))  # trained a copy
    plain = {r.metric: r.value for r in compute_metrics(lambda: base, _batch(), LWT, seed=3)}
    assert {r.metric: r.value for r in res if r.metric in LWT} == pytest.approx(plain, rel=1e-6)


class _DropoutNet(nn.Module):
    """A conv net with BN and dropout: lwt's step 1 must draw what it would draw after its own step-0 forward."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(), nn.Dropout(0.3),
                                  nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(6, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.body(x))


@pytest.mark.parametrize("factory", [lambda: tiny_bn_convnet(3, 4), lambda: TinyConvNet(inplace=True), _DropoutNet,
                                     lambda: tiny_nb201(C=4, N=1)],
                         ids=["bn_convnet", "inplace_convnet", "dropout", "nb201"])
@pytest.mark.parametrize("loss_metrics", [LOSS, ["naswot"]], ids=["all_loss", "forward_only"])
def test_lwt_reuses_the_loss_pass_and_gives_the_values_of_lwt_alone(
    monkeypatch: pytest.MonkeyPatch, factory, loss_metrics
) -> None:
    """Issue 32 item 7: with loss-pass metrics requested, lwt's step 0 is the loss pass's forward/backward; the
    values are bit for bit those of lwt alone (same computation, compared within this test), and so are the
    loss-pass metrics' values those of the loss pass alone."""
    from raynas.metrics import _lwt

    steps0: list[bool] = []
    real = _lwt.light_weight_train

    def spy(model, batch, **kw):
        steps0.append(kw.get("first_step") is not None)
        return real(model, batch, **kw)

    monkeypatch.setattr(fused, "light_weight_train", spy)
    alone = {r.metric: r for r in compute_metrics(factory, _batch(), LWT, seed=3, fused=True)}
    loss_alone = {r.metric: r for r in compute_metrics(factory, _batch(), loss_metrics, seed=3, fused=True)}
    both = {r.metric: r for r in compute_metrics(factory, _batch(), LWT + loss_metrics, seed=3, fused=True)}
    assert steps0 == [False, True]  # lwt alone runs step 0 itself, beside the loss pass it takes it from there
    for name in LWT:
        assert both[name].status == alone[name].status == "ok", (name, both[name].error)
        assert both[name].value == alone[name].value, name
    for name in loss_metrics:
        assert (both[name].status, both[name].value) == (loss_alone[name].status, loss_alone[name].value), name


def test_lwt_first_step_is_ignored_for_another_batch_size() -> None:
    """A loss pass that retried on a halved batch hands on a step 0 of another batch: lwt runs its own."""
    from raynas.metrics._lwt import light_weight_train

    net = tiny_bn_convnet(3, 4)
    model = copy.deepcopy(net)
    torch.manual_seed(0)
    alone = light_weight_train(copy.deepcopy(net), _batch(), steps=3)
    params = [p for p in model.parameters() if p.requires_grad]
    wrong = _lwt_first_step(model, _batch().head(3), params)
    torch.manual_seed(0)
    got = light_weight_train(model, _batch(), steps=3, first_step=wrong)
    assert (got.loss, got.cosine) == (alone.loss, alone.cosine)


def _lwt_first_step(model: nn.Module, batch: Batch, params: list[torch.Tensor]):
    from raynas.metrics._lwt import FirstStep, rng_state

    loss = nn.functional.cross_entropy(model(batch.inputs), batch.targets)
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    return FirstStep(loss.detach(), tuple(grads), rng_state(torch.device("cpu")), batch.size)


def test_shared_pass_time_is_split_evenly() -> None:
    res = compute_metrics(lambda: tiny_nb201(C=4, N=1), _batch(), ["grad_norm", "snip", "params", "jacob_cov"],
                          fused=True)
    sec = {r.metric: r.seconds for r in res}
    assert sec["grad_norm"] == sec["snip"] == sec["jacob_cov"] > 0 and sec["params"] >= 0


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> Registry[MetricSpec]:
    """A private registry holding copies of the real metrics (to patch one's reduce without touching others)."""
    reg: Registry[MetricSpec] = Registry("metric")
    for n in ALL:
        reg.add(n, get_metric(n))
    monkeypatch.setattr(engine, "get_metric", reg.get)
    return reg


def test_failing_reduce_leaves_the_rest_of_its_pass(fakes: Registry[MetricSpec]) -> None:
    def boom(shared, batch):
        raise ValueError("reduce failed")

    bad = dataclasses.replace(get_metric("snip"), name="bad_snip", reduce=boom)
    fakes.add("bad_snip", bad)
    names = ["grad_norm", "bad_snip", "snip", "naswot"]
    res = {r.metric: r for r in compute_metrics(lambda: tiny_nb201(C=4, N=1), _batch(), names, fused=True)}
    assert res["bad_snip"].status == "error" and res["bad_snip"].error == "ValueError: reduce failed"
    plain = {r.metric: r for r in compute_metrics(lambda: tiny_nb201(C=4, N=1), _batch(), names[:1] + names[2:])}
    for n in ("grad_norm", "snip", "naswot"):
        assert res[n].status == "ok" and res[n].value == pytest.approx(plain[n].value, rel=1e-6)


def test_missing_quantity_fails_only_its_metrics() -> None:
    # a ReLU-free linear net: the code metrics fail (no nn.ReLU), the gradient metrics still agree with unfused
    net = lambda: linear_net([[1.0, -2.0, 0.5], [0.3, 0.2, -1.0]], [0.1, -0.1])  # noqa: E731
    batch = Batch(torch.tensor([[1.0, 2.0, 3.0], [-1.0, 0.5, 2.0], [0.0, 1.0, -1.0]]).view(3, 3, 1, 1),
                  torch.tensor([0, 1, 1]), 2)
    plain, fast = _both(net, batch, LOSS + NTK)
    _assert_same(plain, fast)
    for n in ("naswot", "das", "das_distinguish", "das_units"):
        assert fast[n].status == "error" and "nn.ReLU" in fast[n].error
    for n in ("grad_norm", "snip", "grasp", "fisher", "jacob_cov", "ntk_trace"):
        assert fast[n].status == "ok", (n, fast[n].error)
    # hand check: L = mean CE of W x + b; grad_norm = ||dL/dW||_F
    x, y = batch.inputs.view(3, 3), batch.labels
    p = torch.softmax(x @ torch.tensor([[1.0, -2.0, 0.5], [0.3, 0.2, -1.0]]).T + torch.tensor([0.1, -0.1]), 1)
    grad = (p - torch.nn.functional.one_hot(y, 2)).T @ x / 3
    assert fast["grad_norm"].value == pytest.approx(float(grad.norm()), rel=1e-6)


class _Bad3d(nn.Module):
    """Returns [B, K, 1] instead of logits: every shared pass fails; own metrics do not care."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.lin(x.flatten(1))).unsqueeze(-1)


def test_pass_failure_marks_its_metrics_and_others_go_on() -> None:
    batch = Batch(torch.randn(4, 3, 1, 1), torch.tensor([0, 1, 0, 1]), 2)
    res = {r.metric: r for r in compute_metrics(_Bad3d, batch, ["grad_norm", "ntk_trace", "params"], fused=True)}
    assert res["grad_norm"].status == "error" and "logits [B, K]" in res["grad_norm"].error
    assert res["ntk_trace"].status == "error" and "[B, K]" in res["ntk_trace"].error
    assert res["params"].status == "ok" and res["params"].value == 8.0


def test_nan_status_from_a_shared_pass() -> None:
    # the logits do not depend on the input values at all -> constant Jacobian rows -> corrcoef NaN
    class Const(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(3, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.lin(x.flatten(1)).sum(0, keepdim=True).expand(x.shape[0], 2) * 0 + self.lin.bias

    batch = Batch(torch.randn(4, 3, 1, 1), torch.tensor([0, 1, 0, 1]), 2)
    plain, fast = _both(Const, batch, ["jacob_cov", "grad_norm"])
    assert fast["jacob_cov"].status == plain["jacob_cov"].status == "nan"
    assert fast["grad_norm"].status == "ok"


def _oom_once(monkeypatch: pytest.MonkeyPatch, name: str, sizes: list[int], fail_above: int = 10**9,
              times: int = 1) -> None:
    real = getattr(fused, name)
    left = [times]

    def flaky(model, batch, uses, **kw):
        sizes.append(batch.size)
        if left[0] > 0 or batch.size > fail_above:
            left[0] -= 1
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 1.00 GiB")
        return real(model, batch, uses, **kw)

    monkeypatch.setattr(fused, name, flaky)


@pytest.mark.parametrize("pass_fn, names", [("loss_pass", ["grad_norm", "fisher", "naswot"]),
                                            ("ntk_pass", ["ntk_trace", "tenas_ntk_cond"])])
def test_oom_retries_the_pass_on_a_halved_batch(monkeypatch: pytest.MonkeyPatch, pass_fn: str, names) -> None:
    sizes: list[int] = []
    _oom_once(monkeypatch, pass_fn, sizes)
    batch = _batch(n=8)
    res = compute_metrics(lambda: tiny_nb201(C=4, N=1), batch, names + ["params"], seed=3, fused=True)
    assert sizes == [8, 4]
    half = {r.metric: r for r in compute_metrics(lambda: tiny_nb201(C=4, N=1), batch.head(4), names, seed=3)}
    for r in res[:-1]:
        assert r.status == "ok" and r.value == pytest.approx(half[r.metric].value, rel=1e-5)
        assert r.error == "computed on batch 4 of 8 after out-of-memory"
    assert res[-1].status == "ok" and res[-1].error == ""  # params (own pass) never saw the OOM


def test_oom_below_min_batch_is_a_status(monkeypatch: pytest.MonkeyPatch) -> None:
    sizes: list[int] = []
    _oom_once(monkeypatch, "loss_pass", sizes, times=99)
    res = {r.metric: r for r in compute_metrics(lambda: tiny_nb201(C=4, N=1), _batch(n=8), ["snip", "jacob_cov",
                                                                                            "ntk_trace"], fused=True)}
    assert sizes == [8, 4, 2]
    assert res["snip"].status == res["jacob_cov"].status == "oom" and "out of memory" in res["snip"].error
    assert res["ntk_trace"].status == "ok"


def test_batched_per_sample_gradients_match_the_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(0)
    model = tiny_bn_convnet(3, 4).train()  # train-mode BN couples the samples: the batched path must too
    batch = _batch(n=5)
    for output, select in _ntk.NTK_KINDS.values():
        loop = _ntk.per_sample_gradients(model, batch, output, select(model), method="loop")
        batched = _ntk.per_sample_gradients(model, batch, output, select(model), method="batched")
        chunked = _ntk.sample_gradients(_ntk.per_sample_outputs(model(batch.inputs), batch, output), select(model),
                                        method="batched", chunk=2)
        assert torch.allclose(loop, batched, rtol=1e-5, atol=1e-7) and torch.allclose(loop, chunked, atol=1e-7)
        assert torch.allclose(_ntk.gram(loop), _ntk.gram(batched), rtol=1e-5)
    # a missing batching rule makes the batched call raise: the loop gives the same rows
    real_grad = torch.autograd.grad

    def no_batching(*args, **kw):
        if kw.get("is_grads_batched"):
            raise RuntimeError("Batching rule not implemented for aten::something")
        return real_grad(*args, **kw)

    monkeypatch.setattr(torch.autograd, "grad", no_batching)
    params = _ntk.conv_linear_params(model)
    fallback = _ntk.per_sample_gradients(model, batch, _ntk.true_class_logit, params, method="batched")
    assert torch.equal(fallback, _ntk.per_sample_gradients(model, batch, _ntk.true_class_logit, params, method="loop"))


def test_batched_oom_halves_the_chunk(monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(0)
    model = tiny_bn_convnet(3, 4).train()
    batch = _batch(n=6)
    params = _ntk.conv_linear_params(model)
    loop = _ntk.per_sample_gradients(model, batch, _ntk.true_class_logit, params, method="loop")
    real_grad, rows = torch.autograd.grad, []

    def small_memory(*args, **kw):
        if kw.get("is_grads_batched"):
            rows.append(kw["grad_outputs"].shape[0])
            if rows[-1] > 2:
                raise torch.cuda.OutOfMemoryError("CUDA out of memory")
        return real_grad(*args, **kw)

    monkeypatch.setattr(torch.autograd, "grad", small_memory)
    got = _ntk.per_sample_gradients(model, batch, _ntk.true_class_logit, params, method="batched")
    assert rows == [6, 3] + [1] * 6 and torch.allclose(got, loop, rtol=1e-5, atol=1e-7)


def test_reductions_stay_on_the_device() -> None:
    # every shared metric's reduce returns a tensor (synced once per pass) or a float known without a sync
    for n in LOSS + NTK:
        spec = get_metric(n)
        assert spec.reduce is not None and spec.pass_kind in ("loss", "ntk") and spec.uses
    shared = fused.loss_pass(tiny_nb201(C=4, N=1).train(), _batch(), frozenset({"weights", "weight_grads"}))
    assert isinstance(get_metric("grad_norm").reduce(shared, _batch()), torch.Tensor)


def test_channels_last_and_tf32_flags() -> None:
    before = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    names = ["grad_norm", "grasp", "jacob_cov", "ntk_trace", "synflow"]
    plain = compute_metrics(lambda: tiny_nb201(C=4, N=1), _batch(), names, seed=1)
    fast = compute_metrics(lambda: tiny_nb201(C=4, N=1), _batch(), names, seed=1, fused=True, channels_last=True,
                           allow_tf32=True)
    assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == before  # restored
    for a, b in zip(plain, fast):
        assert b.status == "ok" and b.value == pytest.approx(a.value, rel=1e-4), a.metric
    assert not math.isnan(fast[0].value)


def test_unknown_quantity_falls_back_to_own_pass() -> None:
    spec = dataclasses.replace(get_metric("grad_norm"), uses=("no_such_quantity",))
    assert not fused.shareable(spec)
    with pytest.raises(MetricError):
        fused.ntk_pass(_Bad3d(), Batch(torch.randn(2, 3, 1, 1), torch.tensor([0, 1]), 2), frozenset({"hnas_ntk"}))


def test_az_terms_come_from_one_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = fused.az_nas_terms

    def counting(model, batch):
        calls.append(batch.size)
        return real(model, batch)

    monkeypatch.setattr(fused, "az_nas_terms", counting)
    plain, fast = _both(lambda: tiny_nb201(C=4, N=1), _batch(), AZ + ["grad_norm", "az_nas_complexity"])
    assert calls == [6]  # fused: the three terms read ONE Gaussian forward + per-cell products
    assert all(r.status == "ok" for r in fast.values())
    _assert_same(plain, fast)
    assert fast["az_nas_expressivity"].seconds == fast["az_nas_trainability"].seconds


def test_az_reinitialisation_stays_in_its_pass() -> None:
    # the AZ pass re-initialises the weights as the authors do: on a private copy, so whichever order the passes
    # run in, the others see the network as built and fused equals unfused for every metric of the call
    names = ["az_nas_expressivity", "grad_norm", "ntk_trace", "lwt_loss", "az_nas_trainability", "params"]
    for order in (dict(fused.QUANTITIES), dict(reversed(list(fused.QUANTITIES.items())))):
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(fused, "QUANTITIES", order)
            plain, fast = _both(lambda: tiny_nb201(C=4, N=1), _batch(), names)
        _assert_same(plain, fast)
        assert all(r.status == "ok" for r in fast.values())


def test_az_pass_on_a_network_without_cells() -> None:
    plain, fast = _both(lambda: tiny_bn_convnet(3, 4), _batch(), AZ + ["grad_norm"])
    _assert_same(plain, fast)
    for name in AZ:
        assert fast[name].status == "error" and "stem" in fast[name].error
    assert fast["grad_norm"].status == "ok"


def test_az_pass_oom_retries_on_a_halved_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    sizes: list[int] = []
    _oom_once(monkeypatch, "az_pass", sizes)
    res = compute_metrics(lambda: tiny_nb201(C=4, N=1), _batch(n=8), AZ, seed=3, fused=True)
    assert sizes == [8, 4]
    half = {r.metric: r for r in compute_metrics(lambda: tiny_nb201(C=4, N=1), _batch(n=8).head(4), AZ, seed=3)}
    for r in res:
        assert r.status == "ok" and r.value == pytest.approx(half[r.metric].value, rel=1e-6)
