"""l2_norm: sum of the Frobenius norms of the Conv2d/Linear weights (NAS-Bench-Suite-Zero's ``l2_norm``)."""

from __future__ import annotations

import torch
from torch import nn

from raynas.data.batch import Batch
from raynas.errors import MetricError
from raynas.metrics._layers import weight_layers
from raynas.metrics.registry import register_metric


@register_metric(
    "l2_norm",
    needs="nothing",
    needs_labels=False,
    needs_data=False,
    mode="eval",
    higher_is_better=True,
    reference="Krishnakumar, White, Zela, Tu, Safari, Hutter. NAS-Bench-Suite-Zero: Accelerating Research on "
    "Zero Cost Proxies. NeurIPS 2022 Datasets and Benchmarks; automl/NASLib "
    "naslib/predictors/utils/pruners/measures/l2_norm.py",
)
def l2_norm(model: nn.Module, batch: Batch) -> float:
    """``sum_l ||W_l||_F`` over the ``.weight`` of every Conv2d/Linear module, as the network was initialised.

    NASLib's ``get_l2_norm_array`` (``copy_net=False``, ``mode="param"``) takes ``layer.weight.norm()`` of every
    ``nn.Conv2d``/``nn.Linear`` in ``net.modules()`` order and ``find_measures`` sums the list; frozen weights
    count too (no gradient is taken). Biases, BatchNorm parameters and other parameters are excluded. No input,
    no labels: a property of the initialisation (data-free). A network without any Conv2d/Linear layer is an
    error, not 0.

    Cost (issue 32): the norms take about 2 ms on NAS-Bench-201 at C=16, N=5; through the engine the metric costs the
    engine's private copy of the network (about 0.05-0.1 s on one loaded CPU thread), which every metric outside a
    shared pass gets so that none can modify the network another reads. NASLib's function reads the network it is
    given, hence its x0.04 in ``scripts/bench_metric_cost.py``; in ``--metrics all`` the copy is a few hundredths
    of a percent of the arch's time.
    """
    layers = weight_layers(model)
    if not layers:
        raise MetricError(f"{type(model).__name__} has no Conv2d/Linear layers to score")
    with torch.no_grad():
        return float(sum(m.weight.norm() for m in layers))
