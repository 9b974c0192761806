"""Runs registered metrics on one architecture: the only caller of metric functions.

The engine owns every side effect so metric functions stay pure: a fresh copy of the initialised model per
metric (metrics mutate weights, grads, BN stats), BN removal, dtype, device, seeding, timing, NaN/inf
detection and GPU out-of-memory handling (retry on a halved batch, then a recorded ``oom`` status).
A metric failure never raises out of :func:`compute_metrics`: it becomes a row with a status.

``compute_metrics(..., fused=True)`` hands the same work to :mod:`raynas.metrics.fused`, which shares one
forward/backward between the metrics that read the same quantities (same values, same statuses).
"""

from __future__ import annotations

import copy
import logging
import math
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import torch
import torch.nn as nn

from raynas.data.batch import Batch
from raynas.errors import NonFiniteError, RaynasError
from raynas.metrics.registry import MetricSpec, get_metric

log = logging.getLogger(__name__)

#: statuses a metric result can carry
STATUSES = ("ok", "nan", "error", "oom")

ModelFactory = Callable[[], nn.Module]


@dataclass(frozen=True)
class MetricResult:
    """Outcome of one metric on one architecture. ``value`` is None unless ``status == "ok"``."""

    metric: str
    value: float | None
    status: str
    error: str
    seconds: float
    device: str


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


def is_oom(exc: BaseException) -> bool:
    """True for CUDA/MPS out-of-memory errors, matched by type where torch has one."""
    oom_type = getattr(torch.cuda, "OutOfMemoryError", None)
    if oom_type is not None and isinstance(exc, oom_type):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc)


def run_metric(
    spec: MetricSpec,
    base: nn.Module,
    batch: Batch,
    *,
    device: torch.device,
    seed: int,
    min_batch: int = 2,
) -> MetricResult:
    """Compute one metric; never raises for metric-level failures (returns a result with a status)."""
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
                _free_device_memory(device)
                if sub.size // 2 >= min_batch:
                    log.warning("%s: out of memory at batch %d, retrying with %d", spec.name, sub.size, sub.size // 2)
                    sub = sub.head(sub.size // 2)
                    continue
                return MetricResult(spec.name, None, "oom", _one_line(exc), seconds, str(device))
            if isinstance(exc, NonFiniteError):  # scored, but the value is not a number (e.g. diverged training)
                return MetricResult(spec.name, None, "nan", _one_line(exc), seconds, str(device))
            if not isinstance(exc, (RaynasError, RuntimeError, ValueError, ArithmeticError)):
                log.exception("metric %s raised an unexpected %s", spec.name, type(exc).__name__)
            return MetricResult(spec.name, None, "error", f"{type(exc).__name__}: {_one_line(exc)}", seconds, str(device))


def compute_metrics(
    model_factory: ModelFactory,
    batch: Batch,
    names: Sequence[str],
    *,
    device: torch.device | str = "cpu",
    seed: int = 0,
    thin_factory: ModelFactory | None = None,
    fused: bool = False,
    channels_last: bool = False,
    allow_tf32: bool = False,
) -> list[MetricResult]:
    """Score one architecture with every metric in ``names``.

    Args:
        model_factory: builds the freshly initialised network (called once, under ``seed``).
        batch: the fixed input batch (any device; moved as needed).
        names: registered metric names; unknown names raise :class:`UnknownNameError` up front.
        device: where to compute.
        seed: seeds model init and every metric's randomness, so results are reproducible.
        thin_factory: builds the space's thin proxy network for metrics registered with ``thin_model=True``
            (without it they use the full network).
        fused: share one forward/backward between the metrics that can (:mod:`raynas.metrics.fused`); same
            values within float tolerance, several times faster for gradient-metric sets. Off by default.
        channels_last: put the network's 4-d weights and the inputs in ``torch.channels_last`` memory format
            (faster convolutions on recent GPUs; values equal up to float rounding). Off by default.
        allow_tf32: let CUDA matmuls and cuDNN convolutions use TF32 during the call (faster on Ampere+, about
            3 significant digits); the previous flags are restored afterwards. Off by default: the process's
            flags are left as they are.
    Returns:
        one :class:`MetricResult` per name, in order.
    """
    specs = [get_metric(n) for n in names]
    device = torch.device(device)
    with _tf32(allow_tf32):
        torch.manual_seed(seed)
        base = model_factory()
        thin = None
        failed: dict[str, MetricResult] = {}
        if thin_factory is not None and any(s.thin_model for s in specs):
            torch.manual_seed(seed)
            try:
                thin = thin_factory()
            except Exception as exc:  # noqa: BLE001 - only the thin-network metrics fail; the others go on
                msg = f"thin network cannot be built: {type(exc).__name__}: {_one_line(exc)}"
                failed = {s.name: MetricResult(s.name, None, "error", msg, 0.0, str(device)) for s in specs
                          if s.thin_model}
        todo = [s for s in specs if s.name not in failed]
        if fused:
            from raynas.metrics.fused import run_fused

            done = run_fused(todo, base, batch, device=device, seed=seed, thin=thin, channels_last=channels_last)
        else:
            if channels_last:  # copies keep the memory format (deepcopy clones preserve strides)
                base = base.to(memory_format=torch.channels_last)
                thin = thin.to(memory_format=torch.channels_last) if thin is not None else None
                batch = Batch(batch.inputs.contiguous(memory_format=torch.channels_last), batch.labels,
                              batch.num_classes, batch.name)
            done = [
                run_metric(s, thin if (s.thin_model and thin is not None) else base, batch, device=device, seed=seed)
                for s in todo
            ]
    by_name = {r.metric: r for r in done} | failed
    return [by_name[s.name] for s in specs]


@contextmanager
def _tf32(enabled: bool) -> Iterator[None]:
    """TF32 for CUDA matmuls and cuDNN while active (when ``enabled``); the flags are restored after."""
    if not enabled:
        yield
        return
    old = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


def oom_note(used: int, requested: int) -> str:
    """The note stored with an ``ok`` value computed on a batch halved after out-of-memory errors: batch-size
    dependent metrics (naswot, jacob_cov, NTK conditions) are then not comparable with full-batch values."""
    return f"computed on batch {used} of {requested} after out-of-memory" if used != requested else ""


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:500] if text else type(exc).__name__


def _free_device_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
