"""Every registered metric on tiny DARTS networks (CIFAR and ImageNet macro skeletons).

Each metric runs through :func:`raynas.metrics.engine.compute_metrics` exactly as the scoring loop calls it (full
network from ``space.to_module``, thin network from ``space.thin_kwargs()``) on C=4, 3-cell networks: CIFAR on
16x16 inputs, ImageNet on 32 px, batch 6. :data:`EXPECTED` records, per metric, the decided outcome on DARTS
networks; a newly registered metric fails :func:`test_every_metric_has_a_darts_decision` until someone decides.
"""

from __future__ import annotations

import math
import re
from functools import lru_cache

import numpy as np
import pytest
import torch

from raynas.data.batch import Batch
from raynas.errors import ConfigError
from raynas.metrics import list_metrics
from raynas.metrics.engine import MetricResult, compute_metrics
from raynas.spaces import create_space
from raynas.spaces.darts.space import DartsSpace
from raynas.spaces.darts.genotypes import DARTS_V2, DartsGenotype

#: Decided outcome per metric on DARTS final networks: "ok" (finite value) or a regex the error text must match
#: (status "error"), or "ok_or_nan" (a finite value, or status ``nan`` where the authors' formula is non-finite
#: for the genotype: AZ-NAS's spectral entropy of a rank-deficient feature covariance). All metrics apply: DARTS cells have no ``none`` op, use nn.ReLU modules throughout, end in a
#: global pool + Linear classifier (so 3x3 inputs for linear_regions and 1-sample forwards for flops work).
EXPECTED: dict[str, str | re.Pattern[str]] = {
    "az_nas_complexity": "ok",
    "az_nas_expressivity": "ok_or_nan",
    "az_nas_progressivity": "ok_or_nan",
    "az_nas_trainability": "ok",
    "meco": "ok",
    "zico": "ok",
    "das": "ok",
    "das_distinguish": "ok",
    "das_units": "ok",
    "epe_nas": "ok",
    "fisher": "ok",
    "fisher_channel": "ok",
    "flops": "ok",
    "grad_norm": "ok",
    "grasp": "ok",
    "jacob_cov": "ok",
    "l2_norm": "ok",
    "linear_regions": "ok",
    "linear_regions_gaussian": "ok",
    "lwt_angle": "ok",
    "lwt_loss": "ok",
    "naswot": "ok",
    "naswot_code": "ok",
    "ntk_cond": "ok",
    "ntk_cond_jacobian": "ok",
    "ntk_trace": "ok",
    "ntk_trace_jacobian": "ok",
    "params": "ok",
    "plain": "ok",
    "snip": "ok",
    "swap": "ok",
    "synflow": "ok",
    "tenas_ntk_cond": "ok",
    "vkdnw": "ok",
    "vkdnw_f32": "ok",
    "zen": "ok",
}

#: dil_conv_5x5 and both pools on every kind of edge (cell inputs at stride 2 in the reduction cell, nodes)
DIL5_POOLS = DartsGenotype.from_pairs(
    normal=[("dil_conv_5x5", 0), ("avg_pool_3x3", 1), ("max_pool_3x3", 0), ("dil_conv_5x5", 2),
            ("sep_conv_5x5", 1), ("avg_pool_3x3", 3), ("skip_connect", 2), ("dil_conv_5x5", 4)],
    reduce=[("avg_pool_3x3", 0), ("dil_conv_5x5", 1), ("max_pool_3x3", 1), ("dil_conv_5x5", 2),
            ("avg_pool_3x3", 0), ("max_pool_3x3", 3), ("dil_conv_5x5", 3), ("avg_pool_3x3", 4)],
)

NETWORKS = {"darts_cifar": 16, "darts_imagenet": 32}  # space -> input size
B, NUM_CLASSES = 6, 10
#: (space, genotype) cases; every metric runs on each, except the light-weight-training metrics (50 SGD steps
#: each, ~70% of the run time) which run on LWT_CASES only, to keep the file well under 30 s on one thread
CASES = [
    ("darts_cifar", "darts_v2"), ("darts_cifar", "dil5_pools"), ("darts_cifar", "sampled0"),
    ("darts_imagenet", "sampled2"),
]
LWT_METRICS = frozenset({"lwt_angle", "lwt_loss"})
#: (sampled1's 3-cell ImageNet net at 32 px swings between loss 0 and 56 in those 50 steps: recorded as diverged, nan)
LWT_CASES = frozenset({("darts_cifar", "dil5_pools"), ("darts_imagenet", "sampled2")})


@lru_cache(maxsize=None)
def space(net: str) -> DartsSpace:
    return create_space(net, C=4, layers=3)


def genotype(net: str, which: str) -> DartsGenotype:
    if which == "darts_v2":
        return DARTS_V2
    if which == "dil5_pools":
        return DIL5_POOLS
    return space(net).sample(np.random.default_rng(int(which.removeprefix("sampled"))))


@lru_cache(maxsize=None)
def batch(net: str) -> Batch:
    gen = torch.Generator().manual_seed(0)
    size = NETWORKS[net]
    return Batch(torch.randn(B, 3, size, size, generator=gen), torch.arange(B), NUM_CLASSES, f"randn:{net}")


def metric_names(net: str, which: str) -> list[str]:
    names = list_metrics()
    return names if (net, which) in LWT_CASES else [n for n in names if n not in LWT_METRICS]


@lru_cache(maxsize=None)
def scores(net: str, which: str) -> dict[str, MetricResult]:
    """The case's metrics on one (network, genotype), computed once per test session."""
    s, g = space(net), genotype(net, which)
    results = compute_metrics(
        lambda: s.to_module(g, NUM_CLASSES),
        batch(net),
        metric_names(net, which),
        seed=0,
        thin_factory=lambda: s.to_module(g, NUM_CLASSES, **s.thin_kwargs()),
    )
    return {r.metric: r for r in results}


def test_every_metric_has_a_darts_decision() -> None:
    missing = sorted(set(list_metrics()) - set(EXPECTED))
    stale = sorted(set(EXPECTED) - set(list_metrics()))
    assert not missing, f"decide the expected outcome on DARTS networks for {missing} in EXPECTED"
    assert not stale, f"EXPECTED lists metrics that are no longer registered: {stale}"


def test_cases_cover_distinct_genotypes_and_every_metric() -> None:
    genotypes = {genotype(net, which) for net, which in CASES}
    assert len(genotypes) == len(CASES)
    assert LWT_CASES <= set(CASES) and LWT_METRICS <= set(list_metrics())
    assert {n for net, which in CASES for n in metric_names(net, which)} == set(list_metrics())
    assert {"dil_conv_5x5", "avg_pool_3x3", "max_pool_3x3"} <= set(DIL5_POOLS.ops())


@pytest.mark.parametrize("net", sorted(NETWORKS))
def test_thin_kwargs_build_a_scorable_network(net: str) -> None:
    """The scoring loop builds the thin network from ``thin_kwargs()``; it must accept linear_regions' 3x3 crops."""
    s = space(net)
    try:
        thin = s.to_module(DARTS_V2, NUM_CLASSES, **s.thin_kwargs())
    except ConfigError as exc:
        pytest.fail(f"{net}.thin_kwargs() = {s.thin_kwargs()} is rejected by to_module ({exc}); the scoring loop "
                    "then records 'build failed' for every metric of every arch, not only linear_regions")
    full = s.to_module(DARTS_V2, NUM_CLASSES)
    assert sum(p.numel() for p in thin.parameters()) < sum(p.numel() for p in full.parameters())
    # TE-NAS's thin network: no stem, one normal and one reduction cell on the 1-channel 3x3 crops
    assert thin.in_channels == 1 and len(thin.cells) == 2 and [c.reduction for c in thin.cells] == [False, True]
    assert thin(torch.randn(2, 1, 3, 3)).shape == (2, NUM_CLASSES)


@pytest.mark.parametrize("net,which", CASES)
def test_metric_outcome_on_darts(net: str, which: str) -> None:
    got = scores(net, which)
    assert list(got) == metric_names(net, which)
    for name in got:
        r, expected = got[name], EXPECTED[name]
        assert r.device == "cpu" and r.seconds >= 0.0
        if expected == "ok_or_nan" and r.status == "nan":
            assert r.value is None and "non-finite" in r.error, f"{name}: {r.error}"
        elif expected in ("ok", "ok_or_nan"):
            assert r.status == "ok", f"{name} on {net}/{which}: {r.status} {r.error}"
            assert r.value is not None and math.isfinite(r.value), f"{name}: {r.value}"
            assert r.error == ""
        else:
            assert r.status == "error" and r.value is None, f"{name} on {net}/{which}: {r.status} {r.value}"
            assert re.search(expected, r.error), f"{name}: unclear error {r.error!r}"


@pytest.mark.parametrize("net,which", CASES)
def test_metric_values_are_consistent(net: str, which: str) -> None:
    """Relations every DARTS score must satisfy, whatever the architecture."""
    v = {name: r.value for name, r in scores(net, which).items()}
    for name in ("params", "flops", "das_units", "linear_regions", "linear_regions_gaussian"):  # counts
        assert v[name] == int(v[name]) and v[name] >= 1, f"{name}: {v[name]}"
    # NASWOT = log|det K_D| + B log N_A, and DAS with alpha = beta = 1 (Liu et al. 2022 decomposition)
    assert v["naswot"] == pytest.approx(v["das_distinguish"] + B * math.log(v["das_units"]), rel=1e-9)
    assert v["das"] == pytest.approx(v["das_distinguish"] + math.log(v["das_units"]), rel=1e-9)
    assert v["das_distinguish"] <= 1e-12  # Hadamard: unit-diagonal PSD kernel has det <= 1
    for name in ("grad_norm", "snip", "fisher", "synflow", "ntk_trace"):
        assert v[name] > 0.0, f"{name}: {v[name]}"
    assert v["ntk_cond"] >= 1.0 and v["tenas_ntk_cond"] >= 1.0
    if (net, which) in LWT_CASES:
        assert -1.0 <= v["lwt_angle"] < 0.95 and v["lwt_loss"] >= 0.0
    assert v["linear_regions"] <= 3000 and v["linear_regions_gaussian"] <= 1000


@pytest.mark.parametrize("net,which", [("darts_cifar", "darts_v2"), ("darts_imagenet", "sampled2")])
def test_linear_regions_counts_on_the_thin_network(net: str, which: str) -> None:
    s, g = space(net), genotype(net, which)
    direct = compute_metrics(lambda: s.to_module(g, NUM_CLASSES, **s.thin_kwargs()), batch(net), ["linear_regions"])
    assert direct[0].status == "ok"
    assert scores(net, which)["linear_regions"].value == direct[0].value


def test_darts_v2_pinned_counts() -> None:
    """Hand-derived for DARTS_V2, C=4, 3 cells (reductions at cells 1 and 2), 10 classes.

    CIFAR params: stem 324+24; cell0 (C=4): two 1x1 preprocess 2*(48+8), five sep_conv_3x3 5*2*(36+16+8), one
    dil_conv_3x3 36+16+8 -> 772; cell1 (C=8): preprocess 12->8 (96+16) and 16->8 (128+16), pools/skips free -> 256;
    cell2 (C=16): FactorizedReduce 16->16 (2*128+32) and 32->16 (512+32) -> 832; Linear(64, 10) 650. Sum 2858.
    CIFAR MACs at 16x16: stem 12*256*27 = 82944; cell0 24576 (preprocess) + 5*26624 (sep) + 13312 (dil) = 171008;
    cell1 24576+32768; cell2 16384+32768; Linear 640. Sum 361088.
    CIFAR ReLU units per sample at 16x16 (N_A): cell0 3072+3072 (preprocess) + 5*2048 (sep) + 1024 (dil) = 17408;
    cell1 3072+4096; cell2 4096+2048 -> 30720.
    ImageNet params: stem 54+4+72+8+144+8 = 290; cell0 FactorizedReduce 4->4 (16+8) + 1x1 4->4 (16+8) + 660 = 708;
    cell1 (32+16)+(128+16) = 192; cell2 832; Linear 650. Sum 2672.
    """
    cifar = scores("darts_cifar", "darts_v2")
    assert cifar["params"].value == 2858.0
    assert cifar["flops"].value == 361088.0
    assert cifar["das_units"].value == 30720.0
    s = space("darts_imagenet")
    (imagenet,) = compute_metrics(lambda: s.to_module(DARTS_V2, NUM_CLASSES), batch("darts_imagenet"), ["params"])
    assert imagenet.value == 2672.0
