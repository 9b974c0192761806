"""The unfused path: one metric on its own prepared copy of the network, and the result row it gives.

:func:`raynas.metrics.engine.compute_metrics` calls :func:`run_metric` once per metric; the fused engine
(:mod:`raynas.metrics.fused`) calls it for the metrics that share no pass. Both import it from here, below
either engine, so the two engines do not import each other's internals.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from dataclasses import dataclass

import torch
import torch.nn as nn

from raynas.data.batch import Batch
from raynas.errors import NonFiniteError, RaynasError
from raynas.metrics._failures import free_device_memory, is_oom, one_line, oom_note
from raynas.metrics.registry import MetricSpec
# the statuses a metric result can carry: the store's one list
from raynas.store.schema import NOT_APPLICABLE, STATUSES

log = logging.getLogger("raynas.metrics.engine")  # the engine's logger, as before the unfused path moved here



@dataclass(frozen=True)
class MetricResult:
    """Outcome of one metric on one architecture. ``value`` is None unless ``status == "ok"``."""

    metric: str
    value: float | None
    status: str
    error: str
    seconds: float
    device: str


def not_applicable_result(spec: MetricSpec, batch: Batch, device: torch.device | str) -> MetricResult | None:
    """The ``not_applicable`` result of ``spec`` on ``batch``'s task (0 seconds, the reason as its text), or None
    when the metric applies (see :meth:`MetricSpec.not_applicable`)."""
    reason = spec.not_applicable(batch.task)
    if reason is None:
        return None
    return MetricResult(spec.name, None, NOT_APPLICABLE, reason, 0.0, str(device))


def remove_batchnorm(model: nn.Module) -> nn.Module:
    """Replace every ``BatchNorm{1,2,3}d`` submodule by ``Identity`` in place; returns ``model``."""
    for name, child in list(model.named_children()):
        if isinstance(child, nn.modules.batchnorm._BatchNorm):
            setattr(model, name, nn.Identity())
        else:
            remove_batchnorm(child)
    return model


def prepare_model(base: nn.Module, spec: MetricSpec, device: torch.device) -> nn.Module:
    """A private copy of ``base`` set up as ``spec`` requires (BN, dtype, device, mode)."""
    model = copy.deepcopy(base)
    if spec.bn == "remove":
        remove_batchnorm(model)
    model = model.to(device=device, dtype=spec.dtype)
    model.train(spec.mode == "train")
    model.zero_grad(set_to_none=True)
    return model


def run_metric(
    spec: MetricSpec,
    base: nn.Module,
    batch: Batch,
    *,
    device: torch.device,
    seed: int,
    min_batch: int = 2,
) -> MetricResult:
    """Compute one metric; never raises for metric-level failures (returns a result with a status).

    A metric that does not apply to the batch's task (:meth:`MetricSpec.not_applicable`) is not called: its result
    has status ``not_applicable`` and the reason as its error text.
    """
    na = not_applicable_result(spec, batch, device)
    if na is not None:
        return na
    sub = batch
    start = time.perf_counter()
    while True:
        try:
            torch.manual_seed(seed)
            model = prepare_model(base, spec, device)
            b = sub.to(device, dtype=spec.dtype)
            value = float(spec.fn(model, b))
            seconds = time.perf_counter() - start
            if not math.isfinite(value):
                return MetricResult(spec.name, None, "nan", f"non-finite value {value}", seconds, str(device))
            return MetricResult(spec.name, value, "ok", oom_note(sub.size, batch.size), seconds, str(device))
        except Exception as exc:  # noqa: BLE001 - any metric failure becomes a recorded status
            seconds = time.perf_counter() - start
            if is_oom(exc):
                free_device_memory(device)
                if sub.size // 2 >= min_batch:
                    log.warning("%s: out of memory at batch %d, retrying with %d", spec.name, sub.size, sub.size // 2)
                    sub = sub.head(sub.size // 2)
                    continue
                return MetricResult(spec.name, None, "oom", one_line(exc), seconds, str(device))
            if isinstance(exc, NonFiniteError):  # scored, but the value is not a number (e.g. diverged training)
                return MetricResult(spec.name, None, "nan", one_line(exc), seconds, str(device))
            if not isinstance(exc, (RaynasError, RuntimeError, ValueError, ArithmeticError)):
                log.exception("metric %s raised an unexpected %s", spec.name, type(exc).__name__)
            return MetricResult(spec.name, None, "error", f"{type(exc).__name__}: {one_line(exc)}", seconds, str(device))
