"""vkdnw's Jacobian from K per-class backward passes equals the ``vmap(jacrev)`` reference, and falls back to it.

:func:`raynas.metrics.vkdnw.per_class_jacobian` and :func:`raynas.metrics.vkdnw.selected_jacobian_reference` are
computed in the same test on the same weights and batch: in float64 they differ by float64 rounding of another
summation order only; in float32 each differs from the float64 Jacobian by float32 rounding. Networks outside what
the per-class path reads exactly (tied or functionally read weights, unhandled module types, a module called twice,
in-place edits, training mode) must raise :class:`PerClassUnsupported`, and :func:`selected_jacobian` must then
return the reference's Jacobian.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from raynas.data.batch import Batch
from raynas.metrics import get_metric
from raynas.metrics.engine import compute_metrics, prepare_model
from raynas.metrics.vkdnw import (
    PerClassUnsupported,
    fisher_entropy,
    fisher_jacobian,
    kaiming_fan_in_init,
    per_class_jacobian,
    selected_jacobian,
    selected_jacobian_reference,
    softmax_cholesky,
)
from raynas.spaces import create_space
from raynas.spaces.parity import fixture_network

EPS32 = torch.finfo(torch.float32).eps
#: float64: the two constructions sum the same products in another order (per-sample weight gradients vs output
#: gradient x input, summed over at most 64 x 32 x 32 positions and a few dozen layers): a few hundred eps64
#: relative to the largest entry at most; measured 1e-16..3e-16. 1e-12 is ~4500 eps64, far above rounding and far
#: below any formula error (a wrong pixel, channel or stride moves entries by O(1) of their size)
REL_TOL_F64 = 1e-12
#: how many times the reference's own float32 error on a network (its distance to the float64 Jacobian) the new
#: float32 Jacobian may stand from the float64 one: each construction rounds differently, in any direction
F32_ERROR_FACTOR = 4.0


def rel_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a - b| relative to max |b| (entries near 0 are only known relative to the largest one)."""
    return float((a - b).abs().max() / b.abs().max())


@lru_cache(maxsize=None)
def parity_arrays() -> dict[str, np.ndarray]:
    from pathlib import Path

    with np.load(Path(__file__).parents[1] / "parity" / "fixture" / "weights.npz", allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def inputs(n: int = 8, size: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def nb201(seed: int) -> nn.Module:
    space = create_space("nb201")
    return space.to_module(space.sample(np.random.default_rng(seed)), 10, C=8, N=1)


def darts(seed: int) -> nn.Module:
    space = create_space("darts_cifar", C=4, layers=3)
    return space.to_module(space.sample(np.random.default_rng(seed)), 10)


#: name -> (network factory, batch): sampled NB201 and DARTS networks, and parity fixture cases (a cell that never
#: reaches the output, all convolutions, DARTS-V2)
NETWORKS = {
    "nb201_sampled0": (lambda: nb201(0), lambda: inputs()),
    "nb201_sampled1": (lambda: nb201(1), lambda: inputs()),
    "nb201_dead_conv": (lambda: fixture_network(parity_arrays(), "nb201_dead_conv"), lambda: fixture_inputs()),
    "nb201_all_conv3x3": (lambda: fixture_network(parity_arrays(), "nb201_all_conv3x3"), lambda: fixture_inputs()),
    "darts_sampled0": (lambda: darts(0), lambda: inputs(6)),
    "darts_v2": (lambda: fixture_network(parity_arrays(), "darts_v2"), lambda: fixture_inputs(6)),
}


def fixture_inputs(n: int = 8) -> torch.Tensor:
    return torch.from_numpy(parity_arrays()["batch/inputs"][:n])


def metric_network(name: str, dtype: torch.dtype) -> tuple[nn.Module, torch.Tensor]:
    """The case's network as vkdnw sees it (eval mode, Kaiming re-initialised in float32, then cast: float64 and
    float32 runs hold the same weights) and its batch in ``dtype``."""
    make, x = NETWORKS[name]
    torch.manual_seed(0)
    net = prepare_model(make(), get_metric("vkdnw_f32"), torch.device("cpu"))
    kaiming_fan_in_init(net)
    return net.to(dtype), x().to(dtype)


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_float64_jacobian_and_value_equal_the_reference(name: str) -> None:
    net, x = metric_network(name, torch.float64)
    new, ref = per_class_jacobian(net, x), selected_jacobian_reference(net, x)
    assert new.shape == ref.shape and new.dtype == torch.float64
    assert rel_diff(new, ref) <= REL_TOL_F64  # float64 rounding of another summation order (REL_TOL_F64)
    assert torch.equal(selected_jacobian(net, x), new)  # the metric takes the per-class path here
    batch = Batch(x, torch.zeros(len(x), dtype=torch.long), 10)
    values = []
    for jac in (per_class_jacobian, selected_jacobian_reference):
        torch.manual_seed(1)  # fisher_entropy re-initialises: both see the same weights
        values.append(fisher_entropy(net, batch, jacobian=jac))
    # the Jacobians agree to ~1e-16: the deciles of the float64 spectrum move by that much relative to
    # sigma_max, far inside 1e-12 of the entropy
    assert abs(values[0] - values[1]) <= REL_TOL_F64 * abs(values[1]), values


@pytest.mark.parametrize("name", ["nb201_sampled0", "darts_v2"])
def test_the_metric_path_skips_the_last_class_and_the_second_forward_exactly(name: str) -> None:
    """:func:`fisher_jacobian` (what the metric reads) leaves out the last class's backward pass and takes the logits
    from the pass that records the layers: the Cholesky factor's last column is exactly zero, so ``L J`` and the
    value are the same bits as with the full Jacobian and a forward pass of their own."""
    net, x = metric_network(name, torch.float64)
    jac, logits = fisher_jacobian(net, x)
    full = per_class_jacobian(net, x)
    assert torch.equal(jac[:, :-1], full[:, :-1]) and not jac[:, -1].any()
    with torch.no_grad():
        assert torch.equal(logits, net(x))  # the recording forward is the model's forward, bit for bit
    low = softmax_cholesky(logits)
    assert not low[:, :, -1].any()  # d_K = 0: the last class row of J is read through zeros only
    assert torch.equal(torch.matmul(low, jac), torch.matmul(low, full))
    batch = Batch(x, torch.zeros(len(x), dtype=torch.long), 10)
    values = []
    for jacobian in (fisher_jacobian, per_class_jacobian):
        torch.manual_seed(1)
        values.append(fisher_entropy(net, batch, jacobian=jacobian))
    assert values[0] == values[1], values


def resolution32(net: nn.Module, x: torch.Tensor) -> float:
    """How far vkdnw_f32's value is determined in float32 (as the parity suite's ``vkdnw_f32_resolution``): the
    first-order change of the decile entropy when every singular value of the Fisher matrix moves by
    ``eps32 * sigma_max``, ``sum_j |dH/dQ_j| * eps32 * sigma_max``, from the float64 spectrum of ``net``."""
    jac = selected_jacobian_reference(net, x)
    with torch.no_grad():
        jac = torch.matmul(softmax_cholesky(net(x)), jac)
    spectrum = torch.linalg.svdvals(torch.matmul(jac.transpose(1, 2), jac).mean(0))
    q = torch.quantile(spectrum, torch.arange(0.1, 1.0, 0.1).to(torch.float64)).requires_grad_(True)
    t = q / (q.sum() + 1e-10)
    (-(t * torch.log(t + 1e-10)).sum()).backward()
    assert q.grad is not None
    return float(q.grad.abs().sum()) * EPS32 * float(spectrum[0])


@pytest.mark.parametrize("name", ["nb201_sampled0", "nb201_all_conv3x3", "darts_v2"])
def test_float32_jacobians_are_both_within_float32_error_of_float64(name: str) -> None:
    net64, x64 = metric_network(name, torch.float64)
    exact = selected_jacobian_reference(net64, x64)
    net32, x32 = metric_network(name, torch.float32)
    new, ref = per_class_jacobian(net32, x32), selected_jacobian_reference(net32, x32)
    err_new, err_ref = rel_diff(new.double(), exact), rel_diff(ref.double(), exact)
    # the reference's distance to float64 is float32's own error on this network (a backward pass through its
    # depth: measured 2e-7..5e-7 of the largest entry); the per-class path rounds in another order, so it errs by
    # about as much, in any direction; a formula error would be O(1) relative. The floor: one float32 rounding of
    # the largest entry
    assert err_new <= F32_ERROR_FACTOR * max(err_ref, EPS32), (err_new, err_ref)
    assert err_ref <= 1e4 * EPS32, err_ref  # sanity: the float64 comparison measures rounding, not a difference
    # vkdnw_f32's values: equal within what float32 resolves of the deciles (its small singular values are float32
    # rounding noise: another summation order moves them by up to eps32 * sigma_max)
    batch = Batch(x32, torch.zeros(len(x32), dtype=torch.long), 10)
    values = []
    for jac in (per_class_jacobian, selected_jacobian_reference):
        torch.manual_seed(1)
        values.append(fisher_entropy(net32, batch, jacobian=jac))
    torch.manual_seed(1)
    kaiming_fan_in_init(net64)  # the weights fisher_entropy drew in float32, cast
    with torch.no_grad():
        for p64, p32 in zip(net64.parameters(), net32.parameters()):
            p64.copy_(p32)
    floor = resolution32(net64, x64)
    assert abs(values[0] - values[1]) <= F32_ERROR_FACTOR * floor + 1e-12, (values, floor)


class Layers(nn.Module):
    """Every handled module with the options the per-class formulas must respect: stride, dilation, padding as
    numbers, ``"same"`` and ``reflect``, groups, biases, BatchNorm2d with non-trivial running statistics, Linear on
    a ``[B, T, F]`` input."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 4, 3, stride=2, padding=2, dilation=2, bias=True)
        self.bn = nn.BatchNorm2d(4)
        self.b = nn.Conv2d(4, 6, 3, padding="same", padding_mode="reflect", groups=2, bias=True)
        self.c = nn.Conv2d(6, 5, (1, 3), stride=(1, 2), padding=(0, 1), bias=False)
        self.tokens = nn.Linear(5, 7)
        self.head = nn.Linear(7, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.c(F.relu(self.b(F.relu(self.bn(self.a(x))))))  # [B, 5, H, W]
        y = self.tokens(y.flatten(2).transpose(1, 2))  # [B, H W, 7]
        return self.head(torch.tanh(y).mean(1))


def test_every_handled_option_equals_the_reference() -> None:
    torch.manual_seed(0)
    net = Layers().double().eval()
    with torch.no_grad():  # running statistics and affine values away from their defaults
        net.bn.running_mean.uniform_(-1, 1)
        net.bn.running_var.uniform_(0.5, 2)
        for p in net.parameters():
            p.add_(0.3 * torch.randn_like(p))
    x = inputs(5, 11).double()
    new, ref = per_class_jacobian(net, x), selected_jacobian_reference(net, x)
    assert new.shape == (5, 4, 11)
    assert rel_diff(new, ref) <= REL_TOL_F64  # float64 rounding of another summation order (REL_TOL_F64)
    # every selected weight has a non-zero derivative for some sample and class (the head's weight[0, 0] and
    # bias[0] only for class 0), so no formula is compared against zeros only
    assert bool((ref.abs().amax(dim=(0, 1)) > 1e-3 * ref.abs().max()).all())


class ConvReadTwice(nn.Module):
    """``bn(conv(x)) + conv(x)``: the convolution's output is read besides its BatchNorm2d, so the per-class path
    must not fold the pair (it redoes the pass unfolded)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.head = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.conv(x)
        return self.head((self.bn(c) + c).mean((2, 3)))


def test_batchnorm_backward_shortcut_equals_the_reference_and_is_removed() -> None:
    """Eval-mode BatchNorm2d layers (affine or not) backpropagate by one multiply inside the per-class passes
    (``_EvalBatchNorm``), or folded into the convolution they read (``_ConvBatchNorm``): the Jacobian still equals
    the reference's (also where a convolution's output is read besides its BatchNorm2d: no fold), and no module
    keeps the patched ``forward``, also when the per-class path gives up after its forward."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4, affine=False), nn.ReLU(), nn.Conv2d(4, 4, 1),
                        nn.BatchNorm2d(4), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3)).double().eval()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
    x = inputs(5, 9).double()
    assert rel_diff(per_class_jacobian(net, x), selected_jacobian_reference(net, x)) <= REL_TOL_F64
    assert not any("forward" in m.__dict__ for m in net.modules())
    read_twice = ConvReadTwice().double().eval()  # a folded pair whose convolution output is read elsewhere too
    with torch.no_grad():
        read_twice.bn.running_var.uniform_(0.5, 2)
    assert rel_diff(per_class_jacobian(read_twice, x), selected_jacobian_reference(read_twice, x)) <= REL_TOL_F64
    assert not any("forward" in m.__dict__ for m in read_twice.modules())
    head = nn.Linear(3, 3).double()
    twice = nn.Sequential(net, head, head).eval()  # a head called twice: unsupported, found after the forward
    with pytest.raises(PerClassUnsupported, match="ran 2 times"):
        per_class_jacobian(twice, x)
    assert not any("forward" in m.__dict__ for m in twice.modules())


class Tied(nn.Module):
    """The classifier's weight tied to an input projection (two modules, one parameter)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.proj = nn.Linear(4, 4)
        self.head = nn.Linear(4, 4)
        self.head.weight = self.proj.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.tanh(self.proj(self.conv(x).mean((2, 3)))))


class FunctionalRead(nn.Module):
    """The first conv's weight also read functionally by the forward (each module still runs once)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.head = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x) + 0.5 * F.conv2d(x, self.conv.weight, padding=1)
        return self.head(torch.tanh(y).mean((2, 3)))


class FunctionalReadOfDeadModule(nn.Module):
    """A module whose own output does not reach the logits, its weight read functionally on the path that does."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.head = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.conv(x)  # ran once, output dropped
        return self.head(torch.tanh(F.conv2d(x, self.conv.weight, self.conv.bias, padding=1)).mean((2, 3)))


class Unhandled(nn.Module):
    """A GroupNorm (a module type the per-class path does not read) among the selected weights."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.norm = nn.GroupNorm(2, 4)
        self.head = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.norm(self.conv(x))).mean((2, 3)))


class CalledTwice(nn.Module):
    """One conv applied twice (a shared module)."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.conv = nn.Conv2d(4, 4, 3, padding=1)
        self.head = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(torch.tanh(self.conv(torch.tanh(self.stem(x)))))
        return self.head(y.mean((2, 3)))


class InPlace(nn.Module):
    """A BatchNorm2d's output overwritten by an in-place ReLU."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.act = nn.ReLU(inplace=True)
        self.head = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.act(self.bn(self.conv(x))).mean((2, 3)))


UNSUPPORTED = {
    "tied": (Tied, "registered in 2 modules"),
    "functional_read": (FunctionalRead, "used 2 times, 1 by its module"),
    "functional_read_of_dead_module": (FunctionalReadOfDeadModule, "used 1 times, 0 by its module"),
    "unhandled_type": (Unhandled, "weight of a GroupNorm"),
    "called_twice": (CalledTwice, "ran 2 times"),
    "in_place": (InPlace, "modified in place"),
}


def per_sample_autograd(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``[B, K, P]`` by plain autograd, one sample and class at a time: the definition, no shortcut."""
    params = list(net.parameters())  # named_parameters order, tied ones once
    rows = []
    for b in range(len(x)):
        out = net(x[b:b + 1])[0]
        rows.append(torch.stack([
            torch.stack([g.reshape(-1)[0] for g in torch.autograd.grad(out[k], params, retain_graph=True)])
            for k in range(len(out))
        ]))
    return torch.stack(rows)


@pytest.mark.parametrize("case", sorted(UNSUPPORTED))
def test_weights_used_outside_their_module_fall_back_to_the_reference(case: str) -> None:
    make, reason = UNSUPPORTED[case]
    torch.manual_seed(0)
    net = make().double().eval()
    x = inputs(4, 8).double()
    with pytest.raises(PerClassUnsupported, match=reason):
        per_class_jacobian(net, x)
    got = selected_jacobian(net, x)
    assert torch.equal(got, selected_jacobian_reference(net, x))  # the reference ran: same computation, same bits
    # and it is the definition: float64 rounding of another summation order (REL_TOL_F64)
    assert rel_diff(got, per_sample_autograd(net, x)) <= REL_TOL_F64
    # the registered metric takes the same path: its value is the reference's
    batch = Batch(x.float(), torch.zeros(len(x), dtype=torch.long), 3)
    (r,) = compute_metrics(make, batch, ["vkdnw"], seed=0)
    torch.manual_seed(0)
    net = prepare_model(make(), get_metric("vkdnw"), torch.device("cpu"))
    torch.manual_seed(0)  # the engine seeds before the metric's re-initialisation
    want = fisher_entropy(net, Batch(x, batch.labels, 3), jacobian=selected_jacobian_reference)
    assert r.status == "ok" and r.value == want


class Small(nn.Module):
    """Conv, BatchNorm2d (``stats``: running statistics, else batch statistics), Linear."""

    def __init__(self, stats: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4, track_running_stats=stats)
        self.head = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.bn(self.conv(x))).mean((2, 3)))


@pytest.mark.parametrize("stats, train, reason", [(True, True, "training mode"),
                                                  (False, False, "normalises by batch statistics")])
def test_samples_coupled_by_batch_statistics_fall_back_to_the_reference(stats: bool, train: bool,
                                                                       reason: str) -> None:
    torch.manual_seed(0)
    net = Small(stats).double().train(train)
    if train:  # the reference cannot update running statistics under vmap: BN without them, the rest trains
        net.bn.eval()
    x = inputs(4, 8).double()
    with pytest.raises(PerClassUnsupported, match=reason):
        per_class_jacobian(net, x)
    got = selected_jacobian(net, x)
    assert torch.equal(got, selected_jacobian_reference(net, x))
    # the reference normalises each sample by its own statistics (vmap over single samples), as before
    assert rel_diff(got, per_sample_autograd(net, x)) <= REL_TOL_F64
