"""What a space declares about itself so callers need not know which space it is: the generic network sizes its
``to_module`` takes, and the supernets, defaults and decoding of a TE-NAS pruning search."""

from __future__ import annotations

import pytest
import torch

from raynas.errors import ConfigError, SearchError
from raynas.spaces import create_space
from raynas.spaces.base import PrunableSpace, PruningSupernets, SearchSpace, prunable
from raynas.spaces.ops import OPS_DARTS, OPS_NB201
from raynas.spaces.darts.supernet import DartsSuperNet, darts_edges, node_groups
from raynas.spaces.nb201.supernet import NB201SuperNet


class _LineSpace(SearchSpace):
    """Four archs 0..3 whose network is one Linear layer: the least a space must implement."""

    name = "line"
    size = 4

    def index_to_arch(self, index: int) -> int:
        return index

    def arch_to_index(self, arch: int) -> int:
        return arch

    def parse(self, text: str) -> int:
        return int(text)

    def format(self, arch: int) -> str:
        return str(arch)

    def to_module(self, arch: int, num_classes: int, **kwargs) -> torch.nn.Module:  # type: ignore[no-untyped-def]
        return torch.nn.Linear(arch + 1, num_classes)


def test_network_size_kwargs_are_declared_by_the_space():
    nb, darts = create_space("nb201"), create_space("darts_cifar")
    assert nb.network_size_keys == ("C", "N") and nb.size_kwargs(C=8, N=1) == {"C": 8, "N": 1}
    assert darts.network_size_keys == ("C",) and darts.size_kwargs(C=8, N=1) == {"C": 8}  # DARTS has layers, not N
    assert nb.size_kwargs(C=4) == {"C": 4}  # a size not given is not invented
    assert _LineSpace().size_kwargs(C=4, N=2) == {"C": 4}  # the base class's default: width only
    # what a space declares, its network takes
    assert nb.to_module(nb.index_to_arch(0), 3, **nb.size_kwargs(C=2, N=1)) is not None
    assert darts.to_module(darts.index_to_arch(0), 3, **darts.size_kwargs(C=2, N=1)) is not None


def test_nb201_tenas_supernets():
    space = create_space("nb201")
    assert space.tenas_defaults() == {"batch_size": 72, "prune_number": 1, "C": 3} and not space.tenas_needs_drop_none
    nets = space.tenas_supernets(10, C=3, N=1, in_channels=3)
    assert isinstance(nets, PruningSupernets) and nets.ops == OPS_NB201 and nets.n_edges == 6 and nets.groups == ()
    assert isinstance(nets.ntk_net, NB201SuperNet) and isinstance(nets.thin_net, NB201SuperNet)
    assert nets.ntk_net(torch.randn(2, 3, 8, 8)).shape == (2, 10)
    assert nets.thin_net(torch.randn(2, 1, 3, 3)).shape == (2, 10)  # one 1-channel cell, no stem
    assert len(nets.thin_net.cells) == 1


def test_nb201_arch_from_alive_is_the_official_index():
    space = create_space("nb201")
    arch = space.index_to_arch(4796)
    out = space.arch_from_alive([(op,) for op in arch.ops])
    assert out == {"arch": space.format(arch), "arch_index": 4796}


def test_darts_tenas_supernets():
    space = create_space("darts_cifar")
    assert space.tenas_defaults() == {"batch_size": 14, "prune_number": 3, "C": 1} and space.tenas_needs_drop_none
    nets = space.tenas_supernets(10, C=1, N=1, in_channels=3)
    assert isinstance(nets.ntk_net, DartsSuperNet) and nets.ops == OPS_DARTS
    assert nets.n_edges == 2 * len(darts_edges()) == 28 and nets.groups == node_groups(4)
    assert len(nets.ntk_net.cells) == 2  # one normal, one reduction cell
    assert nets.ntk_net(torch.randn(2, 3, 8, 8)).shape == (2, 10)


def test_darts_arch_from_alive():
    space = create_space("darts_cifar")
    edges = darts_edges()
    keep = [("sep_conv_3x3",) if i < 2 else () for _k, i in edges]  # each node reads c_{k-2} and c_{k-1}
    out = space.arch_from_alive(keep * 2)
    g = space.parse(out["arch"])
    assert set(out) == {"arch", "genotype"} and space.format(g) == out["arch"]
    with pytest.raises(SearchError, match="none"):
        space.arch_from_alive([("none",) if i < 2 else () for _k, i in edges] * 2)


def test_spaces_without_tenas_supernets_say_so():
    imagenet = create_space("darts_imagenet")
    for call in (imagenet.tenas_defaults, lambda: imagenet.tenas_supernets(10, C=1, N=1, in_channels=3),
                 lambda: imagenet.arch_from_alive([])):
        with pytest.raises(ConfigError, match="darts_imagenet"):
            call()
    tiny = _LineSpace()  # a space that does not implement the capability is no PrunableSpace
    assert not isinstance(tiny, PrunableSpace) and not hasattr(tiny, "tenas_supernets")
    with pytest.raises(ConfigError, match="'line' has no TE-NAS supernet"):
        prunable(tiny)
    assert all(isinstance(create_space(n), PrunableSpace) for n in ("nb201", "darts_cifar"))
    assert not isinstance(create_space("nb101"), PrunableSpace)
