"""AZ-NAS complexity: the network's FLOPs as the NAS-Bench-201 API counts them (AZ-NAS's fourth term)."""

from __future__ import annotations

import torch
import torch.nn as nn

from raynas.data.batch import Batch
from raynas.metrics._layers import run_hooked, weight_layers
from raynas.metrics.registry import register_metric


@register_metric(
    "az_nas_complexity",
    needs="nothing",
    needs_labels=False,
    needs_data=False,
    inputs="zeros: one sample of the batch's shape (a count)",
    mode="eval",  # one-sample forward (train-mode BN may refuse a single value per channel)
    higher_is_better=True,
    reference="Lee, Ham. AZ-NAS. CVPR 2024 (complexity s^C = the API's FLOPs); counted as D-X-Y's "
    "xautodl/utils/flop_benchmark.py get_model_infos (in the NAS-Bench-201 folder of cvlab-yonsei/AZ-NAS)",
)
def az_nas_complexity(model: nn.Module, batch: Batch) -> float:
    """MFLOPs of one sample of the batch's shape, counted as NAS-Bench-201's ``get_model_infos``: every Conv2d call
    costs ``C_out*H_out*W_out*(C_in/groups)*kh*kw`` plus ``C_out*H_out*W_out`` with a bias, every Linear call
    ``in*out`` plus ``out`` with a bias; BN, activations and pooling are not counted; the total is divided by 1e6.

    AZ-NAS's complexity term ``s^C`` is the API's ``flops`` of the architecture; this is the same count on the
    network being scored (raynas's ``flops`` is the same without the bias terms and in units of one).
    """
    total = [0.0]

    def count(module: nn.Module, _inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        if isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            positions = output.shape[0] * output.shape[2] * output.shape[3]
            total[0] += kh * kw * module.in_channels * module.out_channels / module.groups * positions
            if module.bias is not None:
                total[0] += module.out_channels * positions
        else:  # nn.Linear on [1, in]
            total[0] += output.shape[0] * module.in_features * module.out_features
            if module.bias is not None:
                total[0] += output.shape[0] * module.out_features

    x = torch.zeros((1, *batch.inputs.shape[1:]), dtype=batch.inputs.dtype, device=batch.inputs.device)
    run_hooked(model, x, weight_layers(model), count)
    return total[0] / 1e6
