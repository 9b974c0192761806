"""linear_regions (TE-NAS): distinct activation patterns over 3 x 1000 one-channel 3x3 crops of the batch."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from raynas.data.batch import Batch
from raynas.metrics._codes import activation_codes
from raynas.metrics._regions import region_inputs
from raynas.metrics.engine import compute_metrics
from raynas.metrics.linear_regions import linear_regions
from raynas.metrics.registry import get_metric
from raynas.testing import threshold_net, tiny_bn_convnet


def images(seed: int = 0) -> torch.Tensor:
    return torch.randn(6, 3, 8, 8, generator=torch.Generator().manual_seed(seed))


def test_inputs_are_crops_of_the_batch_images() -> None:
    # a net whose one unit thresholds the top-left pixel at 0: 2 patterns for random images, 1 for constant ones
    net = threshold_net(9, [0.0], [0])
    torch.manual_seed(0)
    assert linear_regions(net, Batch(images(), torch.zeros(6, dtype=torch.long), 2)) == 2
    constant = torch.full((6, 3, 8, 8), 0.7)
    assert linear_regions(net, Batch(constant, torch.zeros(6, dtype=torch.long), 2)) == 1
    x = region_inputs("crops", 3000, 1, torch.initial_seed(), images())
    assert x.shape == (3000, 1, 3, 3)
    flat = images().reshape(-1)
    assert all(bool((flat == v).any()) for v in x[:20, 0, 0, 0])  # every value comes from an image


def test_three_forwards_of_1000_and_the_brute_force_count() -> None:
    torch.manual_seed(4)
    model = tiny_bn_convnet(1, 3, width=16)  # one input channel, as the thin network
    sizes: list[int] = []
    model.register_forward_pre_hook(lambda m, a: sizes.append(a[0].shape[0]))
    batch = Batch(images(), torch.zeros(6, dtype=torch.long), 3)
    seed = 11
    torch.manual_seed(seed)
    value = linear_regions(model, batch)
    assert sizes == [1000, 1000, 1000]
    x = region_inputs("crops", 3000, 1, seed, batch.inputs)
    patterns = {tuple(r) for chunk in x.split(1000) for r in activation_codes(model, chunk).to(torch.uint8).tolist()}
    assert value == len(patterns) and 1000 < value <= 3000  # the cap is 3,000, not 1,000


def test_engine_counts_on_the_spaces_thin_network() -> None:
    from raynas.spaces import create_space

    space = create_space("nb201")
    arch = space.index_to_arch(6111)
    batch = Batch(torch.randn(8, 3, 32, 32, generator=torch.Generator().manual_seed(1)), torch.arange(8) % 3, 3)
    (r,) = compute_metrics(lambda: space.to_module(arch, 3), batch, ["linear_regions"], seed=0,
                           thin_factory=lambda: space.to_module(arch, 3, **space.thin_kwargs()))
    thin = space.to_module(arch, 3, **space.thin_kwargs())
    assert r.status == "ok" and 1 <= r.value <= 3000
    assert next(m for m in thin.modules() if isinstance(m, nn.Conv2d)).in_channels == 1  # no stem: 1 channel


def test_spec() -> None:
    spec = get_metric("linear_regions")
    assert spec.needs_data and not spec.needs_labels and spec.higher_is_better and spec.thin_model
    assert "TENAS" in spec.reference


@pytest.mark.parametrize("name", ["linear_regions", "linear_regions_gaussian"])
def test_both_counts_are_registered_thin_metrics(name: str) -> None:
    assert get_metric(name).thin_model
