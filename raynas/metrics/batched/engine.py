"""Batched engine: the metrics of K architectures from passes over ONE stacked network.

The fused engine (:mod:`raynas.metrics.fused`) shares one forward/backward between the metrics of ONE
architecture; on a GPU such a small network is bound by kernel launches, not arithmetic. This engine stacks K
networks (:func:`raynas.spaces.stacking.stack_networks`: parameters copied from the K networks the factories
built under the seed, per-arch parameter blocks, per-arch and per-channel BatchNorm statistics) and runs each
shared pass once for all K:

``"loss"`` pass (train mode, float32 unless ``dtype`` says otherwise, BN kept): one forward of one input copy
    per arch ``[B, K, C, H, W]``, ``L = sum_k loss_k`` (each arch's task loss, :meth:`raynas.tasks.Task.stacked_loss`:
    the mean cross-entropy for classification), ONE backward to the
    stacked weights and the recorded layer outputs (``create_graph=True`` when grasp is asked for, then ``Hg``
    from ``d(sum_l <g_l, dL/dW_l>)/dW``). The blocks are disjoint and arch ``k``'s logits read only its block, so each
    block's gradient (and Hessian-vector product) is arch ``k``'s own: grad_norm, snip, grasp, fisher reduce it
    block by block. ``d(sum of logits)/d inputs`` on the per-arch copies is each arch's input Jacobian
    (jacob_cov); ReLU-input codes give each arch's Hamming kernel (naswot).
``"synflow"`` pass: the BN-free stacked network in float64 (or ``dtype``), every parameter replaced by its
    absolute value, one all-ones input per arch, ``R = sum`` of all logits.
``params``: counted on each arch's network (no pass).

Every other metric (:data:`BATCHED_METRICS` lists the batched ones; the registry's ``batchable`` flag marks
them) and every network the stacked form does not fit (another space, a thin network) runs through the
per-arch fused engine, as :func:`raynas.metrics.engine.compute_metrics` would.

Values: the batched definitions are the per-arch ones, not an approximation of them. In float64
(``dtype=torch.float64``, against :func:`per_arch_metrics` in float64) the two agree to float64 rounding at every
size measured: <= 1e-9 in ``tests/metrics/test_batched.py``, <= 3e-12 (grasp; the others <= 4e-16) at the
benchmark's size, NAS-Bench-201 C=16 N=5, digits batch 64, 32 px (``scripts/bench_batched_equality.py``). In the
default float32 they agree to float32 rounding only: a grouped convolution over K archs sums its products in another
order than K separate convolutions, and each metric amplifies that rounding its own way. On the tests' small
networks that is <= 1e-5 relative (grasp 1e-4); at the benchmark's size batched vs per-arch float32 measured up to
5e-5 (grad_norm), 2e-5 (snip) and 2e-2 (grasp, a sum of terms of both signs that cancel, on the all-1x1-conv cell),
each 7x to 40x below float32's own error there, per-arch float32 vs per-arch float64: 1.5e-3, 9e-4 and 1.4e-1
(docs/benchmarks.md); batched float32 is as far from the float64 value as per-arch float32. So the float32 gap is
rounding of one definition, not a difference between two.

Failures: a reduction failing for one arch (jacob_cov on a batch of 1, a non-finite value) gives that arch's
row the status the per-arch engine gives; any other failure of a batched pass sends its metrics to the
per-arch path for those archs. Out of memory on a K-batch retries the archs as two batches of K/2 (down to 1,
then the per-arch engine with its own batch halving); the ``ok`` rows then carry the note
``"arch batch 4 of 8 after out-of-memory"``. The seconds of a batched pass are split evenly between its archs
and metrics.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from typing import Any, Callable, Sequence

import torch
import torch.nn as nn

from raynas.data.batch import Batch
from raynas.errors import ConfigError, MetricError, NonFiniteError, RaynasError
from raynas.metrics._failures import free_device_memory, is_oom, one_line
from raynas.metrics._layers import grads_or_zeros
from raynas.metrics._single import MetricResult, run_metric
from raynas.metrics.engine import compute_metrics
from raynas.metrics.jacob_cov import check_batch, jacob_cov_score
from raynas.metrics.registry import get_metric
from raynas.spaces.stacking import stack_networks

log = logging.getLogger(__name__)

ModelFactory = Callable[[], nn.Module]

#: metrics of the ``"loss"`` pass and the quantities each reads
LOSS_METRICS: dict[str, frozenset[str]] = {
    "grad_norm": frozenset({"grads"}),
    "snip": frozenset({"grads"}),
    "grasp": frozenset({"grads", "hvp"}),
    "fisher": frozenset({"fisher"}),
    "jacob_cov": frozenset({"input_jac"}),
    "naswot": frozenset({"relu_kernel"}),
}

#: every metric this engine computes batched (others run per arch)
BATCHED_METRICS: tuple[str, ...] = (*LOSS_METRICS, "synflow", "params")

def batched_names(names: Sequence[str]) -> list[str]:
    """The metrics of ``names`` the batched engine computes in its stacked passes (registered ``batchable`` and
    implemented here); the others fall back to the per-arch engine."""
    return [n for n in names if n in BATCHED_METRICS and get_metric(n).batchable]


def compute_metrics_batched(
    factories: Sequence[ModelFactory],
    batch: Batch,
    names: Sequence[str],
    *,
    device: torch.device | str = "cpu",
    seed: int = 0,
    thin_factories: Sequence[ModelFactory | None] | None = None,
    min_batch: int = 2,
    dtype: torch.dtype | None = None,
) -> list[list[MetricResult]]:
    """Score K architectures with every metric in ``names``; ``result[k]`` is arch ``k``'s list, in ``names`` order.

    Args:
        factories: one network builder per arch, each called once under ``seed`` (as the per-arch engine does).
        batch: the fixed input batch.
        names: registered metric names (unknown names raise :class:`UnknownNameError` up front).
        device: where to compute.
        seed: seeds each network's initialisation and every pass.
        thin_factories: per arch, the thin proxy network for ``thin_model`` metrics (per-arch path).
        min_batch: smallest input batch the per-arch fallback halves down to after out-of-memory.
        dtype: None (the default): every metric in its registered dtype, as the per-arch engine computes it
            (the loss-pass metrics in float32, synflow in float64). A floating dtype: EVERY metric in it, on
            both paths: the stacked passes, and the per-arch fallback, which then is :func:`per_arch_metrics`
            (each metric unfused on its own copy). Meant for equality checks in float64, where float32 rounding
            does not hide a difference of definition.
    Returns:
        per arch, one :class:`MetricResult` per name. A network that cannot be built gets ``error`` rows
        (``"build failed: ..."``); the other archs are still scored.
    """
    specs = [get_metric(n) for n in names]
    device = torch.device(device)
    _check_dtype(dtype)
    thin_factories = list(thin_factories) if thin_factories is not None else [None] * len(factories)
    nets: list[nn.Module | None] = []
    built_error: dict[int, str] = {}
    for k, factory in enumerate(factories):
        torch.manual_seed(seed)
        try:
            nets.append(factory())
        except Exception as exc:  # noqa: BLE001 - a broken arch becomes error rows, the others go on
            nets.append(None)
            built_error[k] = f"build failed: {type(exc).__name__}: {exc}"  # the per-arch scorer's text
    unique = list(dict.fromkeys(s.name for s in specs))
    batched = batched_names(unique)
    ok = [k for k, n in enumerate(nets) if n is not None]
    out: dict[int, dict[str, MetricResult]] = {k: {} for k in range(len(factories))}
    if batched and ok:
        oks: list[nn.Module] = [nets[k] for k in ok]  # type: ignore[misc]
        done = _batched_or_split(oks, batch, batched, device, seed, len(ok), dtype)
        for k, res in zip(ok, done):
            out[k].update(res)
    for k in ok:  # the per-arch path: metrics not batched, or whose batched pass failed for this arch
        rest = [n for n in unique if n not in out[k]]
        if rest:
            net, thin = nets[k], thin_factories[k]
            if dtype is None:
                res = compute_metrics(lambda net=net: net, batch, rest, device=device, seed=seed, thin_factory=thin,
                                      fused=True)
            else:
                res = per_arch_metrics(lambda net=net: net, batch, rest, dtype=dtype, device=device, seed=seed,
                                       thin_factory=thin)
            out[k].update({r.metric: r for r in res})
    for k, msg in built_error.items():
        out[k] = {n: MetricResult(n, None, "error", msg, 0.0, str(device)) for n in unique}
    return [[out[k][s.name] for s in specs] for k in range(len(factories))]


def per_arch_metrics(
    factory: ModelFactory,
    batch: Batch,
    names: Sequence[str],
    *,
    dtype: torch.dtype,
    device: torch.device | str = "cpu",
    seed: int = 0,
    thin_factory: ModelFactory | None = None,
) -> list[MetricResult]:
    """One arch's metrics with every metric computed in ``dtype``: the per-arch reference of
    ``compute_metrics_batched(..., dtype=dtype)``.

    Each metric runs unfused (its registered ``fn``, the definition) through the per-arch engine's
    :func:`~raynas.metrics._single.run_metric` on its own copy of the network the factory built under ``seed``,
    with its registered dtype replaced by ``dtype`` (mode, BN removal, seeding, statuses unchanged). With the
    registered dtypes this is :func:`raynas.metrics.engine.compute_metrics` (``fused=False``).
    """
    _check_dtype(dtype)
    specs = [dataclasses.replace(get_metric(n), dtype=dtype) for n in names]
    device = torch.device(device)
    torch.manual_seed(seed)
    base = factory()
    thin, thin_error = None, ""
    if thin_factory is not None and any(s.thin_model for s in specs):
        torch.manual_seed(seed)
        try:
            thin = thin_factory()
        except Exception as exc:  # noqa: BLE001 - only the thin-network metrics fail, as in compute_metrics
            thin_error = f"thin network cannot be built: {type(exc).__name__}: {one_line(exc)}"
    return [MetricResult(s.name, None, "error", thin_error, 0.0, str(device)) if (s.thin_model and thin_error)
            else run_metric(s, thin if (s.thin_model and thin is not None) else base, batch, device=device, seed=seed)
            for s in specs]


def _check_dtype(dtype: torch.dtype | None) -> None:
    if dtype is not None and not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise ConfigError(f"dtype must be a floating torch.dtype or None, got {dtype!r}")


def _batched_or_split(
    nets: list[nn.Module], batch: Batch, names: list[str], device: torch.device, seed: int, requested: int,
    dtype: torch.dtype | None = None,
) -> list[dict[str, MetricResult]]:
    """The batched passes on ``nets``; out of memory splits them in two halves (recursively). A metric missing
    from an arch's dict goes to the per-arch path (its batched pass failed, or one arch was left)."""
    if len(nets) == 1 and requested > 1:  # an OOM split down to one arch: the per-arch engine halves the batch
        return [{}]
    try:
        return _batched(nets, batch, names, device, seed, requested, dtype)
    except Exception as exc:  # noqa: BLE001 - only out of memory is handled here, the rest re-raised
        if not is_oom(exc):
            raise
        free_device_memory(device)
        half = len(nets) // 2
        log.warning("batched engine: out of memory on %d archs, retrying as batches of %d and %d", len(nets), half,
                    len(nets) - half)
        return (_batched_or_split(nets[:half], batch, names, device, seed, requested, dtype)
                + _batched_or_split(nets[half:], batch, names, device, seed, requested, dtype))


def _batched(
    nets: list[nn.Module], batch: Batch, names: list[str], device: torch.device, seed: int, requested: int,
    dtype: torch.dtype | None = None,
) -> list[dict[str, MetricResult]]:
    k = len(nets)
    note = f"arch batch {k} of {requested} after out-of-memory" if k != requested else ""
    out: list[dict[str, MetricResult]] = [{} for _ in nets]
    loss_names = [n for n in names if n in LOSS_METRICS]
    groups: list[tuple[list[str], Callable[[], dict[str, list[Any]]]]] = []
    if "params" in names:
        groups.append((["params"], lambda: {"params": [float(sum(p.numel() for p in n.parameters()
                                                                  if p.requires_grad)) for n in nets]}))
    if "synflow" in names:
        groups.append((["synflow"], lambda: _synflow_pass(nets, batch, device, seed, dtype or torch.float64)))
    if loss_names:
        groups.append((loss_names, lambda: _loss_pass(nets, batch, loss_names, device, seed,
                                                          dtype or torch.float32)))
    for group, run in groups:
        start = time.perf_counter()
        try:
            values = run()
        except Exception as exc:  # noqa: BLE001 - OOM splits the archs; anything else: per-arch for this group
            if is_oom(exc):
                raise
            log.warning("batched %s pass failed (%s: %s); scoring those metrics per arch", "+".join(group),
                        type(exc).__name__, one_line(exc))
            continue
        if values is None:  # the networks have no stacked form
            continue
        floats = _to_floats(values)
        seconds = (time.perf_counter() - start) / (k * len(group))
        for name in group:
            for i in range(k):
                out[i][name] = _result(name, floats[name][i], seconds, str(device), note)
    return out


def _to_floats(values: dict[str, list[Any]]) -> dict[str, list[float | BaseException]]:
    """Per-arch tensors -> floats with ONE host sync (stacked as float64; float32 converts exactly)."""
    flat = [(n, i, v) for n, vs in values.items() for i, v in enumerate(vs) if isinstance(v, torch.Tensor)]
    out: dict[str, list[Any]] = {n: list(vs) for n, vs in values.items()}
    if flat:
        dev = flat[0][2].device
        stacked = torch.stack([v.detach().reshape(()).to(device=dev, dtype=torch.float64) for _, _, v in flat])
        for (n, i, _), f in zip(flat, stacked.cpu().tolist()):
            out[n][i] = f
    return out


def _result(name: str, v: Any, seconds: float, device: str, note: str) -> MetricResult:
    """The row the per-arch engine gives for value ``v`` (a float, or the exception its reduction raised)."""
    if isinstance(v, BaseException):
        if isinstance(v, NonFiniteError):
            return MetricResult(name, None, "nan", one_line(v), seconds, device)
        if not isinstance(v, (RaynasError, RuntimeError, ValueError, ArithmeticError)):
            log.error("metric %s raised an unexpected %s: %s", name, type(v).__name__, v)
        return MetricResult(name, None, "error", f"{type(v).__name__}: {one_line(v)}", seconds, device)
    v = float(v)
    if not math.isfinite(v):
        return MetricResult(name, None, "nan", f"non-finite value {v}", seconds, device)
    return MetricResult(name, v, "ok", note, seconds, device)


def _per_arch(fn: Callable[[int], Any], k: int) -> list[Any]:
    """``[fn(0), ..., fn(k-1)]`` with a failing arch's exception in its place (OOM propagates)."""
    out: list[Any] = []
    for i in range(k):
        try:
            out.append(fn(i))
        except Exception as exc:  # noqa: BLE001 - one arch's reduction failing leaves the others
            if is_oom(exc):
                raise
            out.append(exc)
    return out


def _blocks(net: nn.Module, weights_only: bool) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``(parameter, arch ids [m] on its device)`` of the stacked network's blocks."""
    return [(net.get_parameter(name), net.index(archs, net.get_parameter(name).device))
            for name, archs, is_weight in net.blocks if is_weight or not weights_only]


def _per_block_sum(k: int, pairs: Sequence[tuple[torch.Tensor, torch.Tensor]], dtype: torch.dtype | None = None
                   ) -> torch.Tensor:
    """``acc[a] = sum over blocks of arch a`` for ``pairs`` of (per-parameter tensor [m*...], arch ids [m])."""
    first = pairs[0][0]
    acc = torch.zeros(k, dtype=dtype or first.dtype, device=first.device)
    for t, idx in pairs:
        acc.index_add_(0, idx, t.reshape(idx.numel(), -1).sum(1).to(acc.dtype))
    return acc


def _synflow_pass(nets: list[nn.Module], batch: Batch, device: torch.device, seed: int, dtype: torch.dtype
                  ) -> dict[str, list[Any]] | None:
    net = stack_networks(nets, batchnorm=False)
    if net is None:
        return None
    torch.manual_seed(seed)
    net = net.to(device=device, dtype=dtype).train(False)
    with torch.no_grad():
        for p in net.parameters():
            p.abs_()
    blocks = _blocks(net, weights_only=True)
    x = torch.ones((1, len(nets), *batch.inputs.shape[1:]), dtype=dtype, device=device)
    r = net(x).sum()
    grads = grads_or_zeros(r, [w for w, _ in blocks])
    acc = _per_block_sum(len(nets), [((w.detach() * g).abs(), idx) for (w, idx), g in zip(blocks, grads)])
    return {"synflow": list(acc.unbind(0))}


def _loss_pass(
    nets: list[nn.Module], batch: Batch, names: list[str], device: torch.device, seed: int, dtype: torch.dtype
) -> dict[str, list[Any]] | None:
    net = stack_networks(nets)
    if net is None:
        return None
    torch.manual_seed(seed)
    net = net.to(device=device, dtype=dtype).train(True)
    uses = frozenset().union(*(LOSS_METRICS[n] for n in names))
    k = len(nets)
    x = batch.inputs.to(device=device, dtype=dtype)
    task = batch.task
    targets = batch.targets.to(device)  # type: ignore[union-attr]
    if targets.dtype.is_floating_point:  # regression / image targets follow the pass's dtype, as Batch.to does
        targets = targets.to(dtype)
    b = int(x.shape[0])
    xk = x.unsqueeze(1).expand(b, k, *x.shape[1:]).clone()
    if "input_jac" in uses:
        xk.requires_grad_(True)
    kernel = torch.zeros(k, b, b, dtype=torch.float64, device=device) if "relu_kernel" in uses else None
    acts: list[tuple[torch.Tensor, tuple[int, ...], int]] = []

    def ids(archs: tuple[int, ...]) -> torch.Tensor:
        return net.index(archs, device)

    def codes(z: torch.Tensor, archs: tuple[int, ...]) -> None:  # HammingAccumulator, per arch block
        with torch.no_grad():
            c = z.detach().reshape(b, len(archs), -1) > 0
            s = (c.to(torch.float64) * 2.0 - 1.0).transpose(0, 1)  # [m, B, n]
            kernel.index_add_(0, ids(archs), (torch.bmm(s, s.transpose(1, 2)) + c.shape[2]) * 0.5)  # type: ignore[union-attr]

    if kernel is not None:
        net.relu_callback = codes
    if "fisher" in uses:
        net.layer_callback = lambda out, archs, fan_in: acts.append((out, archs, fan_in))
    logits = net(xk)  # [B, K, n]
    net.relu_callback = net.layer_callback = None
    values: dict[str, list[Any]] = {}
    want_w = bool(uses & {"grads", "hvp"})
    if "input_jac" in uses:
        (jac,) = torch.autograd.grad(logits.sum(), xk, retain_graph=want_w or bool(acts), allow_unused=True)
        if jac is None:  # no arch's logits reach the input (the stack skips ``none`` edges, which the per-arch
            jac = torch.zeros_like(xk)  # network multiplies by 0): its zero Jacobian, a NaN correlation there too

        def jc(i: int) -> torch.Tensor:
            check_batch(batch)
            return jacob_cov_score(jac[:, i])

        values["jacob_cov"] = _per_arch(jc, k)
    if kernel is not None:
        values["naswot"] = list(torch.linalg.slogdet(kernel)[1].unbind(0))
    if want_w or acts:
        loss = task.stacked_loss(logits, targets).sum()  # type: ignore[union-attr]  # sum_k of arch k's task loss
        blocks = _blocks(net, weights_only=True) if want_w else []
        weights = [w for w, _ in blocks]
        create = "hvp" in uses
        grads = grads_or_zeros(loss, weights + [a for a, _, _ in acts], create_graph=create)
        wg, ag = grads[: len(weights)], grads[len(weights):]
        if want_w:
            g = [t.detach() for t in wg]
            if "grad_norm" in names:
                norms = torch.zeros(k, dtype=dtype, device=device)
                for gi, (_, idx) in zip(g, blocks):  # sum_l ||g_l||: the norm of each layer block, summed
                    norms.index_add_(0, idx, gi.reshape(idx.numel(), -1).norm(dim=1))
                values["grad_norm"] = list(norms.unbind(0))
            if "snip" in names:
                acc = _per_block_sum(k, [((w.detach() * gi).abs(), idx) for (w, idx), gi in zip(blocks, g)])
                values["snip"] = list(acc.unbind(0))
            if "grasp" in names:
                z = sum((gi * gr).sum() for gi, gr in zip(g, wg))
                if isinstance(z, torch.Tensor) and z.requires_grad:
                    hg = grads_or_zeros(z, weights)
                    acc = _per_block_sum(k, [(-w.detach() * h, idx) for (w, idx), h in zip(blocks, hg)])
                else:  # loss (piecewise) linear in the weights: Hg = 0
                    acc = torch.zeros(k, dtype=dtype, device=device)
                values["grasp"] = list(acc.unbind(0))
        if "fisher" in names:
            total = torch.zeros(k, dtype=torch.float64, device=device)
            for (a, archs, fan_in), ga in zip(acts, ag):
                prod = a.detach() * ga.detach()
                m = len(archs)
                per_sample = prod.flatten(2).sum(2) if prod.dim() > 3 else prod.reshape(b, -1)  # [B, m*C]
                est = (0.5 * per_sample.pow(2).mean(0)).reshape(m, -1).sum(1)
                total.index_add_(0, ids(archs), est.to(torch.float64) * fan_in)
            if not acts:
                values["fisher"] = [MetricError("no Conv2d/Linear layer ran during the forward pass")] * k
            else:
                values["fisher"] = list(total.unbind(0))
    return values
