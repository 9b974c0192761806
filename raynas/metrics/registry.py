"""Metric registry: each metric module registers one scoring function with its metadata.

A metric is ``fn(model, batch) -> float``. Everything around the call (fresh model copy, BN removal, dtype,
device, seeding, timing, OOM and NaN handling) belongs to :mod:`raynas.metrics.engine`, never to the metric.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Literal, Mapping, Sequence

import torch
import torch.nn as nn

from raynas.data.batch import Batch
from raynas.errors import ConfigError, UnknownNameError
from raynas.registry import Registry
from raynas.tasks import Task

MetricFn = Callable[[nn.Module, Batch], float]

#: the fused engine's reduction: ``reduce(shared, batch) -> value`` where ``shared`` maps the quantity names in
#: ``MetricSpec.uses`` to what the shared pass computed (see :mod:`raynas.metrics.fused`); the value is a 0-dim
#: tensor (left on the device, so the engine syncs once per architecture) or a float
ReduceFn = Callable[[Mapping[str, Any], Batch], "torch.Tensor | float"]

#: passes of the fused engine: ``"own"`` (the metric's own call on a prepared copy), ``"loss"`` (one train-mode
#: forward + CE backward shared by the gradient/activation metrics), ``"ntk"`` (one forward + per-sample gradients),
#: ``"lwt"`` (one light-weight training run on a private copy, read by both of its signals), ``"az"`` (AZ-NAS's
#: Gaussian-input forward and per-cell vector-Jacobian products, read by its three feature terms)
PassKind = Literal["own", "loss", "ntk", "lwt", "az"]

#: what a metric needs from the batch's task (:attr:`MetricSpec.needs`):
#: ``"nothing"``: label-free, any task (it reads the inputs, the network's output as a tensor of any shape, or
#: neither); ``"loss"``: a differentiable task loss, any task (it calls ``batch.task.loss_fn``); ``"labels"``: a
#: ``class`` task, per-sample class labels ``[B]`` and logits ``[B, K]`` (the true-class logit, per-class groups or
#: Jacobians, a classifier layer): on any other task the engines store it as ``not_applicable``
Needs = Literal["nothing", "loss", "labels"]
NEEDS: tuple[str, ...] = ("nothing", "loss", "labels")


@dataclass(frozen=True)
class MetricSpec:
    """Metadata of a registered metric.

    Attributes:
        name: registry name.
        fn: the scoring function.
        needs_labels: uses ``batch.labels`` (False for label-free metrics).
        needs_data: uses ``batch.inputs`` at all (False: params, flops, synflow).
        bn: ``"keep"`` or ``"remove"`` (every BatchNorm replaced by Identity before the call).
        mode: module mode during the call: ``"train"`` or ``"eval"``.
        dtype: parameter/input dtype during the call (``torch.float64`` for synflow).
        higher_is_better: direction of the score as a predictor of accuracy.
        reference: the paper that defines it.
        thin_model: computed on the space's thin proxy network (TE-NAS counts linear regions on a C=1 copy
            of the cell network, where patterns do not saturate) when the caller provides one.
        pass_kind: which pass of the fused engine computes it (``"own"``: its own call, the default).
        uses: the shared quantities its ``reduce`` reads (names documented in :mod:`raynas.metrics.fused`).
        reduce: the metric's reduction applied to the shared quantities; must give the value ``fn`` gives.
        batchable: the batched engine (:mod:`raynas.metrics.batched`) computes it for K architectures in one
            stacked network, equal to this per-arch value; False: it is scored per arch there (the fallback).
        inputs: what the metric feeds the network: ``"batch"`` (the batch's inputs, the default), or a description
            of the input it makes itself (e.g. AZ-NAS's ``"gaussian: randn of the batch's shape"``, MeCo's one
            64x64 Gaussian sample); read by users and listings, the engines pass the batch either way.
        needs: what it needs from the task (:data:`Needs`): ``"nothing"``, ``"loss"`` or ``"labels"``; None (a
            metric registered without saying) is read as ``"labels"`` when ``needs_labels`` else ``"nothing"``
            (:attr:`requirement`). Every built-in metric declares it.
        needs_why: for ``"labels"``: what of the class structure it reads (the reason a ``not_applicable`` row
            gives, e.g. ``"the true-class logit logits[i, y_i]"``).
        variant_of: for a raynas-only diagnostic twin of another registered metric (the same reference definition
            computed another way: ``ntk_cond_jacobian`` of ``ntk_cond``, the float32 ``vkdnw_f32`` of ``vkdnw``,
            ``linear_regions_gaussian`` of ``linear_regions``): that metric's name. Such a metric is in the group
            ``diagnostic``, not in ``all`` (:data:`GROUPS`); ``""`` (the default): a metric of its own.
    """

    name: str
    fn: MetricFn
    needs_labels: bool = True
    needs_data: bool = True
    bn: Literal["keep", "remove"] = "keep"
    mode: Literal["train", "eval"] = "train"
    dtype: torch.dtype = torch.float32
    higher_is_better: bool = True
    reference: str = ""
    thin_model: bool = False
    pass_kind: PassKind = "own"
    uses: tuple[str, ...] = ()
    reduce: ReduceFn | None = None
    batchable: bool = False
    inputs: str = "batch"
    needs: Needs | None = None
    needs_why: str = ""
    variant_of: str = ""

    @property
    def requirement(self) -> str:
        """:attr:`needs`, or for a metric registered without it, ``"labels"`` if it reads labels else ``"nothing"``."""
        if self.needs is not None:
            return self.needs
        return "labels" if self.needs_labels else "nothing"

    def not_applicable(self, task: Task | None) -> str | None:
        """Why this metric cannot score a batch of ``task`` (the ``not_applicable`` row's text), or None when it can.

        Args:
            task: the batch's task (None: classification, which every metric applies to).
        Returns:
            the reason, one line, or None.
        """
        if task is None or task.is_class or self.requirement != "labels":
            return None
        why = f" ({self.needs_why})" if self.needs_why else ""
        return (f"{self.name} needs per-sample class labels and logits [B, K]{why}; task {task.name!r} has "
                f"{task.target_kind} targets {list(task.target_shape)}")

    @property
    def description(self) -> str:
        doc = (self.fn.__doc__ or "").strip().splitlines()
        return doc[0] if doc else ""


METRICS: Registry[MetricSpec] = Registry("metric")


def register_metric(
    name: str,
    *,
    needs_labels: bool = True,
    needs_data: bool = True,
    bn: Literal["keep", "remove"] = "keep",
    mode: Literal["train", "eval"] = "train",
    dtype: torch.dtype = torch.float32,
    higher_is_better: bool = True,
    reference: str = "",
    thin_model: bool = False,
    pass_kind: PassKind = "own",
    uses: tuple[str, ...] = (),
    reduce: ReduceFn | None = None,
    batchable: bool = False,
    inputs: str = "batch",
    needs: Needs | None = None,
    needs_why: str = "",
    variant_of: str = "",
) -> Callable[[MetricFn], MetricFn]:
    """Decorator registering ``fn`` as metric ``name`` with its metadata; returns ``fn`` unchanged.

    ``pass_kind``/``uses``/``reduce`` opt the metric into a shared pass of the fused engine; without them it
    runs on its own (fused or not). ``needs`` declares what the metric needs from the batch's task
    (:data:`Needs`; see :class:`MetricSpec`). ``variant_of`` names the metric a raynas-only diagnostic twin
    computes another way (it then leaves the group ``all`` for ``diagnostic``).
    """
    if needs is not None and needs not in NEEDS:
        raise ConfigError(f"metric {name!r}: needs must be one of {', '.join(NEEDS)}, got {needs!r}")
    if name in GROUPS:  # a metric list names groups and metrics alike
        raise ConfigError(f"metric name {name!r} is a metric group's name ({', '.join(GROUPS)})")

    def deco(fn: MetricFn) -> MetricFn:
        METRICS.add(
            name,
            MetricSpec(
                name, fn, needs_labels, needs_data, bn, mode, dtype, higher_is_better, reference, thin_model,
                pass_kind, tuple(uses), reduce, batchable, inputs, needs, needs_why, variant_of,
            ),
        )
        return fn

    return deco


def get_metric(name: str) -> MetricSpec:
    """The spec of metric ``name``; unknown names raise :class:`UnknownNameError` with close matches."""
    # No import of the package here: Python runs ``raynas/metrics/__init__.py`` (which imports every built-in
    # metric module) before any ``raynas.metrics.*`` module, this one included, so the registry is full by now.
    return METRICS.get(name)


def not_applicable_reasons(names: Sequence[str], task: Task | None, *, skip_unknown: bool = False) -> dict[str, str]:
    """``metric -> why`` for the metrics of ``names`` that cannot apply to ``task`` (:meth:`MetricSpec.not_applicable`).

    Args:
        names: metric names.
        task: the task scored (None: classification, which every metric applies to).
        skip_unknown: leave out names this process has not registered (a plugin's metric, whose stored column
            is all there is to go by) instead of raising :class:`UnknownNameError`.

    Returns:
        the reasons, in ``names`` order; empty when every metric applies.
    """
    out: dict[str, str] = {}
    for name in names:
        if skip_unknown and name not in METRICS:
            continue
        why = get_metric(name).not_applicable(task)
        if why is not None:
            out[name] = why
    return out


def list_metrics() -> list[str]:
    return METRICS.names()  # complete: see get_metric


#: metric groups a metric list may name beside metric names: ``all`` is the metrics a user would pick, each
#: reference definition once (every registered metric but the diagnostic twins); ``diagnostic`` is the raynas-only
#: twins (:attr:`MetricSpec.variant_of`: the per-sample-Jacobian NTK forms, the float32 vkdnw, the Gaussian-input
#: region count), opt-in by name or as a group: ``all,diagnostic`` is every registered metric
GROUPS: dict[str, str] = {
    "all": "every metric, each reference definition once (the diagnostic twins left out)",
    "diagnostic": "the raynas-only diagnostic twins of other metrics (variant_of set): opt-in",
}


def group_members(group: str) -> list[str]:
    """The registered metrics of ``group`` (a key of :data:`GROUPS`), in registry order.

    Args:
        group: ``"all"`` or ``"diagnostic"``.
    Returns:
        the metric names.
    Raises:
        UnknownNameError: ``group`` is not a group (close matches listed).
    """
    if group not in GROUPS:
        raise UnknownNameError("metric group", group, GROUPS)
    diagnostic = group == "diagnostic"
    return [n for n in list_metrics() if bool(METRICS.get(n).variant_of) == diagnostic]


def resolve_metric_names(spec: str | list[str] | tuple[str, ...]) -> list[str]:
    """``"all"`` / ``"a,b"`` / a list -> validated list of names (order kept, duplicates dropped).

    Group names (:data:`GROUPS`) expand in place: ``"all"`` to every metric but the diagnostic twins,
    ``"diagnostic"`` to those twins, so ``"all,diagnostic"`` is every registered metric.

    Args:
        spec: a comma-separated string or a sequence of metric and group names.
    Returns:
        the metric names.
    Raises:
        UnknownNameError: an unknown metric name (close matches listed).
    """
    if isinstance(spec, str):
        names = [s.strip() for s in spec.split(",") if s.strip()]
    else:
        names = [str(s).strip() for s in spec]
    out: list[str] = []
    for n in names:
        if n not in GROUPS and n not in METRICS:  # the close matches cover the group names too
            raise UnknownNameError("metric", n, [*list_metrics(), *GROUPS])
        for m in group_members(n) if n in GROUPS else [n]:
            if m not in out:
                out.append(m)
    return out
