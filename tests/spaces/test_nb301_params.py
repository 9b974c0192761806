"""DARTS cross-check with NAS-Bench-Suite-Zero's 725 NB301 genotypes: parameter counts, exactly explained.

NASLib's NB301 network (``naslib/search_spaces/nasbench301/graph.py``, as NB-Suite-Zero scored it) is the DARTS
CIFAR network of 8 cells (reductions at cells 2 and 5) at C=32, whose cell ops' BatchNorms are not affine
(``_set_ops``: ``affine=False``), without an auxiliary head. So its ``params`` equal raynas's ``darts_cifar``
network at ``C=32, layers=8`` minus the 2 affine parameters per channel of every BN inside a cell op.
"""

from __future__ import annotations

import ast

import numpy as np
import pytest
import pyarrow.parquet as pq
import torch
import torch.nn as nn

from raynas.spaces import create_space
from raynas.spaces.benchmarks import data_root
from raynas.spaces.darts.genotypes import DartsGenotype

#: NASLib's compact op codes (``convert_compact_to_genotype``)
NASLIB_DARTS_OPS = ("max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5",
                    "dil_conv_3x3", "dil_conv_5x5")


@pytest.fixture(scope="module")
def nb301() -> dict:
    p = data_root() / "nbsz" / "nb301_cifar10.parquet"
    if not p.exists():
        pytest.skip(f"NAS-Bench-Suite-Zero NB301 sample not found at {p} (set RAYNAS_DATA)")
    return pq.read_table(p, columns=["naslib_key", "params"]).to_pydict()


def _genotype(key: str) -> DartsGenotype:
    normal, reduce = ast.literal_eval(key)
    return DartsGenotype.from_pairs([(NASLIB_DARTS_OPS[o], i) for i, o in normal],
                                    [(NASLIB_DARTS_OPS[o], i) for i, o in reduce])


def _counts(net: nn.Module) -> tuple[int, int]:
    total = sum(p.numel() for p in net.parameters())
    cell_bn = sum(p.numel() for c in net.cells for m in c.ops.modules() if isinstance(m, nn.BatchNorm2d)
                  for p in m.parameters())
    return total, cell_bn


def test_params_of_nb301_genotypes_are_naslibs_network(nb301: dict) -> None:
    # every 12th of the 725 rows here (building a network costs ~0.1 s); all 725: scripts/bench_nb101.py --nb301
    space = create_space("darts_cifar")
    keys, params = nb301["naslib_key"][::12], nb301["params"][::12]
    got = []
    for key in keys:
        with torch.device("meta"):
            total, cell_bn = _counts(space.to_module(_genotype(key), 10, C=32, layers=8))
        got.append(total - cell_bn)
    assert len(got) == 61
    assert np.array_equal(np.array(got), np.round(np.array(params) * 1e6).astype(np.int64))


def test_the_explanation_is_needed_the_proxy_network_is_not_naslibs(nb301: dict) -> None:
    # raynas's scoring default (C=16) and the affine BNs alone are both off: neither reproduces the column
    space = create_space("darts_cifar")
    key, want = nb301["naslib_key"][0], round(nb301["params"][0] * 1e6)
    with torch.device("meta"):
        total32, bn32 = _counts(space.to_module(_genotype(key), 10, C=32, layers=8))
        total16, bn16 = _counts(space.to_module(_genotype(key), 10, C=16, layers=8))
    assert bn32 > 0 and total32 != want and total16 - bn16 != want
