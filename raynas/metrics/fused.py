"""Fused metric engine: one forward/backward per architecture feeds every metric that can share it.

The unfused engine (and the published tools) deep-copy the network and run a forward/backward per metric.
Most gradient and activation metrics read different reductions of the *same* quantities, so the planner
(:func:`plan`) groups the requested metrics by their registered ``pass_kind`` and the executor
(:func:`run_fused`) computes each group's shared quantities once, on the ONE network the factory built:

``"loss"`` pass (train mode, float32, BN kept): one forward with hooks, then
    * ``input_jac`` ``[B, C, H, W]``: ``d(sum of logits)/d inputs`` (jacob_cov; backward w.r.t. the input only,
      graph retained);
    * ``weight_grads`` / ``weights``: ``dL/dW`` and ``W`` of every Conv2d/Linear weight, ``L`` the batch task's
      loss (:meth:`raynas.tasks.Task.loss_fn`: the mean CE for classification) (grad_norm, snip, grasp's ``g``);
    * ``fisher``: ``(layer outputs, dL/d outputs)`` of every Conv2d/Linear call (fisher), same backward;
    * ``hvp``: GraSP's ``H g`` (list, or None when ``Hg = 0``). It needs graph-carrying ``dL/dW``: when it is
      requested the loss backward above runs with ``create_graph=True`` and ``g`` is its detached value, so the
      same forward serves the Hessian-vector product (the unfused grasp runs a second forward for it);
    * ``relu_kernel`` ``(K_H [B, B] float64, N_A)`` / ``relu_units`` ``N_A``: ReLU-input sign codes collected by
      pre-hooks during the forward (naswot, das, das_distinguish, das_units).
``"ntk"`` pass (train mode): one forward; ``hnas_ntk`` (HNAS: rows read off ONE backward of the true-class
    logits, :mod:`raynas.metrics._ntk_decomposed`; the forward records the conv/linear calls for it),
    ``hnas_jacobian_ntk`` (true-class logit, conv/linear weights and biases) and ``tenas_ntk`` (sum of logits, all
    ``*weight`` parameters incl. BN) ``Theta [B, B]`` (float64) from per-sample gradients of that forward's graph
    (:func:`raynas.metrics._ntk.sample_gradients`).
``"lwt"`` (train mode): ONE light-weight training run (:func:`raynas.metrics._lwt.light_weight_train`, 50 SGD
    steps) on a private copy of the network; ``lwt`` is its :class:`~raynas.metrics._lwt.LWTResult`, read by both
    ``lwt_angle`` (classifier cosine) and ``lwt_loss`` (last loss), which unfused train the network twice.
``"az"`` (train mode): AZ-NAS's pass (:func:`raynas.metrics._az.az_nas_terms`), on a private copy that it
    re-initialises as the authors do (Kaiming normal, fan-in): ONE forward of a standard-normal
    input of the batch's shape with the stem and cell outputs recorded, then one sign-probed vector-Jacobian
    product per cell; ``az`` is its :class:`~raynas.metrics._az.AZTerms`, read by ``az_nas_expressivity``,
    ``az_nas_progressivity`` and ``az_nas_trainability`` (unfused: three such passes, with the same draws).
    Its input is not the batch's, so it cannot share the ``"loss"`` pass's forward.
``"own"``: every other metric (synflow's BN-free float64 copy, thin-network metrics, params, flops, metrics
    without a ``reduce``, or whose metadata asks for another mode/BN/dtype) runs exactly as unfused, through
    :func:`raynas.metrics.engine.run_metric` on a private copy; these run first, on the untouched network.

Each metric's ``reduce(shared, batch)`` turns the quantities into its value and must equal its unfused ``fn``
(both call the same reduction). Values stay 0-dim tensors on the device until one host sync per shared pass.

Tasks: the ``"loss"`` pass reads the network output the batch's task declares (logits ``[B, K]``, a pixel map
``[B, K, H, W]``, regression values, an image) and differentiates the task's loss; a metric that needs class labels
(registered ``needs="labels"``) on a batch of another task is not planned: its result is ``not_applicable``.

Statuses and timing: a failure while computing one quantity (e.g. a network without ReLU modules) marks only
the metrics that use it ``error``; a failure of the pass itself (the forward, the CE loss) marks all of the
pass's metrics. An out-of-memory error anywhere in a pass retries the whole pass on a halved batch, down to
``min_batch``, then records ``oom``. The seconds of a shared pass (forward, backward passes, reductions and the
final sync, including OOM retries) are split EVENLY between its metrics, so the per-arch total is preserved.
"""

from __future__ import annotations

import logging
import math
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import torch
import torch.nn as nn

from raynas.data.batch import Batch
from raynas.errors import MetricError, NonFiniteError, RaynasError
from raynas.metrics._az import az_nas_terms
from raynas.metrics._codes import HammingAccumulator, relu_code_hooks
from raynas.metrics._layers import grads_or_zeros, hessian_gradient, layer_weights, record_outputs, weight_layers
from raynas.metrics._lwt import light_weight_train
from raynas.metrics._ntk import (NTK_KINDS, Method, gram, logits_of, per_sample_outputs, sample_gradients,
                                 true_class_logit)
from raynas.metrics._ntk_decomposed import LayerCall, capture_layer_calls, decomposed_ntk
from raynas.metrics._failures import free_device_memory, is_oom, one_line, oom_note
from raynas.metrics._single import MetricResult, not_applicable_result, prepare_model, run_metric
from raynas.metrics.registry import MetricSpec

log = logging.getLogger(__name__)

#: quantities each shared pass can compute (names a metric lists in ``uses``)
QUANTITIES: dict[str, frozenset[str]] = {
    "loss": frozenset({"weights", "weight_grads", "hvp", "fisher", "input_jac", "relu_kernel", "relu_units"}),
    "ntk": frozenset(NTK_KINDS) | {"hnas_ntk"},
    "lwt": frozenset({"lwt"}),
    "az": frozenset({"az"}),
}

Shared = dict[str, Any]  # quantity name -> value, or the exception that prevented computing it


@dataclass(frozen=True)
class Pass:
    """One unit of work of the plan: ``kind`` ``"own"`` holds one metric, a shared kind all its metrics."""

    kind: str
    specs: tuple[MetricSpec, ...]

    @property
    def uses(self) -> frozenset[str]:
        return frozenset(q for s in self.specs for q in s.uses)


def shareable(spec: MetricSpec) -> bool:
    """True when ``spec`` can be computed by its shared pass (else it runs on its own, as unfused)."""
    return (
        spec.pass_kind in QUANTITIES
        and spec.reduce is not None
        and bool(spec.uses)
        and set(spec.uses) <= QUANTITIES[spec.pass_kind]
        and (spec.mode, spec.bn, spec.dtype, spec.thin_model) == ("train", "keep", torch.float32, False)
    )


def plan(specs: Sequence[MetricSpec]) -> list[Pass]:
    """Own passes first (they copy the pristine network), then the ``"loss"`` and ``"ntk"`` passes."""
    seen: set[str] = set()
    unique = [s for s in specs if not (s.name in seen or seen.add(s.name))]  # type: ignore[func-returns-value]
    out = [Pass("own", (s,)) for s in unique if not shareable(s)]
    for kind in QUANTITIES:
        group = tuple(s for s in unique if shareable(s) and s.pass_kind == kind)
        if group:
            out.append(Pass(kind, group))
    return out


def run_fused(
    specs: Sequence[MetricSpec],
    base: nn.Module,
    batch: Batch,
    *,
    device: torch.device,
    seed: int,
    thin: nn.Module | None = None,
    channels_last: bool = False,
    min_batch: int = 2,
    ntk_method: Method = "auto",
    on_metric: Callable[[tuple[str, ...], int, int], None] | None = None,
) -> list[MetricResult]:
    """Results for ``specs`` (in order) on the freshly built ``base``; ``base`` itself is used by the passes.

    Model and batch are placed on ``device`` once (optionally ``channels_last``); see the module docstring.
    ``on_metric(names, done, total)`` is called as each pass starts (``names``: its metrics, ``done``: metrics
    finished before it, ``total``: ``len(specs)``; :data:`raynas.metrics.engine.MetricCallback`).
    """
    results: dict[str, MetricResult] = {}
    for s in specs:  # metrics that do not apply to the batch's task take no pass at all
        na = not_applicable_result(s, batch, device)
        if na is not None:
            results[s.name] = na
    fmt = torch.channels_last if channels_last else torch.preserve_format
    base = base.to(device=device, memory_format=fmt)
    thin = thin.to(device=device, memory_format=fmt) if thin is not None else None
    moved = batch.to(device)
    dev_batch = moved.with_inputs(moved.inputs.contiguous(memory_format=fmt)) if channels_last else moved
    for p in plan([s for s in specs if s.name not in results]):
        if on_metric is not None:
            on_metric(tuple(s.name for s in p.specs), len(results), len(specs))
        if p.kind == "own":
            s = p.specs[0]
            model = thin if (s.thin_model and thin is not None) else base
            results[s.name] = run_metric(s, model, dev_batch, device=device, seed=seed)
        else:
            shared_batch = dev_batch.to(device, dtype=torch.float32)
            base = base.to(dtype=torch.float32)
            results.update(
                run_shared_pass(p, base, shared_batch, device=device, seed=seed, min_batch=min_batch,
                                ntk_method=ntk_method)
            )
    return [results[s.name] for s in specs]


def run_shared_pass(
    p: Pass, model: nn.Module, batch: Batch, *, device: torch.device, seed: int, min_batch: int = 2,
    ntk_method: Method = "auto",
) -> dict[str, MetricResult]:
    """Compute pass ``p`` on ``model`` (train mode) and reduce it for each of its metrics; never raises."""
    sub, start, dev = batch, time.perf_counter(), str(device)
    outcome: dict[str, float | BaseException]
    while True:
        try:
            torch.manual_seed(seed)
            model.train(True)
            if p.kind == "loss":
                shared = loss_pass(model, sub, p.uses)
            elif p.kind == "lwt":  # training mutates weights: a private copy, prepared as the unfused engine does
                shared = {"lwt": light_weight_train(prepare_model(model, p.specs[0], device), sub)}
            elif p.kind == "az":  # it re-initialises the weights: a private copy, as for lwt
                shared = az_pass(prepare_model(model, p.specs[0], device), sub, p.uses)
            else:
                shared = ntk_pass(model, sub, p.uses, method=ntk_method)
            outcome = _finish({s.name: _reduce(s, shared, sub) for s in p.specs})
            break
        except Exception as exc:  # noqa: BLE001 - a failed pass becomes statuses of its metrics
            if is_oom(exc):
                free_device_memory(device)
                if sub.size // 2 >= min_batch:
                    log.warning("%s pass: out of memory at batch %d, retrying with %d", p.kind, sub.size,
                                sub.size // 2)
                    sub = sub.head(sub.size // 2)
                    continue
            outcome = {s.name: exc for s in p.specs}
            break
    seconds = (time.perf_counter() - start) / len(p.specs)
    note = oom_note(sub.size, batch.size)
    return {name: _result(name, v, seconds, dev, note) for name, v in outcome.items()}


def loss_pass(model: nn.Module, batch: Batch, uses: frozenset[str]) -> Shared:
    """The ``"loss"`` quantities in ``uses`` from one train-mode forward (see the module docstring)."""
    out: Shared = {}

    def fail(keys: set[str] | frozenset[str], exc: BaseException) -> None:
        for k in keys & uses:
            out.setdefault(k, exc)  # the first failure of a quantity is the one reported

    grad_keys, relu_keys = uses & {"weights", "weight_grads", "hvp"}, uses & {"relu_kernel", "relu_units"}
    weights: list[torch.Tensor] = []
    if grad_keys:
        with _isolated(fail, grad_keys):
            weights = layer_weights(model)
            out.setdefault("weights", weights)
    x = batch.inputs.detach().clone().requires_grad_(True) if "input_jac" in uses else batch.inputs
    acc = HammingAccumulator(batch.size, x.device, with_kernel="relu_kernel" in uses) if relu_keys else None
    acts: list[tuple[nn.Module, torch.Tensor]] = []
    with ExitStack() as hooks:
        if "fisher" in uses:
            layers = weight_layers(model)
            if layers:
                acts = hooks.enter_context(record_outputs(layers))
            else:
                fail({"fisher"}, MetricError(f"{type(model).__name__} has no Conv2d/Linear layers to score"))
        if acc is not None:
            with _isolated(fail, relu_keys):  # no nn.ReLU modules: only the code metrics fail
                hooks.enter_context(relu_code_hooks(model, batch.size, acc, lambda e: fail(relu_keys, e)))
        logits = model(x)
    task = batch.task
    task.check_output(logits, batch.size)  # type: ignore[union-attr]  # a Batch always carries its task
    if acc is not None and acc.n_units == 0:
        fail(relu_keys, MetricError("no nn.ReLU module ran during the forward pass"))
    elif acc is not None:
        out.setdefault("relu_kernel", (acc.kernel, acc.n_units))
        out.setdefault("relu_units", acc.n_units)
    if "fisher" in uses and not acts:
        fail({"fisher"}, MetricError("no Conv2d/Linear layer ran during the forward pass"))
    want_w = bool(weights) and bool(uses & {"weight_grads", "hvp"})
    want_a = bool(acts)
    if "input_jac" in uses:
        (jac,) = torch.autograd.grad(logits.sum(), x, allow_unused=True, retain_graph=want_w or want_a)
        out["input_jac"] = jac if jac is not None else MetricError("the logits do not depend on the inputs")
    if want_w or want_a:
        _loss_backward(out, fail, task.loss_fn(logits, batch.targets), weights if want_w else [],  # type: ignore[union-attr,arg-type]
                       acts, "hvp" in uses and want_w)
    return {k: out.get(k) for k in uses}


def _loss_backward(
    out: Shared,
    fail: Callable[[set[str], BaseException], None],
    loss: torch.Tensor,
    weights: list[torch.Tensor],
    acts: list[tuple[nn.Module, torch.Tensor]],
    create: bool,
) -> None:
    """ONE backward of the task loss to the weights and the recorded layer outputs (graph-building when ``hvp`` is wanted)."""
    targets = weights + [a for _, a in acts]
    try:
        grads = grads_or_zeros(loss, targets, create_graph=create)
    except RuntimeError as exc:  # e.g. an op without a double backward: only hvp is lost
        if not create or is_oom(exc):
            raise
        fail({"hvp"}, exc)
        create, grads = False, grads_or_zeros(loss, targets)
    wg, ag = grads[: len(weights)], grads[len(weights) :]
    if weights:
        g = [t.detach() for t in wg]
        out.setdefault("weight_grads", g)
        if create:
            with _isolated(fail, {"hvp"}):
                out.setdefault("hvp", hessian_gradient(g, wg, weights))
    if acts:
        out.setdefault("fisher", (acts, [t.detach() for t in ag]))


def ntk_pass(model: nn.Module, batch: Batch, uses: frozenset[str], *, method: Method = "auto") -> Shared:
    """The ``"ntk"`` quantities in ``uses``: every requested NTK from the graph of ONE train-mode forward.

    Each NTK gets its own per-sample gradient call on the retained graph (the same call the unfused metric
    makes, so the rows are the same numbers); a failure of one leaves the other.
    """
    out: Shared = {}
    kinds = [k for k in NTK_KINDS if k in uses]
    hnas_failed = lambda keys, e: out.__setitem__("hnas_ntk", e)  # noqa: E731
    calls: list[LayerCall] = []
    with ExitStack() as stack:
        if "hnas_ntk" in uses:  # HNAS's rows need every conv/linear call's input and output
            with _isolated(hnas_failed, {"hnas_ntk"}):
                calls = stack.enter_context(capture_layer_calls(model))
        logits = logits_of(model, batch)
    if "hnas_ntk" in uses and "hnas_ntk" not in out:
        with _isolated(hnas_failed, {"hnas_ntk"}):
            scalars = per_sample_outputs(logits, batch, true_class_logit)
            out["hnas_ntk"] = decomposed_ntk(calls, scalars, retain_graph=bool(kinds))
    for i, kind in enumerate(kinds):
        output, select = NTK_KINDS[kind]
        with _isolated(lambda keys, e: out.__setitem__(kind, e), {kind}):
            scalars = per_sample_outputs(logits, batch, output)
            rows = sample_gradients(scalars, select(model), method=method, retain_graph=i < len(kinds) - 1)
            out[kind] = gram(rows)
    return out


def az_pass(model: nn.Module, batch: Batch, uses: frozenset[str]) -> Shared:
    """The ``"az"`` quantity: AZ-NAS's three feature terms from one Gaussian-input forward (module docstring),
    after the authors' re-initialisation of ``model`` (a private copy: :func:`raynas.metrics._az.az_nas_terms`)."""
    return {"az": az_nas_terms(model, batch)}


@contextmanager
def _isolated(fail: Callable[[set[str], BaseException], None], keys: set[str]) -> Iterator[None]:
    """Turn a non-OOM failure inside the block into ``fail(keys, exc)``; an OOM propagates (pass retry)."""
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - isolated to these quantities
        if is_oom(exc):
            raise
        fail(keys, exc)


def _reduce(spec: MetricSpec, shared: Shared, batch: Batch) -> torch.Tensor | float | BaseException:
    for q in spec.uses:
        if isinstance(shared.get(q), BaseException):
            return shared[q]
    try:
        return spec.reduce(shared, batch)  # type: ignore[misc]  # shareable() checked it is set
    except Exception as exc:  # noqa: BLE001 - one metric's reduction failing leaves the others
        if is_oom(exc):
            raise
        return exc


def _finish(values: dict[str, Any]) -> dict[str, float | BaseException]:
    """Tensors -> floats with ONE host sync (they are stacked as float64 first; float32 converts exactly)."""
    out: dict[str, float | BaseException] = {}
    tensors: dict[str, torch.Tensor] = {}
    for name, v in values.items():
        if isinstance(v, torch.Tensor):
            if v.numel() == 1:
                tensors[name] = v.detach().reshape(()).to(torch.float64)
            else:
                out[name] = MetricError(f"reduce returned a tensor of shape {tuple(v.shape)}, expected a scalar")
        else:
            out[name] = v if isinstance(v, BaseException) else float(v)
    if tensors:
        devices = {t.device for t in tensors.values()}
        stacked = torch.stack([t.to(next(iter(devices))) for t in tensors.values()])
        out.update(zip(tensors, stacked.cpu().tolist()))
    return out


def _result(name: str, v: float | BaseException, seconds: float, device: str, note: str = "") -> MetricResult:
    if isinstance(v, BaseException):
        if is_oom(v):
            return MetricResult(name, None, "oom", one_line(v), seconds, device)
        if isinstance(v, NonFiniteError):
            return MetricResult(name, None, "nan", one_line(v), seconds, device)
        if not isinstance(v, (RaynasError, RuntimeError, ValueError, ArithmeticError)):
            log.error("metric %s raised an unexpected %s: %s", name, type(v).__name__, v)
        return MetricResult(name, None, "error", f"{type(v).__name__}: {one_line(v)}", seconds, device)
    if not math.isfinite(v):
        return MetricResult(name, None, "nan", f"non-finite value {v}", seconds, device)
    return MetricResult(name, v, "ok", note, seconds, device)
