"""linear_regions_gaussian: distinct activation patterns over 1000 seeded Gaussian 3x3 inputs."""

from __future__ import annotations

import pytest
import torch

from raynas.data.batch import Batch
from raynas.metrics._codes import activation_codes
from raynas.metrics.linear_regions_gaussian import N_SAMPLES, gaussian_inputs
from raynas.metrics.linear_regions_gaussian import linear_regions_gaussian as linear_regions
from raynas.metrics.registry import get_metric
from raynas.testing import threshold_net, tiny_bn_convnet

C = 2
BATCH = Batch(torch.zeros(2, C, 8, 8), torch.zeros(2, dtype=torch.long), 2)  # only its channel count is used


@pytest.mark.parametrize(
    ("thresholds", "axes", "count"),
    [
        ([0.0], None, 2),  # a half-line split in two
        ([-1.0, 0.0, 1.0], None, 4),  # a line cut at three points: 4 intervals, all visited by N(0,1)
        ([0.0, 0.0, 0.0], [0, 5, 17], 8),  # three coordinate hyperplanes: 8 orthants
        ([5.0, 6.0], None, 1),  # regions beyond 5 sigma are (almost surely) not visited
    ],
)
def test_known_pattern_counts(thresholds: list[float], axes: list[int] | None, count: int) -> None:
    torch.manual_seed(0)
    assert linear_regions(threshold_net(C * 9, thresholds, axes), BATCH) == count


def test_inputs_are_seeded_from_initial_seed() -> None:
    torch.manual_seed(7)
    a = gaussian_inputs(C, device=torch.device("cpu"), dtype=torch.float32)
    torch.randn(3)  # global RNG use does not matter: the generator is seeded from initial_seed()
    b = gaussian_inputs(C, device=torch.device("cpu"), dtype=torch.float32)
    torch.manual_seed(8)
    c = gaussian_inputs(C, device=torch.device("cpu"), dtype=torch.float32)
    assert a.shape == (N_SAMPLES, C, 3, 3) == (1000, C, 3, 3)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_conv_net_matches_brute_force_count() -> None:
    torch.manual_seed(4)
    model = tiny_bn_convnet(C, 3)
    x = gaussian_inputs(C, device=torch.device("cpu"), dtype=torch.float32)
    patterns = {tuple(row) for row in activation_codes(model, x).to(torch.uint8).tolist()}
    value = linear_regions(model, BATCH)
    assert value == len(patterns)
    assert 1 < value <= N_SAMPLES


def test_spec() -> None:
    spec = get_metric("linear_regions_gaussian")
    assert not spec.needs_data and not spec.needs_labels and spec.higher_is_better


@pytest.mark.parametrize("name", ["linear_regions", "linear_regions_gaussian"])
def test_a_thin_cell_without_convs_gets_inputs_of_its_channels(name: str) -> None:
    # an all-pool/skip cell has no conv: the channel count comes from the network (1 on the thin network),
    # not from the batch (3); seen on 49 of 1000 NB201 archs before the network declared it
    from raynas.metrics.engine import compute_metrics
    from raynas.spaces import create_space

    space = create_space("nb201")
    arch = space.parse("|avg_pool_3x3~0|+|avg_pool_3x3~0|skip_connect~1|+|avg_pool_3x3~0|skip_connect~1|"
                       "skip_connect~2|")
    batch = Batch(torch.randn(4, 3, 8, 8), torch.zeros(4, dtype=torch.long), 3)
    (r,) = compute_metrics(lambda: space.to_module(arch, 3), batch, [name],
                           thin_factory=lambda: space.to_module(arch, 3, **space.thin_kwargs()))
    assert r.status == "ok" and r.value >= 1, r
