"""zen: Zen-NAS's Zen-score, the log expected feature change under a small Gaussian input perturbation."""

from __future__ import annotations

import math

import torch
from torch import nn

from raynas.data.batch import Batch
from raynas.errors import MetricError
from raynas.metrics._layers import init_in_logical_order
from raynas.metrics.registry import register_metric

#: the perturbation scale ``alpha`` of the mixed input ``x1 + alpha * x2`` (Zen-NAS's ``mixup_gamma``)
MIXUP_GAMMA = 1e-2


def gaussian_init(model: nn.Module) -> None:
    """Zen-NAS's ``network_weight_gaussian_init`` in place: Conv2d/Linear weights ``N(0, 1)`` and biases 0,
    BatchNorm2d/GroupNorm weights 1 and biases 0 (skipped for a non-affine norm, as NASLib's copy does), in
    ``model.modules()`` order (so the draws follow the reference's order under the same seed)."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                init_in_logical_order(m.weight, nn.init.normal_)  # same draws in any memory format
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                if m.weight is None:
                    continue
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                init_in_logical_order(m.weight, nn.init.normal_)  # same draws in any memory format
                if m.bias is not None:
                    nn.init.zeros_(m.bias)


def global_pool(model: nn.Module) -> nn.Module:
    """The module whose input is the feature map Zen-NAS reads: the network's global average pool (the last
    ``AdaptiveAvgPool2d`` to size 1, Zen-NAS's ``forward_pre_GAP``) or, for a network without one (a dense
    decoder: TransNAS-Bench-101's segmentation and image decoders), its last ``Conv2d``, as NASLib's
    ``forward_before_global_avg_pool`` falls back to the input of the decoder's last conv for those tasks
    (``transbench101/graph.py`` ``_forward_before_last_conv``)."""
    pools = [m for m in model.modules() if isinstance(m, nn.AdaptiveAvgPool2d) and m.output_size in (1, (1, 1))]
    if pools:
        return pools[-1]
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise MetricError(f"{type(model).__name__} has no global average pool (AdaptiveAvgPool2d(1)) and no Conv2d "
                          "to read the features of")
    return convs[-1]


def pre_gap_features(model: nn.Module, x: torch.Tensor, pool: nn.Module) -> torch.Tensor:
    """The input of ``pool`` during ``model(x)`` (the whole forward runs; nothing after the pool has BN)."""
    seen: list[torch.Tensor] = []
    handle = pool.register_forward_pre_hook(lambda _m, args: seen.append(args[0]))
    try:
        model(x)
    finally:
        handle.remove()
    if len(seen) != 1 or seen[0].dim() != 4:
        raise MetricError(f"the feature module ran {len(seen)} times (expected once on a [B, C, H, W] map)")
    return seen[0]


@register_metric(
    "zen",
    needs="nothing",
    needs_labels=False,
    needs_data=False,  # Gaussian inputs of the batch's shape, drawn under the engine's seed
    bn="keep",
    mode="train",
    higher_is_better=True,
    reference="Lin, Wang, Sun, Chen, Sun, Qian, Li, Jin. Zen-NAS: A Zero-Shot NAS for High-Performance Image "
    "Recognition. ICCV 2021; idstcv/ZenNAS ZeroShotProxy/compute_zen_score.py",
)
def zen(model: nn.Module, batch: Batch) -> float:
    """``log E_x ||f(x1) - f(x1 + 0.01 x2)||_1 + sum_BN log sqrt(mean(running_var))`` (Zen-score, repeat 1).

    Exactly Zen-NAS's ``compute_nas_score`` with ``repeat=1`` (the NAS-Bench-201 setting of NASLib's and AZ-NAS's /
    VKDNW's copies): on the engine's private copy, in train mode, without gradients,

    1. the weights are re-initialised Gaussian (:func:`gaussian_init`: part of the score's definition, so the
       network's own initialisation does not matter);
    2. ``x1, x2 ~ N(0, 1)`` of the batch's shape ``[B, C, H, W]`` (the batch's values and labels are not used;
       drawn after the re-initialisation from the torch RNG the engine seeds with its seed);
    3. ``f`` is the feature map entering the global average pool (without one: the last conv, see
       :func:`global_pool`), computed for ``x1`` and
       then for ``x1 + 0.01 x2``; ``Delta = mean_b sum_{c,h,w} |f(x1) - f(x1 + 0.01 x2)|``;
    4. the score is ``log(Delta)`` plus, for every ``BatchNorm2d``, ``log(sqrt(mean(running_var)))`` read after
       the two train-mode forwards (each updated the running variance with the BN's momentum, as in the
       reference).

    Registered ``needs_data=False``: the metric makes its own Gaussian input. A dead network (features that do
    not depend on the input, ``Delta = 0``) gives ``log 0``: status ``nan``, never a number. A BatchNorm2d
    without running statistics (``track_running_stats=False``, e.g. the cells of ``network=zero_cost_nas``)
    has no variance to read: an error, as the reference fails there.
    """
    pool = global_pool(model)
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    if any(m.running_var is None for m in bns):
        raise MetricError("zen reads every BatchNorm2d's running variance; this network has a BatchNorm2d "
                          "without running statistics (track_running_stats=False)")
    x = batch.inputs
    with torch.no_grad():
        gaussian_init(model)
        x1 = torch.randn(size=list(x.shape), device=x.device, dtype=x.dtype)
        x2 = torch.randn(size=list(x.shape), device=x.device, dtype=x.dtype)
        mixed = x1 + MIXUP_GAMMA * x2
        out = pre_gap_features(model, x1, pool)
        out_mixed = pre_gap_features(model, mixed, pool)
        delta = torch.sum(torch.abs(out - out_mixed), dim=[1, 2, 3]).mean()
        score = torch.log(delta)
        log_bn = torch.zeros((), dtype=score.dtype, device=score.device)
        for m in bns:  # summed in the network's dtype, in module order, as the reference sums them
            log_bn = log_bn + torch.log(torch.sqrt(torch.mean(m.running_var)))
        value = float(score + log_bn)
    return value if math.isfinite(value) else float("nan")
