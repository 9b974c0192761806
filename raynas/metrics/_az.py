"""AZ-NAS's shared pass: cell features of one Gaussian-input forward, and the three terms read off them.

AZ-NAS (Lee & Ham, CVPR 2024; cvlab-yonsei/AZ-NAS, NAS-Bench-201 folder, ``ZeroShotProxy/compute_az_nas_score.py``) scores a
network from the feature maps ``f_0`` (the stem's output) and ``f_1..f_L`` (each cell's output, reduction blocks
included) of ONE train-mode forward of a standard-normal input of the batch's shape, and from ``L`` backward
products through that forward's graph. :func:`az_terms` computes all three feature-based terms at once; the
metrics ``az_nas_expressivity``, ``az_nas_progressivity`` and ``az_nas_trainability`` each read one of them
(unfused: each recomputes the whole pass, with the same draws; fused: one pass for the three).

The network must expose ``stem`` (or ``stem1``) and ``cells`` (a sequence of modules), as NAS-Bench-201's and
DARTS's networks do (a DARTS cell also reads the feature before its input: its trainability term is the Jacobian
from the previous cell's output only); the features are recorded by forward hooks on those modules (the authors' ``extract_cell_features``
reads the same tensors). Random draws, in the authors' order, from the torch generator the engine seeded: the
authors' re-initialisation first (:func:`az_nas_terms`: ``init_model(model, "kaiming_norm_fanin")``, which their
``compute_nas_score`` applies inside the call, as VKDNW's and Zen-NAS's do), then the input ``randn(B, C, H, W)``,
then one ``bernoulli(0.5)`` sign tensor per feature pair, last pair first. :func:`az_terms` is the formula on the
weights it is given (the parity suite checks it on the fixture's weights); the metrics score
:func:`az_nas_terms`, the authors' whole pipeline (the parity suite checks it end to end against
``compute_nas_score``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from raynas.data.batch import Batch
from raynas.errors import MetricError
from raynas.metrics.vkdnw import kaiming_fan_in_init


#: the registration shared by the three feature terms (each module adds its name and its ``reduce``): one AZ pass
#: of the fused engine, a Gaussian input instead of the batch, the authors' file
AZ_FEATURE_METRIC: dict[str, object] = dict(
    needs="nothing",
    needs_labels=False,
    needs_data=False,
    inputs="gaussian: randn of the batch's shape (AZ-NAS's random input)",
    higher_is_better=True,
    pass_kind="az",
    uses=("az",),
    reference="Lee, Ham. AZ-NAS: Assembling Zero-Cost Proxies for Network Architecture Search. CVPR 2024; "
    "cvlab-yonsei/AZ-NAS (NAS-Bench-201 folder) ZeroShotProxy/compute_az_nas_score.py (compute_nas_score, its Kaiming "
    "re-initialisation included)",
)


@dataclass(frozen=True)
class AZTerms:
    """The three feature terms (0-dim float64 tensors; non-finite where the reference gives NaN or -inf)."""

    expressivity: torch.Tensor
    progressivity: torch.Tensor
    trainability: torch.Tensor


def cell_modules(model: nn.Module) -> list[nn.Module]:
    """``[model.stem, *model.cells]`` (``stem1``, the last stem, for DARTS's two-stem ImageNet network);
    :class:`MetricError` for a network without that structure."""
    stem, cells = getattr(model, "stem", getattr(model, "stem1", None)), getattr(model, "cells", None)
    if not isinstance(stem, nn.Module) or not isinstance(cells, (nn.Sequential, nn.ModuleList)) or len(cells) < 1:
        raise MetricError(f"AZ-NAS needs a network with a `stem` module and a `cells` sequence of modules; "
                          f"{type(model).__name__} has none")
    return [stem, *cells]


def cell_features(model: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """The outputs of the stem and of every cell in one forward of ``x`` (graph kept)."""
    feats: list[torch.Tensor] = []

    def keep(_m: nn.Module, _i: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        if not isinstance(out, torch.Tensor) or out.dim() != 4:
            raise MetricError(f"AZ-NAS: a cell returned {type(out).__name__}, expected a [B, C, H, W] tensor")
        feats.append(out)

    handles = [m.register_forward_hook(keep) for m in cell_modules(model)]
    try:
        model(x)
    finally:
        for h in handles:
            h.remove()
    if len(feats) < 2:
        raise MetricError(f"AZ-NAS: {len(feats)} cell feature(s) recorded, needs at least 2")
    return feats


def gaussian_input(batch: Batch) -> torch.Tensor:
    """AZ-NAS's input: ``randn`` of the batch's shape (its values are not used), on the batch's device."""
    return torch.randn(tuple(batch.inputs.shape), device=batch.inputs.device, dtype=batch.inputs.dtype)


def _entropy_of_spectrum(feat: torch.Tensor) -> torch.Tensor:
    """Entropy of the normalised eigenvalues of the channel covariance of ``feat`` ``[B, C, H, W]`` (float32)."""
    b, c, h, w = feat.shape
    f = feat.detach().permute(0, 2, 3, 1).reshape(b * h * w, c)
    f = f - f.mean(dim=0, keepdim=True)
    sigma = f.t() @ f / f.shape[0]
    s = torch.linalg.eigvalsh(sigma)
    p = s / s.sum()
    return (-p * torch.log(p + 1e-8)).sum()


def _trainability_pair(f_out: torch.Tensor, f_in: torch.Tensor) -> torch.Tensor:
    """``-s - 1/(s + 1e-6) + 2`` of the largest singular value ``s`` of the sign-probed Jacobian ``f_in -> f_out``;
    ``-inf`` where the cell passes the probe through unchanged (an identity cell)."""
    g_out = (torch.bernoulli(torch.full_like(f_out, 0.5)) - 0.5) * 2
    # the graph is freed as the pairs go (the authors' retain_graph=False; x1.1 faster): pairs run from the last cell
    # to the first, and each backward only runs the nodes between f_in and f_out, which no later pair needs
    (g_in,) = torch.autograd.grad(f_out, f_in, grad_outputs=g_out, retain_graph=False)
    if g_out.shape == g_in.shape and bool(torch.all(g_in == g_out)):
        return torch.tensor(-math.inf, dtype=torch.float64, device=f_out.device)
    if g_out.shape[2:] != g_in.shape[2:]:
        g_in = F.pixel_unshuffle(g_in, int(g_in.shape[2] / g_out.shape[2]))
    bo, co, ho, wo = g_out.shape
    ci = g_in.shape[1]
    go = g_out.permute(0, 2, 3, 1).reshape(bo * ho * wo, co)
    gi = g_in.permute(0, 2, 3, 1).reshape(-1, ci)
    mat = gi.t() @ go / (bo * ho * wo)
    if mat.shape[0] < mat.shape[1]:
        mat = mat.t()
    smax = torch.linalg.svdvals(mat).max().to(torch.float64)
    return -smax - 1 / (smax + 1e-6) + 2


def az_terms(model: nn.Module, batch: Batch) -> AZTerms:
    """Expressivity, progressivity and trainability of ``model`` (train mode) as the authors compute them.

    * expressivity ``sum_l H_l``, ``H_l`` the entropy of the normalised eigenvalue spectrum of the channel
      covariance of ``f_l`` (pixels and samples as observations, float32 ``eigvalsh``, ``p log(p + 1e-8)``);
    * progressivity ``min_l (H_l - H_{l-1})``;
    * trainability: the mean over ``l = L..1`` of ``-s_l - 1/(s_l + 1e-6) + 2``, ``s_l`` the largest singular
      value of ``E[g_in g_out^T]`` with ``g_out`` a random +-1 probe of ``f_l`` and ``g_in`` its vector-Jacobian
      product at ``f_{l-1}`` (pixel-unshuffled where the cell downsamples); an identity cell scores ``-inf``.
    """
    # the input requires grad so that a stem-less network's first feature (the input itself) is differentiable
    feats = cell_features(model, gaussian_input(batch).requires_grad_(True))
    h = torch.stack([_entropy_of_spectrum(f) for f in feats]).to(torch.float64)
    # the reference sums in numpy float64 over float32 item() values: the same numbers
    expressivity = h.sum()
    progressivity = (h[1:] - h[:-1]).min()
    scores = [_trainability_pair(feats[i], feats[i - 1]) for i in reversed(range(1, len(feats)))]
    trainability = torch.stack(scores).mean()
    return AZTerms(expressivity, progressivity, trainability)


def az_nas_terms(model: nn.Module, batch: Batch) -> AZTerms:
    """AZ-NAS's terms as the authors' ``compute_nas_score`` computes them: the network re-initialised in place
    (``init_model(model, "kaiming_norm_fanin")``: Conv2d/Linear weights Kaiming-normal fan-in, biases 0, affine BN
    weights 1 and biases 0; the same function as VKDNW's, :func:`raynas.metrics.vkdnw.kaiming_fan_in_init`), then
    :func:`az_terms`.

    Why inside the metric: the terms depend on the weights' scale (the trainability term's largest singular value
    is ~1 only at a Kaiming scale), and the authors score every network at that scale whatever its own
    initialisation; scoring the space's initialisation instead moved the terms by 0.25-7.5 % (expressivity) and
    4-14 % (trainability) on NAS-Bench-201 networks, and progressivity's sign (issue 32).

    Args:
        model: a private copy (it is re-initialised), train mode, with ``stem`` and ``cells``.
        batch: only its inputs' shape, dtype and device are read.
    Returns:
        the three terms (0-dim float64 tensors).
    """
    kaiming_fan_in_init(model)  # draws from the generator the engine seeded, before the Gaussian input
    return az_terms(model, batch)
