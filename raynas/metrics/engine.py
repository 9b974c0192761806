"""Runs registered metrics on one architecture: the only caller of metric functions.

The engine owns every side effect so metric functions stay pure: a fresh copy of the initialised model per
metric (metrics mutate weights, grads, BN stats), BN removal, dtype, device, seeding, timing, NaN/inf
detection and GPU out-of-memory handling (retry on a halved batch, then a recorded ``oom`` status).
A metric failure never raises out of :func:`compute_metrics`: it becomes a row with a status.

``compute_metrics(..., fused=True)`` hands the same work to :mod:`raynas.metrics.fused`, which shares one
forward/backward between the metrics that read the same quantities (same values, same statuses).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator, Sequence

import torch
import torch.nn as nn

from raynas.data.batch import Batch
from raynas.metrics._failures import is_oom, one_line, oom_note
from raynas.metrics._single import STATUSES, MetricResult, prepare_model, remove_batchnorm, run_metric
from raynas.metrics.fused import run_fused
from raynas.metrics.registry import get_metric

#: the engine's public names; the unfused path and the failure helpers live below both engines
#: (:mod:`raynas.metrics._single`, :mod:`raynas.metrics._failures`) so that :mod:`raynas.metrics.fused` needs
#: nothing from this module
__all__ = ["STATUSES", "MetricResult", "MetricCallback", "ModelFactory", "compute_metrics", "is_oom", "oom_note", "prepare_model",
           "remove_batchnorm", "run_metric"]

ModelFactory = Callable[[], nn.Module]

#: ``on_metric(names, done, total)``: called as each unit of work of one arch starts: ``names`` the metric(s) it
#: computes (one, or every metric of a shared pass of the fused engine), ``done`` how many of the arch's ``total``
#: metrics are finished before it
MetricCallback = Callable[[tuple[str, ...], int, int], None]


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
    on_metric: MetricCallback | None = None,
) -> list[MetricResult]:
    """Score one architecture with every metric in ``names``.

    Args:
        model_factory: builds the freshly initialised network (called once, under ``seed``).
        batch: the fixed input batch (any device; moved as needed) with its task (:attr:`Batch.task`): the
            loss-based metrics differentiate that task's loss, and a metric that needs class labels gets a
            ``not_applicable`` result on a batch of another task (never an error).
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
        on_metric: progress inside the arch (:data:`MetricCallback`), e.g. the metric a progress bar shows while
            a slow arch is scored; it only reports, its return value is ignored.
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
                msg = f"thin network cannot be built: {type(exc).__name__}: {one_line(exc)}"
                failed = {s.name: MetricResult(s.name, None, "error", msg, 0.0, str(device)) for s in specs
                          if s.thin_model}
        todo = [s for s in specs if s.name not in failed]
        if fused:
            done = run_fused(todo, base, batch, device=device, seed=seed, thin=thin, channels_last=channels_last,
                             on_metric=_offset(on_metric, len(failed), len(specs)))
        else:
            if channels_last:  # copies keep the memory format (deepcopy clones preserve strides)
                base = base.to(memory_format=torch.channels_last)
                thin = thin.to(memory_format=torch.channels_last) if thin is not None else None
                batch = batch.with_inputs(batch.inputs.contiguous(memory_format=torch.channels_last))
            done = []
            for k, s in enumerate(todo):
                if on_metric is not None:
                    on_metric((s.name,), len(failed) + k, len(specs))
                done.append(run_metric(s, thin if (s.thin_model and thin is not None) else base, batch,
                                       device=device, seed=seed))
    by_name = {r.metric: r for r in done} | failed
    return [by_name[s.name] for s in specs]


def _offset(on_metric: MetricCallback | None, failed: int, total: int) -> MetricCallback | None:
    """``on_metric`` for the fused engine's ``len(todo)`` metrics, counted among the arch's ``total`` (the
    ``failed`` thin-network metrics are finished before any pass)."""
    if on_metric is None:
        return None
    return lambda names, done, _n: on_metric(names, failed + done, total)


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
