"""FLOPs proxy: multiply-accumulates of the Conv2d and Linear layers for one input sample."""

from __future__ import annotations

import torch
import torch.nn as nn

from raynas.data.batch import Batch
from raynas.metrics._layers import run_hooked, weight_layers
from raynas.metrics.registry import register_metric


@register_metric(
    "flops",
    needs="nothing",
    needs_labels=False,
    needs_data=False,
    # eval: a single-sample forward through BatchNorm in train mode can fail ("more than 1 value per channel")
    mode="eval",
    higher_is_better=True,
    reference="Abdelfattah, Mehrotra, Dudziak, Lane. Zero-Cost Proxies for Lightweight NAS. ICLR 2021 (baseline)",
)
def flops(model: nn.Module, batch: Batch) -> float:
    """Multiply-accumulate count (MACs) of every Conv2d/Linear call for ONE sample of shape ``batch.inputs[0]``.

    One forward pass of a zero tensor ``[1, C, H, W]`` (only the batch's shape is used) with forward hooks:
    a Conv2d call with output ``[1, C_out, H_out, W_out]`` costs ``C_out*H_out*W_out*(C_in/groups)*kh*kw``;
    a Linear call costs ``in_features * out_features`` per output row (times the number of rows for inputs
    with extra dimensions). Biases, BN, activations and pooling are not counted. A module called twice is
    counted twice. Returns the raw count as a float.

    Other counters, for comparison with published tables: NAS-Bench-201's own ``flops`` is this count plus the
    classifier bias (10 on CIFAR-10); NAS-Bench-Suite-Zero's (NASLib's) also counts BN, ReLU and pooling, and
    equals ``this / 1e6 + 0.160832 + 0.43008 n_conv + 1.29024 n_avg_pool`` MFLOPs on all 725 of its NAS-Bench-201
    archs (``n_*``: cell edges with a 1x1/3x3 conv, with an average pool; C=16, N=5, 32x32). Ranks are
    nearly the same; neither offset is registered as a metric of its own.
    """
    total = [0]

    def count(module: nn.Module, _inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        if isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            per_output = (module.in_channels // module.groups) * kh * kw
        else:  # nn.Linear: output [..., out_features]
            per_output = module.in_features
        total[0] += output.numel() * per_output

    x = torch.zeros((1, *batch.inputs.shape[1:]), dtype=batch.inputs.dtype, device=batch.inputs.device)
    run_hooked(model, x, weight_layers(model), count)
    return float(total[0])
