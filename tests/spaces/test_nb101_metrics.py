"""Every registered metric on a small NAS-Bench-101 network, with both engines (unfused and fused)."""

from __future__ import annotations

import pytest
import torch

from raynas.data.batch import Batch
from raynas.metrics import list_metrics
from raynas.metrics.engine import compute_metrics
from raynas.spaces import create_space

#: counts, or float64 from a float64 model: equal across engines exactly
EXACT = {"synflow", "params", "flops", "das_units", "linear_regions", "linear_regions_gaussian"}


def _batch() -> Batch:
    g = torch.Generator().manual_seed(0)
    return Batch(torch.randn(6, 3, 32, 32, generator=g), torch.arange(6) % 4, 4)


# a 7-vertex cell with every op, a vertex fed only by another vertex (truncation) and input projections
CELL = "0110001/0001000/0000110/0000001/0000001/0000001/0000000|conv3x3-bn-relu,maxpool3x3,conv1x1-bn-relu," \
       "conv3x3-bn-relu,maxpool3x3"


@pytest.mark.parametrize("name", list_metrics())
def test_every_metric_runs_on_nb101_with_both_engines(name: str) -> None:
    space = create_space("nb101")
    arch = space.parse(CELL)
    assert arch.num_vertices == 7

    def factory():
        # C=16: every vertex keeps >= 4 channels (MeCo's channel correlation needs two; the benchmark's C is 128)
        return space.to_module(arch, 4, C=16, N=1)

    # no thin variant (see NB101Space.thin_kwargs): the scorer gives no thin factory, the regions use this net
    assert space.thin_kwargs() == {}
    plain = compute_metrics(factory, _batch(), [name], seed=3)[0]
    fast = compute_metrics(factory, _batch(), [name], seed=3, fused=True)[0]
    assert plain.status == "ok", plain.error
    assert (fast.status, fast.error) == (plain.status, plain.error)
    if name in EXACT:
        assert fast.value == plain.value
    else:
        assert fast.value == pytest.approx(plain.value, rel=1e-5, abs=1e-12)
