"""NB201 and DARTS supernets: shapes, the alive masks, and equality with the plain networks at one op per edge."""

from __future__ import annotations

import pytest
import torch

from raynas.errors import ConfigError, InvalidArchitectureError
from raynas.spaces.darts.genotypes import DARTS_V2
from raynas.spaces.darts.model import DartsNetworkCIFAR
from raynas.spaces.nb201.space import NB201Space
from raynas.spaces.nb201.model import NB201Network
from raynas.spaces.ops import OPS_DARTS, OPS_NB201
from raynas.spaces.darts.supernet import DartsSuperNet, darts_edges, node_groups
from raynas.spaces.nb201.supernet import MixedOp, NB201SuperNet

ARCH = NB201Space().parse(
    "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"
)


def test_nb201_supernet_shapes_and_thin_variant() -> None:
    net = NB201SuperNet(10, C=4, N=1)
    assert net(torch.randn(2, 3, 16, 16)).shape == (2, 10)
    thin = NB201SuperNet(7, C=1, N=1, in_channels=1, use_stem=False, depth=1)
    assert len(thin.cells) == 1 and thin.classifier.in_features == 1
    assert thin(torch.randn(5, 1, 3, 3)).shape == (5, 7)
    # depth 2 keeps the first cell and the first reduction block: features at 2C
    assert NB201SuperNet(3, C=2, N=1, depth=2).classifier.in_features == 4


def test_mixed_op_mean_and_sum_of_alive_ops() -> None:
    x = torch.randn(2, 3, 4, 4)
    for combine, factor in (("mean", 0.5), ("sum", 1.0)):
        m = MixedOp(("none", "skip_connect", "avg_pool_3x3"), 3, 3, 1, combine=combine)
        m.set_alive(["skip_connect", "none"])  # identity + zeros
        assert m.alive == (0, 1)
        assert torch.equal(m(x), x * factor)
    m.set_alive([])
    assert torch.equal(m(x), torch.zeros_like(x))
    with pytest.raises(InvalidArchitectureError, match="sep_conv_3x3"):
        m.set_alive(["sep_conv_3x3"])


def test_nb201_one_op_per_edge_equals_the_network() -> None:
    torch.manual_seed(0)
    sup = NB201SuperNet(10, C=4, N=1)
    sup.set_arch(ARCH)
    net = NB201Network(ARCH, 10, C=4, N=1)
    state = sup.arch_state_dict()
    assert set(state) == set(net.state_dict())
    net.load_state_dict(state)
    x = torch.randn(4, 3, 8, 8)
    for mode in (True, False):
        sup.train(mode), net.train(mode)
        torch.testing.assert_close(sup(x), net(x), rtol=0, atol=0)
    n_net = sum(p.numel() for p in net.parameters())
    n_alive = sum(v.numel() for k, v in state.items() if k in dict(net.named_parameters()))
    assert n_alive == n_net


def test_nb201_set_alive_validates() -> None:
    sup = NB201SuperNet(10, C=2, N=1)
    with pytest.raises(InvalidArchitectureError, match="5 edges"):
        sup.set_alive([OPS_NB201] * 5)
    sup.set_alive([("skip_connect", "nor_conv_1x1")] * 6)
    with pytest.raises(InvalidArchitectureError, match="2 alive ops"):
        sup.arch_state_dict()
    with pytest.raises(ConfigError, match="in_channels == C"):
        NB201SuperNet(10, C=2, N=1, use_stem=False)


def test_darts_edges_and_groups() -> None:
    assert darts_edges(2) == ((0, 0), (0, 1), (1, 0), (1, 1), (1, 2))
    assert len(darts_edges()) == 14
    assert node_groups(4, 2) == (
        (0, 1), (2, 3, 4), (5, 6, 7, 8), (9, 10, 11, 12, 13),
        (14, 15), (16, 17, 18), (19, 20, 21, 22), (23, 24, 25, 26, 27),
    )


def test_darts_supernet_shapes() -> None:
    net = DartsSuperNet(10, C=2, layers=3, stem_multiplier=1, depth=2, lastact=True)
    assert [c.reduction for c in net.cells] == [False, True]
    assert net(torch.randn(2, 3, 8, 8)).shape == (2, 10)
    thin = DartsSuperNet(10, C=1, layers=3, stem_multiplier=1, depth=2, lastact=True, use_stem=False, in_channels=1)
    assert thin(torch.randn(6, 1, 3, 3)).shape == (6, 10)
    with pytest.raises(InvalidArchitectureError, match="expected 28"):
        net.set_alive([OPS_DARTS] * 14)


def _alive_of(genotype) -> list[tuple[str, ...]]:
    alive = []
    for cell in (genotype.normal, genotype.reduce):
        for k, i in darts_edges():
            alive.append(tuple(op for op, src in cell[k] if src == i))
    return alive


def test_darts_one_op_per_kept_edge_equals_the_network() -> None:
    torch.manual_seed(0)
    sup = DartsSuperNet(10, C=2, layers=3)  # cells: normal, reduce, reduce
    sup.set_alive(_alive_of(DARTS_V2))
    net = DartsNetworkCIFAR(DARTS_V2, 10, C=2, layers=3)
    flat = {e: n for n, e in enumerate(darts_edges())}
    sup_state = sup.state_dict()
    state = {}
    for key in net.state_dict():
        parts = key.split(".")
        if parts[0] == "cells" and parts[2] == "ops":
            layer, j = int(parts[1]), int(parts[3])
            cell = DARTS_V2.reduce if sup.cells[layer].reduction else DARTS_V2.normal
            op, src = cell[j // 2][j % 2]
            src_key = f"cells.{layer}.edge_ops.{flat[(j // 2, src)]}.ops.{OPS_DARTS.index(op)}." + ".".join(parts[4:])
            state[key] = sup_state[src_key.rstrip(".")]
        else:
            state[key] = sup_state[key]
    net.load_state_dict(state)
    x = torch.randn(3, 3, 8, 8)
    sup.train(), net.train()
    torch.testing.assert_close(sup(x), net(x), rtol=1e-6, atol=1e-6)
