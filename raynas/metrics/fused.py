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
    When the ``"loss"`` pass also runs, the training's step 0 takes its loss and gradients from that pass
    (:class:`~raynas.metrics._lwt.FirstStep`): it is the same computation (the task loss of a train-mode forward
    of the same weights on the same batch after the same seed; the loss pass's backward then also differentiates
    w.r.t. every other trainable parameter, and the generator state after its forward is handed on for step 1), so
    one forward and backward of the 50 is saved and the values are those of lwt alone.
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
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import torch
import torch.nn as nn

from raynas.data.batch import Batch
from raynas.errors import MetricError, NonFiniteError, RaynasError
from raynas.metrics._az import az_nas_terms
from raynas.metrics._codes import HammingAccumulator, relu_code_hooks
from raynas.metrics._layers import hessian_gradient, layer_weights, record_outputs, weight_layers
from raynas.metrics._lwt import FirstStep, light_weight_train, rng_state
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
    passes = plan([s for s in specs if s.name not in results])
    # lwt's step 0 is the loss pass's forward/backward (module docstring); the generator state that step 1 needs
    # is only handed on for the CPU and CUDA generators
    carry: dict[str, FirstStep] | None = (
        {} if {"loss", "lwt"} <= {p.kind for p in passes} and device.type in ("cpu", "cuda") else None)
    for p in passes:
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
                                ntk_method=ntk_method, carry=carry)
            )
    return [results[s.name] for s in specs]


def run_shared_pass(
    p: Pass, model: nn.Module, batch: Batch, *, device: torch.device, seed: int, min_batch: int = 2,
    ntk_method: Method = "auto", carry: dict[str, FirstStep] | None = None,
) -> dict[str, MetricResult]:
    """Compute pass ``p`` on ``model`` (train mode) and reduce it for each of its metrics; never raises.

    Args:
        p: the pass (its kind and metrics).
        model: the network the pass runs on (the ``"lwt"`` and ``"az"`` passes copy it first).
        batch: the batch on ``device``; an out-of-memory error retries on its first half, down to ``min_batch``.
        device, seed: where, and the ``torch.manual_seed`` set before the pass.
        ntk_method: how the ``"ntk"`` pass computes per-sample gradients.
        carry: None, or a dict between the passes of one :func:`run_fused`: a ``"loss"`` pass puts lwt's
            :class:`~raynas.metrics._lwt.FirstStep` under ``"lwt_first_step"``, a later ``"lwt"`` pass uses it.

    Returns:
        metric name -> its result.
    """
    sub, start, dev = batch, time.perf_counter(), str(device)
    outcome: dict[str, float | BaseException]
    while True:
        try:
            torch.manual_seed(seed)
            model.train(True)
            if p.kind == "loss":
                shared = loss_pass(model, sub, p.uses, first_step=carry is not None)
                first = shared.pop("lwt_first_step", None)
                if carry is not None and isinstance(first, FirstStep):
                    carry["lwt_first_step"] = first
            elif p.kind == "lwt":  # training mutates weights: a private copy, prepared as the unfused engine does
                first = carry.get("lwt_first_step") if carry is not None else None
                shared = {"lwt": light_weight_train(prepare_model(model, p.specs[0], device), sub, first_step=first)}
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


def loss_pass(model: nn.Module, batch: Batch, uses: frozenset[str], *, first_step: bool = False) -> Shared:
    """The ``"loss"`` quantities in ``uses`` from one train-mode forward (see the module docstring).

    Args:
        model: the network, in train mode (BN uses batch statistics; its running statistics are updated once).
        batch: the batch (on the model's device).
        uses: the quantities to compute (:data:`QUANTITIES` ``["loss"]``).
        first_step: also return lwt's step 0 (:class:`~raynas.metrics._lwt.FirstStep`, key
            ``"lwt_first_step"``): the same backward then differentiates w.r.t. every trainable parameter too
            (a failure there only loses the first step; lwt then runs step 0 itself).

    Returns:
        quantity -> value (or the exception that prevented it), for each of ``uses`` (+ ``"lwt_first_step"``).
    """
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
    rng = rng_state(x.device) if first_step else None  # what step 1 of lwt would start from
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
    params = [p for p in model.parameters() if p.requires_grad] if first_step else []
    if "input_jac" in uses:
        (jac,) = torch.autograd.grad(logits.sum(), x, allow_unused=True, retain_graph=want_w or want_a or bool(params))
        out["input_jac"] = jac if jac is not None else MetricError("the logits do not depend on the inputs")
    result: Shared = {}
    if want_w or want_a or params:
        # a backward run only for lwt must not fail the pass's own metrics: then lwt runs step 0 itself
        with nullcontext() if (want_w or want_a) else _isolated(lambda _k, _e: None, set()):
            loss = task.loss_fn(logits, batch.targets)  # type: ignore[union-attr,arg-type]
            grads = _loss_backward(out, fail, loss, weights if want_w else [], acts, "hvp" in uses and want_w,
                                   params)
            if grads is not None and rng is not None:
                result["lwt_first_step"] = FirstStep(loss.detach(), grads, rng, batch.size)
    result.update({k: out.get(k) for k in uses})
    return result


def _loss_backward(
    out: Shared,
    fail: Callable[[set[str], BaseException], None],
    loss: torch.Tensor,
    weights: list[torch.Tensor],
    acts: list[tuple[nn.Module, torch.Tensor]],
    create: bool,
    params: list[torch.Tensor],
) -> tuple[torch.Tensor | None, ...] | None:
    """ONE backward of the task loss to the weights, the recorded layer outputs and ``params`` (graph-building
    when ``hvp`` is wanted).

    Args:
        out, fail: the pass's quantities and its failure recorder (see :func:`loss_pass`).
        loss: the task loss (0-dim) of the pass's forward.
        weights: the Conv2d/Linear weights (``weight_grads``, ``hvp``); empty when neither is wanted.
        acts: the recorded ``(layer, output)`` calls (``fisher``).
        create: build the backward's graph for GraSP's ``Hg``.
        params: every trainable parameter, for lwt's first step (empty when not wanted).

    Returns:
        ``dL/dp`` per entry of ``params`` (None where the loss does not depend on it, as ``.backward()`` leaves
        ``p.grad``), or None when ``params`` is empty.
    """
    wanted = {id(w) for w in weights}
    extra = [p for p in params if id(p) not in wanted]  # lwt's other parameters (biases, BN affine, ...)
    targets = weights + [a for _, a in acts] + extra
    try:
        raw = torch.autograd.grad(loss, targets, allow_unused=True, create_graph=create)
    except RuntimeError as exc:  # e.g. an op without a double backward: only hvp is lost
        if not create or is_oom(exc):
            raise
        fail({"hvp"}, exc)
        create, raw = False, torch.autograd.grad(loss, targets, allow_unused=True)
    # a layer on a path that does not reach the output contributes 0 to the sum-over-layers metrics
    grads = [torch.zeros_like(t) if g is None else g for t, g in zip(targets, raw)]
    n_w, n_a = len(weights), len(acts)
    wg, ag = grads[:n_w], grads[n_w : n_w + n_a]
    if weights:
        g = [t.detach() for t in wg]
        out.setdefault("weight_grads", g)
        if create:
            with _isolated(fail, {"hvp"}):
                out.setdefault("hvp", hessian_gradient(g, wg, weights))
    if acts:
        out.setdefault("fisher", (acts, [t.detach() for t in ag]))
    if not params:
        return None
    by_id = {id(t): g for t, g in zip(targets, raw)}
    return tuple(None if by_id[id(p)] is None else by_id[id(p)].detach() for p in params)


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
