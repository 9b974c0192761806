"""NAS-Bench-101 space: pruning, canonical form and hash, the 423,624-cell enumeration, strings, the network."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from raynas.errors import ConfigError, InvalidArchitectureError
from raynas.spaces import create_space, list_spaces
from raynas.spaces.nb101.space import NUM_CELLS, NB101Space, all_codes, load_nb101_spec
from raynas.spaces.nb101.cell import (
    OPS_NB101, NB101Cell, NoPathError, NotADAGError, TooManyEdgesError, TooManyVerticesError, UnknownOpError,
    code, make_cell, module_hash, parse_cell, prune,
)
from raynas.spaces.nb101.model import NB101Network, param_count, vertex_channels

C3, C1, MP = OPS_NB101

# The Inception-like cell of the benchmark's notebook (NASBench.ipynb, "Basic usage"): as queried, the
# representative the dataset returned for it (module_adjacency / module_operations), its trainable_parameters,
# and its hash (google-research's NAS-Bench-101 evaluation tests mock this cell with that graph_hash).
INCEPTION = ([[0, 1, 1, 1, 0, 1, 0], [0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 1, 0, 0],
              [0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0, 0]],
             ["input", C1, C3, C3, C3, MP, "output"])
INCEPTION_DATASET = ([[0, 1, 1, 1, 1, 0, 0], [0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0, 1],
                      [0, 0, 0, 0, 0, 1, 0], [0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0, 0]],
                     ("input", C3, C1, MP, C3, C3, "output"))
INCEPTION_HASH = "28cfc7874f6d200472e1a9dcd8650aa0"
INCEPTION_PARAMS = 2694282


@pytest.fixture(scope="module")
def space() -> NB101Space:
    return create_space("nb101")


def _permuted(matrix, ops, perm):
    """The same cell with interior vertex ``v`` renamed ``perm[v]`` (the matrix no longer upper triangular in
    general, so only permutations keeping it a DAG in order are returned, else None)."""
    n = len(matrix)
    m = np.zeros((n, n), int)
    new_ops = list(ops)
    for i in range(n):
        new_ops[perm[i]] = ops[i]
        for j in range(n):
            m[perm[i], perm[j]] = matrix[i][j]
    return (m, new_ops) if not np.tril(m).any() else None


def test_enumeration_is_the_benchmarks_count_sorted_and_unique() -> None:
    codes = all_codes()
    assert len(codes) == NUM_CELLS == 423_624
    assert np.all(np.diff(codes) > 0)
    assert not codes.flags.writeable


def test_space_is_registered_with_its_spec(space: NB101Space) -> None:
    assert "nb101" in list_spaces()
    assert space.size == NUM_CELLS and space.name == "nb101"
    spec = load_nb101_spec()
    assert (spec.macro.stem_channels, spec.macro.stacks, spec.macro.cells_per_stack) == (128, 3, 3)
    assert space.macro == {"C": 128, "N": 3, "stacks": 3, "in_channels": 3}
    assert create_space("nb101", C=16, N=1).macro["C"] == 16
    assert space.size_kwargs(C=16, N=5) == {"C": 16}  # a pipeline's generic N (NB201's 5) is not NB101's
    with pytest.raises(ConfigError, match="unknown option"):
        create_space("nb101", layers=3)


def test_spec_is_read_strictly(tmp_path) -> None:
    text = load_nb101_spec.__globals__["builtin_spec_path"]("nb101").read_text()
    bad = tmp_path / "nb101.yaml"
    bad.write_text(text + "extra: 1\n")
    with pytest.raises(ConfigError, match="extra"):
        load_nb101_spec(bad)
    bad.write_text(text.replace("max_edges: 9", "max_edges: 10"))
    with pytest.raises(ConfigError, match="9 edges"):
        load_nb101_spec(bad)


def test_inception_cell_is_the_datasets_representative_with_its_hash_and_params(space: NB101Space) -> None:
    cell = make_cell(*INCEPTION)
    assert [list(r) for r in cell.matrix] == INCEPTION_DATASET[0]
    assert tuple(cell.full_ops()) == INCEPTION_DATASET[1]
    assert cell.module_hash() == INCEPTION_HASH
    assert sum(p.numel() for p in space.to_module(cell, 10).parameters()) == INCEPTION_PARAMS
    assert param_count(cell, 10) == INCEPTION_PARAMS


def test_bijection_on_random_ids_and_edges(space: NB101Space) -> None:
    rng = np.random.default_rng(0)
    ids = [0, 1, space.size - 1, *rng.integers(0, space.size, 300).tolist()]
    for i in ids:
        a = space.index_to_arch(i)
        assert space.arch_to_index(a) == i
        assert space.parse(space.format(a)) == a
        assert space.arch_to_index(space.format(a)) == i
    for bad in (-1, space.size, 1.5, True, "3"):
        with pytest.raises(InvalidArchitectureError):
            space.index_to_arch(bad)


def test_isomorphic_cells_are_one_architecture_with_one_hash(space: NB101Space) -> None:
    rng = np.random.default_rng(1)
    checked = 0
    for i in rng.integers(0, space.size, 60).tolist():
        a = space.index_to_arch(i)
        n = a.num_vertices
        for p in itertools.permutations(range(1, n - 1)):
            got = _permuted(a.matrix, a.full_ops(), (0, *p, n - 1))
            if got is None:
                continue
            b = make_cell(*got)
            assert b == a and hash(b) == hash(a) and space.arch_to_index(b) == i
            assert module_hash(got[0], [OPS_NB101.index(o) for o in got[1][1:-1]]) == a.module_hash()
            checked += 1
    assert checked > 100


def test_hashes_of_distinct_cells_differ(space: NB101Space) -> None:
    ids = np.random.default_rng(2).choice(space.size, 3000, replace=False)
    assert len({space.index_to_arch(int(i)).module_hash() for i in ids}) == 3000


def test_canonical_form_is_the_smallest_code_of_its_orders(space: NB101Space) -> None:
    # the benchmark's generator keeps the first (smallest: vertex count, adjacency bits, labels) order it meets
    for i in np.random.default_rng(3).integers(0, space.size, 40).tolist():
        a = space.index_to_arch(i)
        n = a.num_vertices
        orders = [_permuted(a.matrix, a.full_ops(), (0, *p, n - 1)) for p in itertools.permutations(range(1, n - 1))]
        codes = [code(m.tolist(), [OPS_NB101.index(o) for o in ops[1:-1]]) for m, ops in filter(None, orders)]
        assert a.code == min(codes)


def test_pruning_removes_vertices_off_every_input_output_path() -> None:
    # vertex 2 is a dead end, vertex 3 has no input: both go, leaving input -> 1 -> output
    m = [[0, 1, 0, 0, 0], [0, 0, 1, 0, 1], [0, 0, 0, 0, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0]]
    cell = make_cell(m, [C3, C1, MP])
    assert cell.matrix == ((0, 1, 0), (0, 0, 1), (0, 0, 0)) and cell.ops == (C3,)
    assert prune(m, [C3, C1, MP]).ops == (C3,)


def test_the_edge_limit_applies_after_pruning() -> None:
    # 11 edges, 2 of them into a hanging vertex 5 (no path to the output): 9 after pruning, a valid cell
    m = np.zeros((7, 7), int)
    for i, j in [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3), (3, 6), (0, 4), (4, 6), (1, 5), (2, 5)]:
        m[i, j] = 1
    assert make_cell(m, [C3] * 5).num_edges == 9
    m[0, 6] = 1
    with pytest.raises(TooManyEdgesError, match="10 edges"):
        make_cell(m, [C3] * 5)


@pytest.mark.parametrize("matrix, ops, err, match", [
    ([[0, 1], [1, 0]], [], NotADAGError, "upper triangular"),
    ([[0, 2], [0, 0]], [], NotADAGError, "0 or 1"),
    ([[0, 1, 0], [0, 0, 0], [0, 0, 0]], [C3], NoPathError, "no path"),
    ([[0, 1, 0], [0, 0, 1], [0, 0, 0]], ["conv5x5"], UnknownOpError, "conv5x5"),
    ([[0, 1, 0], [0, 0, 1], [0, 0, 0]], [C3, C1], TooManyVerticesError, "interior ops"),
    (np.triu(np.ones((8, 8), int), 1), [C3] * 6, TooManyVerticesError, "at most 7"),
    ([[0, 1, 0], [0, 0, 1]], [C3], TooManyVerticesError, "square"),
])
def test_invalid_cells_raise_typed_errors(matrix, ops, err, match) -> None:
    with pytest.raises(err, match=match):
        make_cell(matrix, ops)
    assert issubclass(err, InvalidArchitectureError)


def test_direct_construction_only_accepts_canonical_cells() -> None:
    cell = make_cell(*INCEPTION)
    assert NB101Cell(cell.matrix, cell.ops) == cell
    with pytest.raises(InvalidArchitectureError, match="canonical"):
        NB101Cell(tuple(tuple(r) for r in INCEPTION[0]), tuple(INCEPTION[1][1:-1]))


def test_string_form_round_trips_and_is_canonical(space: NB101Space) -> None:
    a = parse_cell("0101/0010/0001/0000|maxpool3x3,conv3x3-bn-relu")
    assert str(a) == "0110/0001/0001/0000|conv3x3-bn-relu,maxpool3x3" or space.parse(str(a)) == a
    assert space.parse(" 01/00 | ") == space.index_to_arch(0)
    for bad, err in [("0110/0001|conv3x3-bn-relu", TooManyVerticesError), ("abc", InvalidArchitectureError),
                     ("011/001/000|conv9", UnknownOpError), ("01/00", InvalidArchitectureError)]:
        with pytest.raises(err):
            space.parse(bad)
    with pytest.raises(InvalidArchitectureError):
        space.format(3)


def test_sample_draws_valid_distinct_cells(space: NB101Space) -> None:
    rng = np.random.default_rng(0)
    cells = [space.sample(rng) for _ in range(50)]
    assert all(isinstance(c, NB101Cell) for c in cells) and len(set(cells)) > 45
    assert len(set(space.sample_indices(100, seed=1))) == 100


def test_vertex_channels_split_the_output_in_vertex_order() -> None:
    # three vertices feed the output: 128 = 43 + 43 + 42, the first ones get the remainder
    m = ((0, 1, 1, 1, 0), (0, 0, 0, 0, 1), (0, 0, 0, 0, 1), (0, 0, 0, 0, 1), (0, 0, 0, 0, 0))
    assert vertex_channels(64, 128, m) == [64, 43, 43, 42, 128]
    # vertex 1 only feeds vertex 2, which alone feeds the output: both are as wide as the output
    m = ((0, 1, 0, 1), (0, 0, 1, 0), (0, 0, 0, 1), (0, 0, 0, 0))
    assert vertex_channels(16, 32, m) == [16, 32, 32, 32]
    # vertex 1 feeds vertex 2 (43 wide) and vertex 3 (43): the max, 43; vertex 2, 3 and 4 split 128
    m = ((0, 1, 0, 0, 0, 0), (0, 0, 1, 1, 0, 0), (0, 0, 0, 0, 0, 1), (0, 0, 0, 0, 1, 1), (0, 0, 0, 0, 0, 1),
         (0, 0, 0, 0, 0, 0))
    assert vertex_channels(64, 128, m) == [64, 43, 43, 43, 42, 128]


def test_network_shapes_any_class_count_and_options(space: NB101Space) -> None:
    cell = make_cell(*INCEPTION)
    x = torch.randn(2, 3, 32, 32)
    assert space.to_module(cell, 10, C=8, N=1)(x).shape == (2, 10)
    assert space.to_module(cell, 100, C=8, N=1)(x).shape == (2, 100)
    assert space.to_module(cell, 3, C=8, N=1, stacks=2, in_channels=1)(torch.randn(2, 1, 15, 15)).shape == (2, 3)
    assert space.to_module(space.index_to_arch(0), 10, C=8, N=1)(x).shape == (2, 10)
    with pytest.raises(ConfigError, match="unknown option"):
        space.to_module(cell, 10, width=3)
    with pytest.raises(ConfigError, match="num_classes"):
        space.to_module(cell, 0)


def test_network_follows_the_benchmarks_module_structure() -> None:
    # input -> 1 (conv3x3) -> output and input -> output: vertex 1 is 128 wide, the output adds a projection
    cell = make_cell([[0, 1, 1], [0, 0, 1], [0, 0, 0]], [C3])
    net = NB101Network(cell, 10, C=4, N=1, stacks=1)
    x = torch.randn(2, 3, 8, 8)
    c = net.layers[0]
    stem = net.stem(x)
    want = c.ops[1](c.proj["1"](stem)) + c.proj["2"](stem)
    assert torch.allclose(c(stem), want)
    # a maxpool vertex between two convs has no parameters; an unconnected-to-input vertex gets no projection
    cell = make_cell([[0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0]], [C1, MP])
    net = NB101Network(cell, 10, C=4, N=1, stacks=1)
    assert sorted(net.layers[0].proj) == ["1"]
    assert param_count(cell, 10, C=4, N=1, stacks=1) == sum(p.numel() for p in net.parameters())


def test_param_count_equals_the_built_network_on_random_cells(space: NB101Space) -> None:
    for i in np.random.default_rng(4).integers(0, space.size, 10).tolist():
        a = space.index_to_arch(i)
        with torch.device("meta"):
            built = sum(p.numel() for p in space.to_module(a, 10).parameters())
        assert param_count(a, 10) == built


def test_module_as_given_keeps_the_vertex_order(space: NB101Space) -> None:
    # the same cell in two orders: the output's inputs split 128 channels differently
    # (a key of NAS-Bench-Suite-Zero's sample; canonical: 01010/00101/00001/00001/00000|conv3x3,conv1x1,maxpool)
    a = [[0, 1, 1, 0, 0], [0, 0, 0, 1, 1], [0, 0, 0, 0, 1], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0]]
    ops = [C3, MP, C1]
    cell = make_cell(a, ops)
    given = sum(p.numel() for p in space.module_as_given(a, ops, 10).parameters())
    canon = sum(p.numel() for p in space.to_module(cell, 10).parameters())
    assert prune(a, ops).canonical() == cell
    assert given == param_count(prune(a, ops), 10) and canon == param_count(cell, 10)
    assert given != canon
