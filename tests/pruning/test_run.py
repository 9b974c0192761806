"""``raynas.pruning.run`` takes its supernets, defaults and arch decoding from the space (it names none)."""

from __future__ import annotations

import pytest

from raynas.errors import ConfigError, UnknownNameError
from raynas.pruning.run import TenasConfig, build_problem, final_arch, load_batch
from raynas.spaces import DEFAULT_SPACE, create_space


def test_defaults_come_from_the_space():
    assert TenasConfig().space == DEFAULT_SPACE
    for name in ("nb201", "darts_cifar"):
        want = create_space(name).tenas_defaults()
        assert {k: TenasConfig(space=name).resolved(k) for k in want} == want
    assert TenasConfig(space="darts_cifar", C=2).resolved("C") == 2  # an explicit value wins


def test_spaces_without_supernets_are_refused_up_front():
    with pytest.raises(ConfigError, match="darts_imagenet"):
        TenasConfig(space="darts_imagenet")
    with pytest.raises(UnknownNameError, match="did you mean 'nb201'"):
        TenasConfig(space="nb2o1")


def test_build_problem_and_final_arch_are_the_spaces():
    cfg = TenasConfig(data="noise", batch_size=4, input_size=8, C=2)
    ntk, thin, start, groups = build_problem(cfg, load_batch(cfg))
    space = create_space(cfg.space)
    nets = space.tenas_supernets(10, C=2, N=1, in_channels=3)
    assert type(ntk) is type(nets.ntk_net) and type(thin) is type(nets.thin_net) and groups == nets.groups
    assert len(start) == nets.n_edges and all("none" not in ops for ops in start)  # drop_none by default
    alive = tuple((ops[0],) for ops in start)
    assert final_arch(cfg, alive) == space.arch_from_alive(alive)
