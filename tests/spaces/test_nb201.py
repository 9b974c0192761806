"""NAS-Bench-201 space: strings, official indexing, connectivity, the network and the spec file."""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import pytest
import torch
import torch.nn as nn

import raynas.spaces

from raynas.errors import ConfigError, InvalidArchitectureError, UnknownNameError
from raynas.spaces import create_space
from raynas.spaces.nb201.space import EDGES_NB201, NB201Arch, NB201Space, has_path, official_permutation, parse_arch
from raynas.spaces.nb201.model import NB201Cell, NB201Network
from raynas.spaces.spec import (
    SPEC_DIRS,
    builtin_spec_path,
    load_space_spec,
    parse_space_spec,
    spec_to_dict,
)

SPACE = NB201Space()
CONV3 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"


def uniform(op: str) -> str:
    return f"|{op}~0|+|{op}~0|{op}~1|+|{op}~0|{op}~1|{op}~2|"


# ----------------------------------------------------------------------------------------------- strings
def test_round_trip_all() -> None:
    strings = set()
    for i in range(SPACE.size):
        arch = SPACE.index_to_arch(i)
        s = SPACE.format(arch)
        assert SPACE.parse(s) == arch and SPACE.arch_to_index(arch) == i
        strings.add(s)
    assert SPACE.size == 15625 == len(strings)


def test_arch_value_semantics() -> None:
    a = parse_arch(CONV3)
    assert a == NB201Arch(["nor_conv_3x3"] * 6) and hash(a) == hash(NB201Arch(("nor_conv_3x3",) * 6))
    assert str(a) == CONV3 and a.nodes == 4
    assert a.edges()[2] == (2, 1, "nor_conv_3x3") and EDGES_NB201 == ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
    with pytest.raises(InvalidArchitectureError, match="do not fill"):
        NB201Arch(("none",) * 5)


@pytest.mark.parametrize(
    "text,message",
    [
        ("", "1 node group"),
        ("|none~0|+|none~0|none~1|", "2 node group"),
        (CONV3 + "+|none~0|", "4 node group"),
        ("|none~0| + |none~0|none~1|+|none~0|none~1|none~2|", "whitespace"),
        ("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|\n", "whitespace"),
        ("none~0|+|none~0|none~1|+|none~0|none~1|none~2|", "start and end with '|'"),
        ("|none~0|+|none~0|none~1|+|none~0|none~1|", "has 2 edge(s), expected 3"),
        ("|none~0|+|none~0|+|none~0|none~1|none~2|", "has 1 edge(s), expected 2"),
        ("|none~0|+|none~0|none~1|none~2|+|none~0|none~1|none~2|", "has 3 edge(s), expected 2"),
        ("|conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|", "unknown op 'conv_3x3' on edge 1<-0"),
        ("|none~0|+|none~0|sep_conv_3x3~1|+|none~0|none~1|none~2|", "unknown op 'sep_conv_3x3' on edge 2<-1"),
        ("|none~1|+|none~0|none~1|+|none~0|none~1|none~2|", "reads input ~1, expected ~0"),
        ("|none~0|+|none~1|none~0|+|none~0|none~1|none~2|", "reads input ~1, expected ~0"),
        ("|none~0|+|none~0|none~01|+|none~0|none~1|none~2|", "reads input ~01, expected ~1"),
        ("|none|+|none~0|none~1|+|none~0|none~1|none~2|", "must look like 'op~0'"),
        ("|none~0~0|+|none~0|none~1|+|none~0|none~1|none~2|", "must look like 'op~0'"),
        ("||+|none~0|none~1|+|none~0|none~1|none~2|", "edge '' of node 1 must look like 'op~0'"),
        ("|~0|+|none~0|none~1|+|none~0|none~1|none~2|", "unknown op '' on edge 1<-0"),
    ],
)
def test_malformed_strings(text: str, message: str) -> None:
    with pytest.raises(InvalidArchitectureError) as e:
        SPACE.parse(text)
    assert message in str(e.value)


def test_unknown_op_suggests_close_match() -> None:
    with pytest.raises(InvalidArchitectureError, match="did you mean 'nor_conv_3x3'"):
        SPACE.parse(CONV3.replace("nor_conv_3x3~1|+", "nor_conv3x3~1|+", 1))


def test_bad_indices_and_foreign_archs() -> None:
    for bad in (-1, 15625, True, 1.0, "3"):
        with pytest.raises(InvalidArchitectureError):
            SPACE.index_to_arch(bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidArchitectureError, match="not in this space"):
        SPACE.arch_to_index(NB201Arch(("sep_conv_3x3",) * 6))
    with pytest.raises(InvalidArchitectureError, match="10 edges"):
        SPACE.arch_to_index(NB201Arch(("none",) * 10))
    assert SPACE.arch_to_index(CONV3) == SPACE.arch_to_index(parse_arch(CONV3))  # strings are accepted


# ------------------------------------------------------------------------------------ official indexing
# Pinned from the benchmark's own generation script (0, 9, 123) and its result files (6111: best test
# accuracy on CIFAR-10, 13714: best 12-epoch validation accuracy), so this holds without the data file.
OFFICIAL = {
    0: "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|",
    9: "|avg_pool_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|nor_conv_3x3~2|",
    123: "|avg_pool_3x3~0|+|avg_pool_3x3~0|nor_conv_1x1~1|+|none~0|avg_pool_3x3~1|nor_conv_3x3~2|",
    6111: "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|",
    13714: "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_1x1~1|nor_conv_3x3~2|",
    15624: "|nor_conv_1x1~0|+|none~0|nor_conv_1x1~1|+|none~0|nor_conv_1x1~1|nor_conv_1x1~2|",
}


@pytest.mark.parametrize("index", sorted(OFFICIAL))
def test_pinned_official_indices(index: int) -> None:
    assert SPACE.format(SPACE.index_to_arch(index)) == OFFICIAL[index]
    assert SPACE.arch_to_index(SPACE.parse(OFFICIAL[index])) == index


def test_permutation_matches_python_shuffle() -> None:
    # our re-implementation must agree with this interpreter's random.shuffle (the benchmark's procedure)
    ref = list(range(5**6))
    rnd = random.Random(88)
    rnd.shuffle(ref)
    perm, inverse = official_permutation()
    assert list(perm) == ref
    assert all(inverse[p] == i for i, p in enumerate(perm))


def test_index_bijection_vs_benchmark_table(nb201_table_path: Path) -> None:
    import pyarrow.parquet as pq

    table = pq.read_table(nb201_table_path, columns=["arch_index", "arch_str"]).to_pydict()
    assert len(table["arch_index"]) == 15625
    for index, text in zip(table["arch_index"], table["arch_str"]):
        assert SPACE.format(SPACE.index_to_arch(index)) == text
        assert SPACE.arch_to_index(SPACE.parse(text)) == index


def test_non_official_spaces_use_product_order() -> None:
    small = NB201Space(ops=("none", "skip_connect", "nor_conv_3x3"), name="nb201_3ops")
    assert not small.official_order and small.size == 3**6
    assert small.index_to_arch(0) == NB201Arch(("none",) * 6)
    assert small.index_to_arch(1).ops == ("none",) * 5 + ("skip_connect",)  # last edge is least significant
    assert small.index_to_arch(3**5).ops == ("skip_connect",) + ("none",) * 5
    assert small.index_to_arch(728) == NB201Arch(("nor_conv_3x3",) * 6)
    three = NB201Space(nodes=3, name="nb201_3nodes")
    assert three.size == 125  # 7 = 0*25 + 1*5 + 2
    assert three.format(three.index_to_arch(7)) == "|none~0|+|skip_connect~0|nor_conv_1x1~1|"


# ----------------------------------------------------------------------------------------- connectivity
def test_has_path_examples() -> None:
    assert not has_path(parse_arch(uniform("none")))
    assert has_path(parse_arch("|none~0|+|none~0|none~1|+|avg_pool_3x3~0|none~1|none~2|"))  # direct 3<-0
    assert has_path(parse_arch("|skip_connect~0|+|none~0|nor_conv_1x1~1|+|none~0|none~1|nor_conv_3x3~2|"))
    assert not has_path(parse_arch("|skip_connect~0|+|none~0|none~1|+|none~0|none~1|skip_connect~2|"))
    assert not has_path(parse_arch("|none~0|+|none~0|skip_connect~1|+|none~0|skip_connect~1|none~2|"))
    assert SPACE.is_valid(CONV3) and not SPACE.has_path(uniform("none"))


def test_has_path_count() -> None:
    # independent count: each edge is "on" (non-none) in 4 of 5 ops; input->output paths are
    # 3<-0, 1<-0->3, 2<-0->3, 1<-0->2->3
    expected = 0
    for a, b, c, d, e, f in itertools.product((0, 1), repeat=6):  # edges 10, 20, 21, 30, 31, 32
        if d or (a and e) or (b and f) or (a and c and f):
            expected += 4 ** (a + b + c + d + e + f)
    counted = sum(has_path(SPACE.index_to_arch(i)) for i in range(SPACE.size))
    assert counted == expected == 15284


# ---------------------------------------------------------------------------------------------- network
@pytest.mark.parametrize("index", [0, 9, 123, 6111])
def test_forward_shape_tiny(index: int) -> None:
    torch.manual_seed(0)
    model = SPACE.to_module(SPACE.index_to_arch(index), num_classes=7, C=4, N=1)
    out = model(torch.randn(3, 3, 8, 8))
    assert isinstance(out, torch.Tensor) and tuple(out.shape) == (3, 7) and torch.isfinite(out).all()


def nb201_param_count(conv3: int, conv1: int, C: int = 16, N: int = 5, classes: int = 10) -> int:
    """Hand formula: ``conv3`` / ``conv1`` = number of 3x3 / 1x1 conv edges in the cell."""
    stem = 3 * C * 9 + 2 * C
    cells = 0
    blocks = 0
    for s in range(3):
        c = C * 2**s
        cells += N * (conv3 * (9 * c * c + 2 * c) + conv1 * (c * c + 2 * c))
        if s:  # ResNet block c/2 -> c: conv_a 3x3 + BN, conv_b 3x3 + BN, shortcut 1x1 conv
            blocks += 9 * (c // 2) * c + 2 * c + 9 * c * c + 2 * c + (c // 2) * c
    head = 2 * 4 * C + 4 * C * classes + classes
    return stem + cells + blocks + head


@pytest.mark.parametrize(
    "arch,expected,conv3,conv1",
    [
        (uniform("nor_conv_3x3"), 1_531_546, 6, 0),  # the benchmark's largest net (1.53 MB)
        (uniform("none"), 73_306, 0, 0),  # the benchmark's smallest (0.07 MB)
        (uniform("skip_connect"), 73_306, 0, 0),
        (uniform("avg_pool_3x3"), 73_306, 0, 0),
        (uniform("nor_conv_1x1"), 241_306, 0, 6),
        (OFFICIAL[6111], 1_073_466, 4, 1),
    ],
)
def test_param_counts_c16_n5(arch: str, expected: int, conv3: int, conv1: int) -> None:
    model = SPACE.to_module(arch, num_classes=10)
    assert sum(p.numel() for p in model.parameters()) == expected == nb201_param_count(conv3, conv1)


def test_cell_sums_edges_and_none_gives_zeros() -> None:
    x = torch.randn(2, 4, 6, 6)
    none_cell = NB201Cell(parse_arch(uniform("none")), 4, 4)
    assert torch.equal(none_cell(x), torch.zeros_like(x))
    # node1 = x, node2 = x + node1 = 2x, node3 = x + node1 + node2 = 4x
    assert torch.equal(NB201Cell(parse_arch(uniform("skip_connect")), 4, 4)(x), 4 * x)
    # only 1<-0 and 3<-1 carry data: node3 = x
    path = NB201Cell(parse_arch("|skip_connect~0|+|none~0|none~1|+|none~0|skip_connect~1|none~2|"), 4, 4)
    assert torch.equal(path(x), x)
    const = torch.full((1, 2, 5, 5), 3.0)  # avg pools keep a constant (padding not counted)
    assert torch.allclose(NB201Cell(parse_arch(uniform("avg_pool_3x3")), 2, 2)(const), 4 * const)


def test_all_none_network_outputs_classifier_bias() -> None:
    model = SPACE.to_module(uniform("none"), num_classes=5, C=4, N=1).eval()
    out = model(torch.randn(2, 3, 8, 8))
    assert torch.equal(out, model.classifier.bias.detach().expand(2, 5))


def test_bn_flags_and_macro_options() -> None:
    model = SPACE.to_module(CONV3, num_classes=3, C=4, N=2, affine=False, track_running_stats=False)
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns and all(m.weight is None and m.running_mean is None for m in bns)
    assert tuple(model(torch.randn(2, 3, 8, 8)).shape) == (2, 3)
    cells = [m for m in model.modules() if isinstance(m, NB201Cell)]
    assert len(cells) == 3 * 2
    assert sum(isinstance(m, nn.ReLU) and m.inplace for m in model.modules()) == 0
    with pytest.raises(ConfigError, match="unknown option"):
        SPACE.to_module(CONV3, num_classes=3, width=4)
    with pytest.raises(ConfigError, match="num_classes"):
        NB201Network(parse_arch(CONV3), 0)


# ------------------------------------------------------------------------- network="zero_cost_nas" option
# (logit-for-logit equality with zero-cost-nas's nasbench2: tests/parity/test_nasbench2_network.py)
@pytest.mark.parametrize(
    "arch,conv3,conv1",
    [(uniform("nor_conv_3x3"), 6, 0), (uniform("nor_conv_1x1"), 0, 6), (OFFICIAL[6111], 4, 1),
     (uniform("skip_connect"), 0, 0)],
)
def test_zero_cost_nas_param_counts_c16_n5(arch: str, conv3: int, conv1: int) -> None:
    model = SPACE.to_module(arch, num_classes=10, network="zero_cost_nas")
    # each cell conv trades its BN's weight + bias (2 * c) for a conv bias (c)
    cell_convs = sum(5 * (conv3 + conv1) * 16 * 2**s for s in range(3))
    assert sum(p.numel() for p in model.parameters()) == nb201_param_count(conv3, conv1) - cell_convs


def test_zero_cost_nas_changes_only_cell_convs_and_bns() -> None:
    model = SPACE.to_module(CONV3, num_classes=3, C=4, N=2, network="zero_cost_nas")
    bench = SPACE.to_module(CONV3, num_classes=3, C=4, N=2)
    in_cells = {id(m) for c in model.modules() if isinstance(c, NB201Cell) for m in c.modules()}
    for (name, m), (_, b) in zip(model.named_modules(), bench.named_modules()):
        assert type(m) is type(b), name
        if isinstance(m, nn.Conv2d):
            assert (m.bias is not None) == (id(m) in in_cells) and b.bias is None, name
        if isinstance(m, nn.BatchNorm2d):
            cell = id(m) in in_cells
            assert (m.affine, m.track_running_stats) == (not cell, not cell), name
            assert b.affine and b.track_running_stats, name
    assert model.network == "zero_cost_nas" and bench.network == "benchmark"
    # the cell BNs have no running statistics: eval mode normalises each batch by its own statistics too
    x = torch.randn(4, 3, 8, 8)
    assert torch.isfinite(model.eval()(x)).all() and tuple(model(x).shape) == (4, 3)
    assert tuple(model.train()(x).shape) == (4, 3)
    thin = SPACE.to_module(CONV3, num_classes=3, network="zero_cost_nas", **SPACE.thin_kwargs())
    assert tuple(thin(torch.randn(2, 1, 3, 3)).shape) == (2, 3)


def test_network_option_is_validated_everywhere() -> None:
    with pytest.raises(ConfigError, match="'benchmark', 'zero_cost_nas'.*got 'nasbench2'"):
        SPACE.to_module(CONV3, num_classes=3, network="nasbench2")
    with pytest.raises(ConfigError, match="'benchmark', 'zero_cost_nas'"):
        NB201Space(network="zero-cost-nas")
    with pytest.raises(ConfigError, match="'benchmark', 'zero_cost_nas'"):
        create_space("nb201", network="")
    with pytest.raises(ConfigError, match="fixes its BatchNorms"):
        SPACE.to_module(CONV3, num_classes=3, network="zero_cost_nas", affine=False)
    with pytest.raises(ConfigError, match="fixes its BatchNorms"):
        SPACE.to_module(CONV3, num_classes=3, network="zero_cost_nas", track_running_stats=False)
    space = create_space("nb201", network="zero_cost_nas", C=4, N=1)
    assert space.macro["network"] == "zero_cost_nas"  # type: ignore[attr-defined]
    assert space.to_module(CONV3, num_classes=2).network == "zero_cost_nas"
    assert space.to_module(CONV3, num_classes=2, network="benchmark").network == "benchmark"
    assert SPACE.macro["network"] == "benchmark" and SPACE.to_module(CONV3, num_classes=2).network == "benchmark"


def test_score_network_flag_reaches_space_kwargs(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from raynas.cli.main import build_parser, main
    from raynas.cli.score_cmd import config_from_args
    from raynas.parallel.config import ScoreConfig

    args = build_parser().parse_args(["score", "--sample", "1", "--out", "x", "--N", "1", "--network", "zero_cost_nas"])
    cfg = config_from_args(args)
    assert cfg["space_kwargs"] == {"N": 1, "network": "zero_cost_nas"}
    assert ScoreConfig.from_dict(cfg).identity()["space_kwargs"] == {"N": 1, "network": "zero_cost_nas"}
    assert "space_kwargs" not in config_from_args(build_parser().parse_args(["score", "--sample", "1", "--out", "x"]))
    rc = main(["score", "--sample", "1", "--C", "2", "--N", "1", "--batch-size", "4", "--image-size", "8",
               "--workers", "0", "--metrics", "params", "--network", "bogus", "--no-progress",
               "--out", str(tmp_path / "run")])
    assert rc == 2 and "'benchmark', 'zero_cost_nas'" in capsys.readouterr().err
    assert not (tmp_path / "run" / "config.json").exists()


# ------------------------------------------------------------------------------------------------- spec
def test_spec_file_round_trip(tmp_path: Path) -> None:
    import yaml

    path = builtin_spec_path("nb201")
    spec = load_space_spec(path)
    assert spec.name == "nb201" and spec.kind == "nb201" and spec.nodes == 4
    assert spec.ops == ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
    assert (spec.macro.C, spec.macro.N, spec.macro.stages, spec.macro.reduction) == (16, 5, 3, "resnet_basic")
    assert (spec.input.channels, spec.input.size) == (3, 32)
    as_dict = spec_to_dict(spec)
    assert as_dict == yaml.safe_load(path.read_text())
    copy = tmp_path / "copy.yaml"
    copy.write_text(yaml.safe_dump(as_dict))
    assert load_space_spec(copy) == spec == parse_space_spec(as_dict)


def test_specs_ship_once_inside_the_package() -> None:
    assert SPEC_DIRS == (Path(raynas.spaces.__file__).parent / "specs",)
    assert not (Path(raynas.spaces.__file__).parents[2] / "spaces").exists()  # no second copy to drift
    assert sorted(p.stem for p in SPEC_DIRS[0].glob("*.yaml")) == ["darts_cifar", "darts_imagenet", "nb101", "nb201"]


@pytest.mark.parametrize(
    "change,error,message",
    [
        ({"colour": "red"}, ConfigError, "unknown config key(s) 'colour'"),
        ({"macro": {"C": 16, "N": 5, "depth": 3}}, ConfigError, "macro: NB201MacroSpec: unknown config key(s) 'depth'"),
        ({"input": {"channels": 3, "size": 32, "extra": 1}}, ConfigError, "'extra'"),
        ({"macro": {"C": 0, "N": 5}}, ConfigError, "C must be >= 1"),
        ({"macro": {"C": 16, "N": 5, "reduction": "conv"}}, ConfigError, "reduction"),
        ({"macro": {"C": "16", "N": 5}}, ConfigError, "expected int"),
        ({"nodes": 1}, ConfigError, "nodes must be >= 2"),
        ({"ops": ["none", "none"]}, ConfigError, "distinct"),
        ({"ops": ["none", "conv_3x3"]}, UnknownNameError, "unknown op 'conv_3x3'"),
        ({"kind": "nb210"}, UnknownNameError, "did you mean 'nb201'"),
        ({"input": "cifar"}, ConfigError, "input must be a mapping"),
    ],
)
def test_spec_validation(change: dict, error: type, message: str) -> None:
    data = {**spec_to_dict(load_space_spec(builtin_spec_path("nb201"))), **change}
    with pytest.raises(error) as e:
        parse_space_spec(data)
    assert message in str(e.value)


def test_from_spec_uses_ops_and_macro(tmp_path: Path) -> None:
    import yaml

    data = spec_to_dict(load_space_spec(builtin_spec_path("nb201")))
    data.update(name="nb201_small", ops=["none", "skip_connect", "nor_conv_3x3"], macro={"C": 4, "N": 1})
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump(data))
    space = NB201Space.from_spec(load_space_spec(path))
    assert space.name == "nb201_small" and space.size == 729 and not space.official_order
    model = space.to_module(space.index_to_arch(728), num_classes=2)
    assert model.stem[0].out_channels == 4 and len(model.cells) == 3 * 1 + 2
    with pytest.raises(InvalidArchitectureError, match="unknown op 'nor_conv_1x1'"):
        space.parse(uniform("nor_conv_1x1"))


def test_create_space_overrides() -> None:
    space = create_space("nb201", C=8, N=1)
    assert space.size == 15625 and space.official_order  # type: ignore[attr-defined]
    assert space.to_module(CONV3, num_classes=2).stem[0].out_channels == 8
    with pytest.raises(ConfigError, match="unknown option"):
        create_space("nb201", width=8)


def test_sampling_is_deterministic() -> None:
    assert SPACE.sample_indices(5, seed=3) == SPACE.sample_indices(5, seed=3)
    arch = SPACE.sample(__import__("numpy").random.default_rng(0))
    assert isinstance(arch, NB201Arch) and 0 <= SPACE.arch_to_index(arch) < 15625


def test_thin_network_is_tenas_one_cell_without_stem() -> None:
    # TE-NAS's model_config_thin: C=1, N=1, depth=1, use_stem=False -> one cell on the 1-channel input
    from raynas.errors import ConfigError

    thin = SPACE.to_module(CONV3, num_classes=3, **SPACE.thin_kwargs())
    assert isinstance(thin.stem, torch.nn.Identity) and len(thin.cells) == 1
    assert tuple(thin(torch.randn(5, 1, 3, 3)).shape) == (5, 3)
    with pytest.raises(ConfigError, match="in_channels must equal C"):
        SPACE.to_module(CONV3, num_classes=3, stem=False, C=4, in_channels=3)
