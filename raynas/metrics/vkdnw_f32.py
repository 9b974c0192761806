"""vkdnw_f32: :mod:`raynas.metrics.vkdnw` in float32, as VKDNW's authors ran it (Tybl & Neumann, CVPR 2025)."""

from __future__ import annotations

import torch
from torch import nn

from raynas.data.batch import Batch
from raynas.metrics.registry import register_metric
from raynas.metrics.vkdnw import REFERENCE, fisher_entropy


@register_metric(
    "vkdnw_f32",
    variant_of="vkdnw",  # a raynas-only diagnostic twin: opt-in (group "diagnostic"), not in "all"
    needs="labels", needs_why="the Fisher information of the softmax over K classes (per-class Jacobians)",
    needs_labels=False,
    needs_data=True,
    bn="keep",
    mode="eval",
    dtype=torch.float32,
    higher_is_better=True,
    reference=REFERENCE + "; float32, as the authors ran it",
)
def vkdnw_f32(model: nn.Module, batch: Batch) -> float:
    """:func:`vkdnw` in float32, as the authors' code runs it: their published numbers' precision.

    Which reference it matches: ``compute_vkdnw_score.py`` (NAS-Bench-201 folder, ``p=1``,
    ``params_grad_len=128``) run as released, in float32; equal to it on the parity fixture on ONE CPU thread.
    Why a separate metric: the entropy reads the deciles of the Fisher spectrum, whose small singular values are
    float32 rounding noise; the value therefore depends on the summation order (2e-5 relative between one and two
    threads, up to a factor 2 against float64 on DARTS networks), i.e. on the thread count and device. Use it to
    reproduce the authors' float32 numbers; ``vkdnw`` (float64) is the resolved value of the same definition.

    The Jacobian is taken as ``vkdnw`` takes it (:func:`raynas.metrics.vkdnw.fisher_jacobian`): from K - 1 per-class
    backward passes of the batch where that is exact (the last class's row is read through a zero column of the
    Cholesky factor; BatchNorm2d scales folded into the convolutions' backward), not by the authors'
    ``vmap(jacrev)`` over samples. Why its float32 value differs from the authors' float32 code: the two
    constructions sum the same products in another order (and multiply the BatchNorm scale into the weight instead
    of the gradient): each Jacobian stands from the float64 one by float32 rounding (measured 2e-7..5e-7 of its
    largest entry, both alike, and 1e-7..4e-7 from each other on NAS-Bench-201 and DARTS networks;
    ``tests/metrics/test_vkdnw_fast.py``), and the value moves within what float32 resolves of the deciles (their
    small singular values are rounding noise, as between one and two threads; ``scripts/bench_vkdnw.py``: 8.5e-5
    and 2.3e-5 relative on two NAS-Bench-201 networks, where the float32 value itself is 6e-2..3e-1 off float64),
    not beyond. Where the per-class path does not apply the authors' construction runs, as before.

    Args:
        model: the network, cast to float32 and in eval mode by the engine.
        batch: ``inputs`` ``[B, C, H, W]`` in float32; labels unused.

    Returns:
        The entropy of the float32 Fisher spectrum's deciles, ``nan`` where it is not finite.
    """
    return fisher_entropy(model, batch)
