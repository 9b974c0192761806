"""NAS-Bench-Suite-Zero-format tables for tests (``raynas.store.published``, ``raynas.spaces.nbsz``): small files
in the layout of ``shared/data/nbsz/`` (README there), made from raynas's own archs so their keys are known."""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from raynas.spaces import create_space
from raynas.spaces.nbsz import NASLIB_DARTS_OPS, NASLIB_NB201_OPS

# NASLib's NB201 tuple lists edges 1<-0, 2<-0, 3<-0, 2<-1, 3<-1, 3<-2; the string 1<-0 | 2<-0, 2<-1 | 3<-0, 3<-1, 3<-2
_STR_TO_NASLIB = (0, 1, 3, 2, 4, 5)


def naslib_nb201_key(arch: str) -> str:
    ops = re.findall(r"\|([a-z_0-9]+)~\d", arch)
    return str(tuple(NASLIB_NB201_OPS.index(ops[k]) for k in _STR_TO_NASLIB))


def naslib_compact(geno) -> str:  # type: ignore[no-untyped-def]
    """The genotype in NASLib's compact form ``[[(input, op code) x 8], [...]]`` (edges in raynas's order)."""
    return str([[(i, NASLIB_DARTS_OPS.index(op)) for op, i in geno.pairs(c)] for c in ("normal", "reduce")])


def proxies(n: int, offset: float = 0.0) -> dict[str, list[float]]:
    """NB-Suite-Zero-style proxy columns (``flops`` MFLOPs, ``params`` millions, ``synflow`` logged) and timings."""
    out: dict[str, list[float]] = {}
    for k, name in enumerate(("grad_norm", "snip", "grasp", "fisher", "jacov", "nwot", "epe_nas", "l2_norm", "plain",
                              "flops")):
        out[name] = [offset + 10.0 * k + r for r in range(n)]
        out[f"{name}_seconds"] = [0.5] * n
    out["params"] = [0.25 + r / 1e6 * 7 for r in range(n)]  # 250000 + 7 r parameters, in millions
    out["synflow"] = [40.0 + r for r in range(n)]
    out["val_accuracy"] = [90.0 + r for r in range(n)]
    return out


def write_nb201(root, indices=(0, 7, 15624), **over) -> list[str]:  # type: ignore[no-untyped-def]
    space = create_space("nb201")
    archs = [space.format(space.index_to_arch(i)) for i in indices]
    cols = {"arch_index": pa.array(indices, pa.int32()), "naslib_key": [naslib_nb201_key(a) for a in archs],
            "arch_str": archs, **proxies(len(indices))}
    cols.update(over)
    (root / "nbsz").mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(cols), root / "nbsz" / "nb201_cifar10.parquet")
    return archs


def nb101_key(matrix, ops) -> str:  # type: ignore[no-untyped-def]
    from raynas.spaces.nb101.benchmark import NASLIB_OPS

    return str(tuple(int(v) for v in np.asarray(matrix).ravel()) + tuple(NASLIB_OPS.index(o) for o in ops))


#: 7-vertex NASLib specs (7x7 adjacency + 7 ops): two keys of one cell (a dangling vertex pruned away, an unused
#: op changed), and another cell
IN, OUT, C3, C1, MP = "input", "output", "conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3"


def adjacency(edges):  # type: ignore[no-untyped-def]
    m = np.zeros((7, 7), int)
    for i, j in edges:
        m[i, j] = 1
    return m


NB101_KEYS = [
    nb101_key(adjacency([(0, 1), (1, 6)]), [IN, C3, C1, C1, C1, C1, OUT]),  # in -> conv3x3 -> out
    nb101_key(adjacency([(0, 1), (1, 6), (0, 2)]), [IN, C3, MP, C1, C1, C1, OUT]),  # + a dead-end vertex 2: same cell
    nb101_key(adjacency([(0, 1), (1, 2), (2, 6)]), [IN, C1, MP, C1, C1, C1, OUT]),  # in -> conv1x1 -> maxpool -> out
]


def write_nb101(root, keys=NB101_KEYS) -> None:  # type: ignore[no-untyped-def]
    cols = {"naslib_key": keys, **{k: v for k, v in proxies(len(keys)).items() if not k.endswith("_seconds")}}
    del cols["nwot"]  # as the real NB101 file: no nwot
    (root / "nbsz").mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(cols), root / "nbsz" / "nb101_cifar10.parquet")


def write_nb301(root, indices=(0, 123456789, 10**18)) -> list:  # type: ignore[no-untyped-def]
    space = create_space("darts_cifar")
    genos = [space.index_to_arch(i) for i in indices]
    cols = {"naslib_key": [naslib_compact(g) for g in genos], **proxies(len(indices))}
    (root / "nbsz").mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(cols), root / "nbsz" / "nb301_cifar10.parquet")
    return genos
