"""MeCo: minimum eigenvalues of the feature-map correlation matrices of one random sample (Jiang et al., NeurIPS 2023)."""

from __future__ import annotations

import warnings

import torch
import torch.nn as nn

from raynas.data.batch import Batch
from raynas.errors import MetricError
from raynas.metrics._layers import run_hooked
from raynas.metrics.registry import register_metric

#: the authors' input: ONE standard-normal sample of 64 x 64 pixels, whatever the dataset
MECO_HW = 64


@register_metric(
    "meco",
    needs="nothing",
    needs_labels=False,
    needs_data=False,
    inputs="gaussian: ONE randn(1, C, 64, 64) sample, C the batch's channels (MeCo's code fixes 64x64)",
    higher_is_better=True,
    reference="Jiang, Wang, Bie. MeCo: Zero-Shot NAS with One Data and Single Forward Pass via Minimum Eigenvalue "
    "of Correlation. NeurIPS 2023; HamsterMimi/MeCo correlation/foresight/pruners/measures/meco.py",
)
def meco(model: nn.Module, batch: Batch) -> float:
    """``sum_m lambda_min(corr(F_m))`` over every module ``m`` of the network (the network itself included).

    ONE train-mode forward of a single sample ``randn(1, C, 64, 64)`` (drawn on the CPU generator, as the
    authors' code does, then moved to the batch's device; BN kept). Each module's output ``F_m`` for that sample
    is read as ``[channels, pixels]`` (its first element reshaped to ``[shape[0], -1]``); ``corr`` is
    ``torch.corrcoef`` of the channels with NaN/inf entries set to 0 (constant channels), and ``lambda_min`` the
    smallest real part of its ``torch.linalg.eig`` eigenvalues, computed when the module returns (before later
    in-place ops), as the authors' hooks do. NaN terms are dropped; the float32 terms are summed.
    """
    terms: list[torch.Tensor] = []

    def hook(_m: nn.Module, _i: tuple[torch.Tensor, ...], out: object) -> None:
        first = out[0] if isinstance(out, (torch.Tensor, tuple, list)) else None
        if not isinstance(first, torch.Tensor):
            raise MetricError(f"MeCo: module {type(_m).__name__} returned {type(out).__name__}")
        fea = first.detach()
        fea = fea.reshape(fea.shape[0], -1)
        with warnings.catch_warnings():  # one pixel per channel (a logit row): torch warns, the entries are NaN
            warnings.simplefilter("ignore", UserWarning)
            corr = torch.corrcoef(fea)
        corr[torch.isnan(corr)] = 0
        corr[torch.isinf(corr)] = 0
        terms.append(torch.min(torch.real(torch.linalg.eig(corr)[0])))

    # one sample of the batch's layout at MeCo's 64x64: [1, C, 64, 64]; a tiled sample (TransNAS-Bench-101's
    # jigsaw, inputs [B, T, C, H, W]) is [1, T, C, 64, 64], whose every tile passes the shared encoder
    x = torch.randn(size=(1, *batch.inputs.shape[1:-2], MECO_HW, MECO_HW))
    x = x.to(device=batch.inputs.device, dtype=batch.inputs.dtype)
    run_hooked(model, x, model.modules(), hook)
    if not terms:
        raise MetricError("MeCo: no module ran")
    t = torch.stack(terms).cpu()
    return float(t[~torch.isnan(t)].sum())
