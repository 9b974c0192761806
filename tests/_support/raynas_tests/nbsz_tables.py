"""NAS-Bench-Suite-Zero-format tables for tests (``raynas.store.published``, ``raynas.spaces.nbsz``): small files
in the layout of ``shared/data/nbsz/`` (README there), made from raynas's own archs so their keys are known."""

from __future__ import annotations

import re
from pathlib import Path

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


#: NASLib's proxy columns of the TransNAS-Bench-101 tables, in the order :func:`write_tnb101_table` fills them
TNB101_TABLE_PROXIES = ("snip", "grad_norm", "fisher", "grasp", "jacov", "nwot", "plain", "l2_norm", "flops")


def write_tnb101(root: Path, space: str, task: str, indices: tuple[int, ...], values: list[float],
                **over: object) -> list[str]:
    """A ``tnb101_<space>_<task>.parquet`` in NAS-Bench-Suite-Zero's layout (``shared/data/tnb101/``, README
    section tnb101/; micro: also ``zen`` and the final-epoch metric), so the reader is tested without the real files.

    Args:
        root: the data root (``RAYNAS_DATA``); the file goes to ``root/tnb101/``.
        space: ``"micro"`` or ``"macro"``.
        task: a TransNAS-Bench-101 task (its validation metric's name is written).
        indices: raynas arch indices of the rows.
        values: the validation metric of each row.
        **over: columns to replace or add.

    Returns:
        the rows' arch strings. Proxy ``k`` of :data:`TNB101_TABLE_PROXIES` is ``10 k + r`` on row ``r``, ``params``
        ``(250000 + 7 r) / 1e6``, ``epe_nas`` NASLib's -1e8 placeholder; no synflow column (the real files have none).
    """
    from raynas.spaces.tnb101 import TASKS

    sp = create_space(f"tnb101_{space}")
    archs = [sp.format(sp.index_to_arch(i)) for i in indices]
    n = len(archs)
    cols: dict[str, object] = {
        "naslib_key": [str(i) for i in range(n)],
        "arch_index": pa.array([1000 + r for r in range(n)], pa.int64()),  # NASLib's list position, not raynas's
        "file_idx": list(range(n)),
        "arch_str": archs,
    }
    for k, name in enumerate(TNB101_TABLE_PROXIES):
        cols[name] = [10.0 * k + r for r in range(n)]
        cols[f"{name}_time_s"] = [0.5] * n
    cols["params"] = [0.25 + 7 * r / 1e6 for r in range(n)]
    cols["epe_nas"] = [-1e8] * n
    cols["val_metric_best_epoch"] = values
    cols["val_metric_name"] = [TASKS[task].val_metric_name] * n
    if space == "micro":
        cols["arch_readable"] = ["x"] * n
        cols["zen"] = [100.0 + r for r in range(n)]
        cols["val_metric_final_epoch"] = [v - 0.5 for v in values]
    cols.update(over)
    (root / "tnb101").mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(cols), root / "tnb101" / f"tnb101_{space}_{task}.parquet")
    return archs
