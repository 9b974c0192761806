"""The fixed cases of the reference-parity suite (``tests/parity/``, ``scripts/make_parity_fixture.py``).

Each case is a small network of a registered space whose weights, with one batch, are stored in the committed
fixture together with the values the authors' code computes on them. Small widths keep the fixture small;
the metric definitions do not depend on the width.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import torch
import torch.nn as nn

from raynas.spaces import create_space

#: classes of the fixture's batch (and of every case's classifier)
NUM_CLASSES = 10
#: network settings per space: NB201 C=8 with one cell per stage; DARTS C=4 with 5 cells (the last one normal)
NETWORK_KWARGS: dict[str, dict[str, int]] = {"nb201": {"C": 8, "N": 1}, "darts_cifar": {"C": 4, "layers": 5}}


#: NAS-Bench-201 cells by official index (the ones the parity issue measured)
NB201_INDICES = (0, 1, 6111, 9930, 13714, 12345)
#: degenerate NAS-Bench-201 cells, as edge ops (1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2)
NB201_CELLS: dict[str, tuple[str, ...]] = {
    "nb201_all_none": ("none",) * 6,
    "nb201_all_skip": ("skip_connect",) * 6,
    "nb201_skip_none": ("skip_connect", "none", "skip_connect", "none", "none", "skip_connect"),
    # a conv into node 1 that never reaches the output (edges 3<-1 and 3<-2 are none)
    "nb201_dead_conv": ("nor_conv_3x3", "none", "none", "skip_connect", "none", "none"),
    "nb201_all_avg_pool": ("avg_pool_3x3",) * 6,
    "nb201_all_conv3x3": ("nor_conv_3x3",) * 6,
}
#: two DARTS genotypes: DARTS-V2 and the sampler's genotype for seed 3 (dil_conv_5x5 and both pools)
DARTS_GENOTYPES: dict[str, str] = {
    "darts_v2": "normal=[sep_conv_3x3~0,sep_conv_3x3~1|sep_conv_3x3~0,sep_conv_3x3~1|skip_connect~0,"
    "sep_conv_3x3~1|skip_connect~0,dil_conv_3x3~2];reduce=[max_pool_3x3~0,max_pool_3x3~1|max_pool_3x3~1,"
    "skip_connect~2|max_pool_3x3~0,skip_connect~2|max_pool_3x3~1,skip_connect~2]",
    "darts_sampled3": "normal=[max_pool_3x3~0,sep_conv_5x5~1|sep_conv_5x5~0,max_pool_3x3~1|sep_conv_5x5~2,"
    "max_pool_3x3~3|dil_conv_5x5~1,dil_conv_5x5~4];reduce=[dil_conv_3x3~0,sep_conv_3x3~1|skip_connect~1,"
    "dil_conv_3x3~2|dil_conv_3x3~0,sep_conv_5x5~1|avg_pool_3x3~0,sep_conv_3x3~3]",
}


def _nb201(ops: tuple[str, ...]) -> str:
    e = ops
    return f"|{e[0]}~0|+|{e[1]}~0|{e[2]}~1|+|{e[3]}~0|{e[4]}~1|{e[5]}~2|"


def _cases() -> dict[str, tuple[str, str]]:
    nb201 = create_space("nb201")
    out = {f"nb201_{i}": ("nb201", nb201.format(nb201.index_to_arch(i))) for i in NB201_INDICES}
    out.update({k: ("nb201", _nb201(ops)) for k, ops in NB201_CELLS.items()})
    out.update({k: ("darts_cifar", g) for k, g in DARTS_GENOTYPES.items()})
    return out


#: case name -> (space, architecture string)
CASES: dict[str, tuple[str, str]] = _cases()


def build_network(space: str, arch: str, thin: bool = False) -> nn.Module:
    """The case's network (``thin``: the space's thin network, ``thin_kwargs()``, on which the linear regions
    are counted), freshly initialised under the caller's torch seed (weights are loaded by the suite)."""
    s = create_space(space)
    kwargs = s.thin_kwargs() if thin else NETWORK_KWARGS[space]
    return s.to_module(s.parse(arch), NUM_CLASSES, **kwargs)


def fixture_network(arrays: Mapping[str, np.ndarray], case: str, thin: bool = False) -> nn.Module:
    """The case's network (``thin``: its thin network) with the fixture's weights ``arrays`` (the fixture's
    ``case/...`` entries; ``case/thin/...`` for the thin network), loaded strictly."""
    space, arch = CASES[case]
    net = build_network(space, arch, thin=thin)
    prefix = f"{case}/thin/" if thin else f"{case}/"
    state = {k[len(prefix):]: torch.from_numpy(v) for k, v in arrays.items()
             if k.startswith(prefix) and (thin or not k.startswith(f"{case}/thin/"))}
    net.load_state_dict(state, strict=True)
    return net
