"""DARTS space: genotype strings, the id bijection, uniform sampling, specs and the macro networks."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from raynas.errors import ConfigError, InvalidArchitectureError
from raynas.spaces import create_space, list_spaces
from raynas.spaces.darts.space import DartsSpace
from raynas.spaces.darts.genotypes import (
    DARTS_FINAL_OPS, DARTS_V2, DartsGenotype, cell_size, format_genotype, genotype_size, genotype_to_index,
    index_to_genotype, input_pairs, parse_genotype, to_darts_repr,
)
from raynas.spaces.darts.model import DartsNetworkCIFAR, DartsNetworkImageNet
from raynas.spaces.spec import SPEC_DIRS, load_builtin_spec

V2_STR = (
    "normal=[sep_conv_3x3~0,sep_conv_3x3~1|sep_conv_3x3~0,sep_conv_3x3~1|skip_connect~0,sep_conv_3x3~1|"
    "skip_connect~0,dil_conv_3x3~2];reduce=[max_pool_3x3~0,max_pool_3x3~1|max_pool_3x3~1,skip_connect~2|"
    "max_pool_3x3~0,skip_connect~2|max_pool_3x3~1,skip_connect~2]"
)
# verbatim from the DARTS repository (genotypes.py), edge order inside nodes as published
V2_REPR = (
    "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
    "('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], "
    "reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), "
    "('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])"
)


def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


# --- genotype value and strings ---------------------------------------------------------------------------
def test_ops_are_the_seven_final_cell_ops() -> None:
    assert DARTS_FINAL_OPS == ("max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3",
                               "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5")


def test_darts_v2_canonical_string_and_repr_round_trip() -> None:
    assert format_genotype(DARTS_V2) == V2_STR
    assert parse_genotype(V2_STR) == DARTS_V2 and format_genotype(parse_genotype(V2_STR)) == V2_STR
    assert parse_genotype(V2_REPR) == DARTS_V2  # published edge order is canonicalised
    assert parse_genotype(to_darts_repr(DARTS_V2)) == DARTS_V2
    assert parse_genotype(V2_REPR.replace("[2, 3, 4, 5]", "range(2, 6)")) == DARTS_V2
    assert DARTS_V2.concat == (2, 3, 4, 5) and DARTS_V2.nodes == 4


def test_node_edges_are_canonicalised_so_equal_cells_compare_equal() -> None:
    a = DartsGenotype(((("sep_conv_3x3", 1), ("skip_connect", 0)),), ((("max_pool_3x3", 0), ("avg_pool_3x3", 1)),))
    b = DartsGenotype(((("skip_connect", 0), ("sep_conv_3x3", 1)),), ((("max_pool_3x3", 0), ("avg_pool_3x3", 1)),))
    assert a == b and hash(a) == hash(b)
    assert a.normal == ((("skip_connect", 0), ("sep_conv_3x3", 1)),)


@pytest.mark.parametrize(
    "text, match",
    [
        (V2_STR.replace("sep_conv_3x3~0,sep_conv_3x3~1", "sep_conv_3x3~1,sep_conv_3x3~0", 1), "increasing order"),
        (V2_STR.replace("sep_conv_3x3~0,sep_conv_3x3~1", "sep_conv_3x3~1,sep_conv_3x3~1", 1), "increasing order"),
        (V2_STR.replace("dil_conv_3x3~2", "dil_conv_3x3~5"), r"input must be an int in \[0, 5\)"),
        (V2_STR.replace("dil_conv_3x3~2", "dil_conv_3x3~02"), "must look like 'op~<input>'"),
        (V2_STR.replace("dil_conv_3x3", "dil_conv_3x4"), "did you mean 'dil_conv_3x3'"),
        (V2_STR.replace("skip_connect~0,dil", "none~0,dil"), "'none' is not allowed"),
        (V2_STR.replace(";", " ;"), "whitespace"),
        (V2_STR.replace(";reduce", ";reduce=[max_pool_3x3~0,max_pool_3x3~1];x"), "one ';'"),
        (V2_STR.replace("normal=", "norm="), "must look like 'normal="),
        (V2_STR.replace("|skip_connect~0,dil_conv_3x3~2", ""), "same node count"),
        (V2_STR.replace("|skip_connect~0,dil_conv_3x3~2", "").replace("|max_pool_3x3~1,skip_connect~2]", "]"),
         "has 3 node"),
        (V2_STR.replace("sep_conv_3x3~0,sep_conv_3x3~1|", "sep_conv_3x3~0|", 1), "exactly 2 edges"),
        ("", "one ';'"),
        (V2_REPR.replace("normal_concat=[2, 3, 4, 5]", "normal_concat=[4, 5]"), "concatenates every"),
        (V2_REPR.replace("('sep_conv_3x3', 1), ('skip_connect', 0)", "('skip_connect', 0), ('sep_conv_3x3', 0)"),
         "reads input 0 twice"),
        (V2_REPR.replace("Genotype(", "Genotype(foo=1, "), "unexpected or repeated keyword 'foo'"),
        (V2_REPR[:-1], "not valid Python syntax"),
        (V2_REPR.replace("('dil_conv_3x3', 2)]", "]"), "2 edges per node"),
        (V2_REPR.replace("[2, 3, 4, 5]", "__import__('os')"), "not a literal"),
    ],
)
def test_malformed_strings_raise_clear_errors(text: str, match: str) -> None:
    with pytest.raises(InvalidArchitectureError, match=match):
        parse_genotype(text)


def test_non_string_and_wrong_types() -> None:
    with pytest.raises(InvalidArchitectureError, match="must be a str"):
        parse_genotype(3)  # type: ignore[arg-type]
    with pytest.raises(InvalidArchitectureError, match="same node count"):
        DartsGenotype(DARTS_V2.normal, DARTS_V2.reduce[:3])
    with pytest.raises(InvalidArchitectureError, match="input must be an int"):
        DartsGenotype(((("skip_connect", True), ("skip_connect", 0)),), DARTS_V2.reduce[:1])


# --- the id bijection ---------------------------------------------------------------------------------
def test_size_is_the_mixed_radix_product_and_fits_int64() -> None:
    # node k: C(k+2, 2) distinct input pairs x 7 ops per edge
    assert cell_size(7, 4) == (1 * 3 * 6 * 10) * 7**8 == 1_037_664_180
    assert genotype_size(7, 4) == 1_076_746_950_455_072_400 < 2**63 - 1
    space = create_space("darts_cifar")
    assert space.size == genotype_size(7, 4) and isinstance(space.size, int)


def test_index_digits_are_pinned() -> None:
    first = index_to_genotype(0)
    assert format_genotype(first) == (
        "normal=[max_pool_3x3~0,max_pool_3x3~1|max_pool_3x3~0,max_pool_3x3~1|max_pool_3x3~0,max_pool_3x3~1|"
        "max_pool_3x3~0,max_pool_3x3~1];reduce=[max_pool_3x3~0,max_pool_3x3~1|max_pool_3x3~0,max_pool_3x3~1|"
        "max_pool_3x3~0,max_pool_3x3~1|max_pool_3x3~0,max_pool_3x3~1]"
    )
    last = index_to_genotype(genotype_size(7, 4) - 1)
    assert last.normal[3] == (("dil_conv_5x5", 3), ("dil_conv_5x5", 4))
    assert last.normal[0] == (("dil_conv_5x5", 0), ("dil_conv_5x5", 1))
    # index 1: last digit (op of reduce node 3's higher input) moves first
    assert index_to_genotype(1).reduce[3] == (("max_pool_3x3", 0), ("avg_pool_3x3", 1))
    assert input_pairs(2) == ((0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3))
    # DARTS-V2 by hand: normal digits (pair, lo, hi) per node: (0,3,3) (0,3,3) (0,2,3) (1,2,5); reduce:
    # (0,0,0) (2,0,2) (1,0,2) (4,0,2) with node radices 49, 147, 294, 490
    def cell(d: list[tuple[int, int, int]]) -> int:
        v = 0
        for (p, lo, hi), r in zip(d, (49, 147, 294, 490)):
            v = v * r + (p * 7 + lo) * 7 + hi
        return v

    normal = cell([(0, 3, 3), (0, 3, 3), (0, 2, 3), (1, 2, 5)])
    reduce = cell([(0, 0, 0), (2, 0, 2), (1, 0, 2), (4, 0, 2)])
    assert genotype_to_index(DARTS_V2) == normal * 1_037_664_180 + reduce == 530_982_637_408_096_428


def test_bijection_on_random_ids_and_edges() -> None:
    space = create_space("darts_cifar")
    rng = np.random.default_rng(0)
    ids = [0, 1, space.size - 1, space.size // 2] + [int(x) for x in rng.integers(0, space.size, 200)]
    for i in ids:
        g = space.index_to_arch(i)
        assert space.arch_to_index(g) == i
        s = space.format(g)
        assert space.parse(s) == g and space.format(space.parse(s)) == s
        assert space.arch_to_index(s) == i
    for bad in (-1, space.size, 1.0, True):
        with pytest.raises(InvalidArchitectureError):
            space.index_to_arch(bad)  # type: ignore[arg-type]


def test_bijection_is_exhaustive_on_a_one_node_space() -> None:
    ops = ("skip_connect", "sep_conv_3x3")
    size = cell_size(len(ops), 1) ** 2
    seen = {index_to_genotype(i, ops, 1) for i in range(size)}
    assert size == 16 and len(seen) == 16
    assert all(genotype_to_index(g, ops) == i for i, g in enumerate(index_to_genotype(i, ops, 1) for i in range(16)))


def test_sample_is_uniform_over_ops_and_input_pairs() -> None:
    space = create_space("darts_cifar")
    rng = np.random.default_rng(123)
    genos = [space.sample(rng) for _ in range(2000)]
    counts = {op: 0 for op in DARTS_FINAL_OPS}
    for g in genos:
        for op in g.ops():
            counts[op] += 1
    n = sum(counts.values())
    assert n == 2000 * 16 and min(counts.values()) > 0 and counts["dil_conv_5x5"] > 0
    chi2 = sum((c - n / 7) ** 2 / (n / 7) for c in counts.values())
    assert chi2 < 22.46, counts  # 6 d.o.f., p = 0.001
    # node 3 of the normal cell: 10 input pairs, uniform
    pairs = {p: 0 for p in input_pairs(3)}
    for g in genos:
        (_, lo), (_, hi) = g.normal[3]
        pairs[(lo, hi)] += 1
    chi2 = sum((c - 200) ** 2 / 200 for c in pairs.values())
    assert chi2 < 27.88, pairs  # 9 d.o.f., p = 0.001


# --- specs and registry -------------------------------------------------------------------------------
def test_spaces_are_registered_from_strict_specs() -> None:
    assert {"darts_cifar", "darts_imagenet"} <= set(list_spaces())
    cifar, imnet = create_space("darts_cifar"), create_space("darts_imagenet")
    assert isinstance(cifar, DartsSpace) and cifar.network == "cifar" and cifar.input_size == 32
    assert cifar.macro == {"C": 16, "layers": 5, "in_channels": 3, "stem_multiplier": 3}
    assert imnet.network == "imagenet" and imnet.input_size == 224 and imnet.macro["C"] == 48
    assert imnet.macro["layers"] == 14 and imnet.size == cifar.size and imnet.ops == cifar.ops
    assert create_space("darts_cifar", preset="eval").macro["C"] == 36
    assert create_space("darts_cifar", preset="eval", layers=8).macro == {
        "C": 36, "layers": 8, "in_channels": 3, "stem_multiplier": 3}
    with pytest.raises(ConfigError, match="unknown preset"):
        create_space("darts_imagenet", preset="proxy")
    with pytest.raises(ConfigError, match="unknown option"):
        create_space("darts_imagenet", stem_multiplier=3)
    for name in ("darts_cifar", "darts_imagenet"):
        assert len([d / f"{name}.yaml" for d in SPEC_DIRS if (d / f"{name}.yaml").exists()]) == 1  # shipped once


def test_spec_is_read_strictly() -> None:
    from raynas.spaces.spec import parse_space_spec, spec_to_dict

    d = spec_to_dict(load_builtin_spec("darts_cifar"))
    assert parse_space_spec(d).macro.network == "cifar"
    bad = {**d, "macro": {**d["macro"], "width": 3}}
    with pytest.raises(ConfigError, match="width"):
        parse_space_spec(bad)
    with pytest.raises(ConfigError, match="stem_multiplier applies to the CIFAR stem only"):
        parse_space_spec({**d, "macro": {**d["macro"], "network": "imagenet"}})
    with pytest.raises(ConfigError, match="'none' is not an op"):
        DartsSpace.from_spec(parse_space_spec({**d, "ops": ["none", "skip_connect"]}))


# --- networks -----------------------------------------------------------------------------------------
def test_darts_v2_parameter_counts_match_the_paper() -> None:
    # DARTS' count_parameters_in_MB excludes the auxiliary head: its logs print 3.349342 MB and 4.718752 MB
    # (the paper's 3.3M / 4.7M). The CIFAR aux head would add 476,426 parameters (3.83M in total).
    with torch.device("meta"):
        cifar = DartsNetworkCIFAR(DARTS_V2, 10, C=36, layers=20)
        imnet = DartsNetworkImageNet(DARTS_V2, 1000, C=48, layers=14)
    assert n_params(cifar) == 3_349_342
    assert n_params(imnet) == 4_718_752


def test_cifar_forward_shapes_tiny() -> None:
    space = create_space("darts_cifar")
    torch.manual_seed(0)
    model = space.to_module(DARTS_V2, num_classes=10, C=4, layers=3)
    out = model(torch.randn(2, 3, 16, 16))
    assert out.shape == (2, 10) and torch.isfinite(out).all()
    # reductions at cells 1 and 2: widths 4 -> 8 -> 16, output 4 nodes x 16 channels
    assert [c.reduction for c in model.cells] == [False, True, True]
    assert model.classifier.in_features == 64
    # every op reachable, including dil_conv_5x5, builds and runs (odd size exercises padding)
    g = index_to_genotype(genotype_size(7, 4) - 1)
    assert space.to_module(g, 3, C=4, layers=3)(torch.randn(2, 3, 9, 9)).shape == (2, 3)


def test_imagenet_forward_at_224_and_small() -> None:
    space = create_space("darts_imagenet")
    torch.manual_seed(0)
    model = space.to_module(DARTS_V2, num_classes=7, C=4, layers=3)
    assert model(torch.randn(1, 3, 224, 224)).shape == (1, 7)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 7)
    assert [c.reduction for c in model.cells] == [False, True, True]


def test_to_module_rejects_unknown_options_and_bad_archs() -> None:
    space = create_space("darts_cifar")
    with pytest.raises(ConfigError, match="unknown option"):
        space.to_module(DARTS_V2, 10, N=3)
    with pytest.raises(InvalidArchitectureError, match="expected a DartsGenotype"):
        space.to_module(("a",), 10)  # type: ignore[arg-type]
    other = index_to_genotype(5, ("skip_connect", "nor_conv_3x3"), 4)
    with pytest.raises(InvalidArchitectureError, match="unknown op 'nor_conv_3x3'"):
        space.arch_to_index(other)


def test_all_node_input_pairs_build() -> None:
    # every distinct input pair of the last node, in a reduction cell too
    space = create_space("darts_cifar")
    for lo, hi in itertools.combinations(range(5), 2):
        text = V2_STR.replace("skip_connect~0,dil_conv_3x3~2", f"skip_connect~{lo},dil_conv_5x5~{hi}")
        text = text.replace("max_pool_3x3~1,skip_connect~2]", f"avg_pool_3x3~{lo},sep_conv_5x5~{hi}]")
        model = space.to_module(text, 2, C=2, layers=3)
        assert model(torch.randn(1, 3, 8, 8)).shape == (1, 2)
    assert math.comb(5, 2) == 10


def test_huge_concat_range_is_refused_without_building_it():
    from raynas.errors import InvalidArchitectureError
    from raynas.spaces import create_space

    text = ("Genotype(normal=[('sep_conv_3x3', 0)], normal_concat=range(2, 9999999999), "
            "reduce=[('max_pool_3x3', 0)], reduce_concat=range(2, 6))")
    with pytest.raises(InvalidArchitectureError, match="too long"):
        create_space("darts_cifar").parse(text)


def test_thin_network_ignores_the_full_networks_macro_options() -> None:
    # a scoring run merges its space kwargs (C, layers) into thin_kwargs(): the thin network is TE-NAS's anyway
    import torch

    from raynas.spaces import create_space
    from raynas.spaces.darts.genotypes import DARTS_V2

    for name in ("darts_cifar", "darts_imagenet"):
        s = create_space(name)
        a = s.to_module(DARTS_V2, 10, **s.thin_kwargs())
        b = s.to_module(DARTS_V2, 10, **{"C": 8, "layers": 5, **s.thin_kwargs()})
        assert [tuple(p.shape) for p in a.parameters()] == [tuple(p.shape) for p in b.parameters()]
        assert b(torch.randn(4, 1, 3, 3)).shape == (4, 10)
