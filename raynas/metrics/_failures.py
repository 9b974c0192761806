"""How the metric engines recognise and record failures: out-of-memory errors, one-line messages, batch notes.

Shared by the unfused path (:mod:`raynas.metrics._single`), the fused engine (:mod:`raynas.metrics.fused`) and
the NTK helpers (:mod:`raynas.metrics._ntk`, which retries smaller gradient chunks on OOM), so none of them
imports another's internals and the metric modules import no engine.
"""

from __future__ import annotations

import torch

from raynas.errors import one_line as errors_one_line


def is_oom(exc: BaseException) -> bool:
    """True for CUDA/MPS out-of-memory errors, matched by type where torch has one."""
    oom_type = getattr(torch.cuda, "OutOfMemoryError", None)
    if oom_type is not None and isinstance(exc, oom_type):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc)


def oom_note(used: int, requested: int) -> str:
    """The note stored with an ``ok`` value computed on a batch halved after out-of-memory errors: batch-size
    dependent metrics (naswot, jacob_cov, NTK conditions) are then not comparable with full-batch values."""
    return f"computed on batch {used} of {requested} after out-of-memory" if used != requested else ""


def one_line(exc: BaseException) -> str:
    """The first line of ``exc``'s message (at most 500 characters; the type name when empty): a result row's
    ``error`` column holds one line per failure."""
    return errors_one_line(exc, 500)


def free_device_memory(device: torch.device) -> None:
    """Return cached CUDA blocks after an out-of-memory error, so the retry on a halved batch can allocate."""
    if device.type == "cuda":
        torch.cuda.empty_cache()
