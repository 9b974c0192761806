"""NAS-Bench-101 cells (Ying et al., ICML 2019): labelled DAGs, the benchmark's pruning, canonical form and hash.

A cell is an upper-triangular 0/1 adjacency matrix over at most 7 vertices (vertex 0 the input, the last the
output) with an op on each interior vertex, one of :data:`OPS_NB101`, and at most 9 edges. As the benchmark
does (``model_spec.ModelSpec._prune``), vertices that are not on a path from the input to the output are
removed first; the edge limit applies to the pruned graph (``NASBench._check_spec``). Two cells are one
architecture when their pruned graphs are isomorphic with the same labels.

:class:`NB101Cell` is always stored in **canonical form**: pruned, then the vertex order (input first, output
last, topological) whose :func:`code` is smallest. So ``==`` and ``hash()`` of two cells are graph isomorphism,
and the code of the canonical form is an integer key: the space's index is its rank among all 423,624 codes
(:mod:`raynas.spaces.nb101.space`). The smallest code is the benchmark's own representative: its generator
(``generate_graphs.py``) walks vertex counts, then adjacency bit masks, then labellings (``itertools.product``,
first vertex most significant) in increasing order and keeps the first cell of each hash; the dataset's
``module_adjacency`` / ``module_operations`` and the network it trained are that cell's. The vertex order
matters beyond naming: the output's channels are split over its inputs in vertex order, so two orders of one
cell can differ in parameter count. :meth:`NB101Cell.module_hash` is the benchmark's own key (``hash_module``: MD5
over the iterative vertex hashing), the ``module_hash`` of the official tfrecord.

Code layout (one int64): ``n << 31 | adjacency << 10 | labels``; the adjacency bit of edge ``i -> j`` is
``i + j (j - 1) / 2`` (the benchmark's ``gen_is_edge_fn`` order), the 2-bit label of interior vertex ``v`` sits at
``2 (5 - v)`` (0 conv3x3, 1 conv1x1, 2 maxpool, the benchmark's ``available_ops`` order).
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import re
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from raynas.errors import InvalidArchitectureError

__all__ = [
    "MAX_EDGES", "MAX_VERTICES", "NB101Cell", "NB101CellError", "NoPathError", "NotADAGError", "OPS_NB101", "PrunedSpec",
    "TooManyEdgesError", "TooManyVerticesError", "UnknownOpError", "canonical_codes", "code", "decode",
    "enumerate_codes", "make_cell", "module_hash", "parse_cell", "prune",
]

#: the benchmark's ``available_ops``, in its order (the label of each op is its position)
OPS_NB101: tuple[str, ...] = ("conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3")
MAX_VERTICES = 7
MAX_EDGES = 9
INPUT, OUTPUT = "input", "output"

_N_SHIFT, _ADJ_SHIFT = 31, 10
#: the last interior vertex a cell can have; vertex ``v``'s label sits at bits ``2 (_LAST - v)``
_LAST = MAX_VERTICES - 2


class NB101CellError(InvalidArchitectureError):
    """An NB101 cell the benchmark does not contain (base of the specific errors below)."""


class TooManyEdgesError(NB101CellError):
    """More than :data:`MAX_EDGES` edges after pruning."""


class TooManyVerticesError(NB101CellError):
    """More than :data:`MAX_VERTICES` vertices, or a matrix that is not square / does not match the ops."""


class NotADAGError(NB101CellError):
    """Entries on or below the diagonal: not an upper-triangular DAG with the input first and output last,
    or entries other than 0/1."""


class NoPathError(NB101CellError):
    """No path from the input to the output: nothing is left after pruning."""


class UnknownOpError(NB101CellError):
    """An interior op not in :data:`OPS_NB101` (or ``input``/``output`` misplaced)."""


def _bit(i: int, j: int) -> int:
    return i + j * (j - 1) // 2


@dataclass(frozen=True)
class NB101Cell:
    """A pruned NB101 cell in canonical vertex order (build one with :func:`make_cell`; see module docstring).

    ``matrix``: rows of the ``n x n`` adjacency (``matrix[i][j] == 1``: edge ``i -> j``); ``ops``: the ``n - 2``
    interior ops (input and output carry none).
    """

    matrix: tuple[tuple[int, ...], ...]
    ops: tuple[str, ...]

    def __post_init__(self) -> None:
        canon = _canonical(self.matrix, self.ops)
        if canon != (self.matrix, self.ops):
            raise InvalidArchitectureError(
                "NB101Cell holds canonical cells only; build it with make_cell(matrix, ops)")

    @property
    def num_vertices(self) -> int:
        return len(self.matrix)

    @property
    def num_edges(self) -> int:
        return sum(map(sum, self.matrix))

    @property
    def labels(self) -> tuple[int, ...]:
        """The interior ops as the benchmark's labels (positions in :data:`OPS_NB101`)."""
        return tuple(OPS_NB101.index(o) for o in self.ops)

    def full_ops(self) -> list[str]:
        """``["input", *ops, "output"]``: the ops list of the benchmark's ``ModelSpec``."""
        return [INPUT, *self.ops, OUTPUT]

    def numpy(self) -> np.ndarray:
        return np.array(self.matrix, dtype=np.int8)

    @property
    def code(self) -> int:
        return code(self.matrix, self.labels)

    def module_hash(self) -> str:
        """The benchmark's graph hash of this cell (``hash_spec``; the official tfrecord's key)."""
        return module_hash(self.matrix, self.labels)

    def __str__(self) -> str:
        rows = "/".join("".join(map(str, r)) for r in self.matrix)
        return f"{rows}|{','.join(self.ops)}"


# --- building and canonical form -----------------------------------------------------------------------------
@dataclass(frozen=True)
class PrunedSpec:
    """A cell pruned as the benchmark's ``ModelSpec`` prunes it, vertex order kept (not canonical).

    The network of a cell depends on its vertex order (channels are split over the output's inputs in that
    order), so a network built from the order a table was computed in needs this, not the canonical cell.
    """

    matrix: tuple[tuple[int, ...], ...]
    ops: tuple[str, ...]

    def canonical(self) -> NB101Cell:
        return make_cell(self.matrix, self.ops)


def prune(matrix: Any, ops: Sequence[str]) -> PrunedSpec:
    """``(matrix, ops)`` validated and pruned, in their own vertex order; raises as :func:`make_cell`."""
    m, labels = _validate(matrix, ops)
    m, labels = _prune(m, labels)
    n_edges = int(m.sum())
    if n_edges > MAX_EDGES:
        raise TooManyEdgesError(f"NB101 cell has {n_edges} edges after pruning, at most {MAX_EDGES} allowed")
    return PrunedSpec(tuple(tuple(int(x) for x in r) for r in m), tuple(OPS_NB101[v] for v in labels))


def make_cell(matrix: Any, ops: Sequence[str]) -> NB101Cell:
    """The canonical cell of an adjacency matrix and its ops, pruned as the benchmark prunes.

    ``ops`` lists every vertex's op (``["input", ..., "output"]``, the benchmark's form) or only the interior
    ones. Raises a :class:`NB101CellError` subclass for a cell the benchmark does not have.
    """
    p = prune(matrix, ops)
    mat, lab = _canonical_arrays(np.array(p.matrix, np.int8), [OPS_NB101.index(o) for o in p.ops])
    return _new(mat, lab)


def _new(matrix: np.ndarray, labels: Sequence[int]) -> NB101Cell:
    cell = object.__new__(NB101Cell)
    object.__setattr__(cell, "matrix", tuple(tuple(int(x) for x in r) for r in matrix))
    object.__setattr__(cell, "ops", tuple(OPS_NB101[int(v)] for v in labels))
    return cell


def _validate(matrix: Any, ops: Sequence[str]) -> tuple[np.ndarray, list[int]]:
    try:
        m = np.asarray(matrix)
    except (TypeError, ValueError) as e:
        raise NotADAGError(f"NB101 adjacency matrix is not a 0/1 matrix: {e}") from None
    if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] < 2:
        raise TooManyVerticesError(f"NB101 adjacency matrix must be square with at least 2 vertices, got shape "
                                   f"{m.shape}")
    n = m.shape[0]
    if n > MAX_VERTICES:
        raise TooManyVerticesError(f"NB101 cell has {n} vertices, at most {MAX_VERTICES} allowed")
    if m.dtype == bool:
        m = m.astype(np.int64)
    if m.dtype.kind not in "iu" or not np.isin(m, (0, 1)).all():
        raise NotADAGError(f"NB101 adjacency matrix entries must be 0 or 1, got {m.tolist()}")
    if np.tril(m).any():
        raise NotADAGError("NB101 adjacency matrix must be strictly upper triangular (a DAG with the input "
                           f"first and the output last), got {m.tolist()}")
    ops = list(ops) if not isinstance(ops, str) else [ops]
    if len(ops) == n and ops[:1] == [INPUT] and ops[-1:] == [OUTPUT]:
        ops = ops[1:-1]
    if len(ops) != n - 2:
        raise TooManyVerticesError(f"NB101 cell of {n} vertices needs {n - 2} interior ops (or {n} with input "
                                   f"and output), got {len(ops)}")
    bad = [o for o in ops if o not in OPS_NB101]
    if bad:
        raise UnknownOpError(f"NB101 op(s) {bad} unknown; interior ops are {list(OPS_NB101)}")
    return m.astype(np.int8), [OPS_NB101.index(o) for o in ops]


def _prune(m: np.ndarray, labels: list[int]) -> tuple[np.ndarray, list[int]]:
    """Keep the vertices on an input -> output path (the benchmark's ``_prune``); NoPathError when none."""
    n = m.shape[0]
    fwd = np.zeros(n, bool)
    fwd[0] = True
    for v in range(1, n):
        fwd[v] = bool((m[:v, v].astype(bool) & fwd[:v]).any())
    bwd = np.zeros(n, bool)
    bwd[n - 1] = True
    for v in range(n - 2, -1, -1):
        bwd[v] = bool((m[v, v + 1:].astype(bool) & bwd[v + 1:]).any())
    keep = fwd & bwd
    if not keep[0]:
        raise NoPathError("NB101 cell has no path from its input to its output")
    idx = np.flatnonzero(keep)
    full = [-1, *labels, -2]
    return m[np.ix_(idx, idx)], [full[i] for i in idx[1:-1]]


@functools.lru_cache(maxsize=None)
def _perm_tables(n: int) -> tuple[np.ndarray, np.ndarray]:
    """For every order of the interior vertices of an ``n``-vertex cell: the new bit of each old edge bit
    (``[P, n(n-1)/2]`` weights, an edge that would point backwards weighs ``2**40``) and each old interior
    vertex's new label weight (``[P, n - 2]`` weights ``4**(5 - new)``)."""
    edges = [(i, j) for j in range(n) for i in range(j)]  # ordered by bit index
    perms = [(0, *p, n - 1) for p in itertools.permutations(range(1, n - 1))]
    adj = np.zeros((len(perms), len(edges)), np.int64)
    lab = np.zeros((len(perms), max(n - 2, 0)), np.int64)
    for k, p in enumerate(perms):
        for e, (i, j) in enumerate(edges):
            adj[k, e] = (1 << _bit(p[i], p[j])) if p[i] < p[j] else (1 << 40)
        for v in range(1, n - 1):
            lab[k, v - 1] = 4 ** (_LAST - p[v])
    return adj, lab


def _edge_bits(m: np.ndarray) -> np.ndarray:
    """``[..., n(n-1)/2]`` edge indicators of ``[..., n, n]`` matrices in bit order."""
    n = m.shape[-1]
    return np.stack([m[..., i, j] for j in range(n) for i in range(j)], axis=-1).astype(np.int64)


def canonical_codes(matrices: np.ndarray, labels: np.ndarray, *, paired: bool = False) -> np.ndarray:
    """Canonical codes of pruned cells of one size ``n`` (the minimum over vertex orders): ``matrices
    [G, n, n]`` and ``labels [L, n - 2]`` give the ``[G, L]`` codes of every matrix with every labelling, or
    with ``paired`` (``L == G``) the ``[G]`` codes of matrix ``g`` with labelling ``g``."""
    n = matrices.shape[-1]
    adj_w, lab_w = _perm_tables(n)
    adj = _edge_bits(matrices) @ adj_w.T  # [G, P]
    adj = np.where(adj >= 1 << 40, np.int64(1) << 50, adj << _ADJ_SHIFT)
    lab = labels.astype(np.int64) @ lab_w.T if n > 2 else np.zeros((len(labels), 1), np.int64)  # [L, P]
    if paired:
        return (adj + lab).min(axis=1) | (np.int64(n) << _N_SHIFT)
    out = np.empty((matrices.shape[0], len(labels)), np.int64)
    step = max(1, 2_000_000 // (len(labels) * adj.shape[1]))
    for s in range(0, len(adj), step):
        out[s:s + step] = (adj[s:s + step, None, :] + lab[None, :, :]).min(axis=2)
    return out | (np.int64(n) << _N_SHIFT)


def _canonical_arrays(m: np.ndarray, labels: Sequence[int]) -> tuple[np.ndarray, list[int]]:
    c = int(canonical_codes(m[None], np.array([labels], np.int64).reshape(1, -1))[0, 0])
    return decode(c)


def _canonical(matrix: Any, ops: Sequence[str]) -> tuple[tuple[tuple[int, ...], ...], tuple[str, ...]]:
    try:
        cell = make_cell(matrix, ops)
    except NB101CellError:
        return ((), ())
    return cell.matrix, cell.ops


def code(matrix: Sequence[Sequence[int]], labels: Sequence[int]) -> int:
    """The int64 code of a cell *as given* (no pruning, no reordering); see the module docstring."""
    n = len(matrix)
    c = n << _N_SHIFT
    for j in range(n):
        for i in range(j):
            if matrix[i][j]:
                c |= 1 << (_bit(i, j) + _ADJ_SHIFT)
    for v, lab in enumerate(labels, start=1):
        c |= int(lab) << (2 * (_LAST - v))
    return c


def decode(c: int) -> tuple[np.ndarray, list[int]]:
    """``(matrix [n, n] int8, labels)`` of a code (inverse of :func:`code`)."""
    c = int(c)
    n = c >> _N_SHIFT
    m = np.zeros((n, n), np.int8)
    for j in range(n):
        for i in range(j):
            m[i, j] = (c >> (_bit(i, j) + _ADJ_SHIFT)) & 1
    labels = [(c >> (2 * (_LAST - v))) & 3 for v in range(1, n - 1)]
    return m, labels


def cell_from_code(c: int) -> NB101Cell:
    """The cell of a canonical code (no check that it is canonical: codes come from :func:`enumerate_codes`)."""
    m, labels = decode(c)
    return _new(m, labels)


# --- the benchmark's hash -------------------------------------------------------------------------------------
def module_hash(matrix: Sequence[Sequence[int]], labels: Sequence[int]) -> str:
    """The benchmark's isomorphism-invariant MD5 fingerprint (``graph_util.hash_module``) of a pruned cell.

    Vertex labels are ``-1`` (input), the interior labels, ``-2`` (output). Each vertex starts from the MD5 of
    the text ``(out_degree, in_degree, label)``; for ``n`` rounds it becomes the MD5 of its in-neighbours'
    sorted hashes, ``|``, its out-neighbours' sorted hashes, ``|``, its own hash; the fingerprint is the MD5 of
    the Python text of the sorted final hashes.
    """
    m = np.asarray(matrix, dtype=np.int64)
    n = m.shape[0]
    full = [-1, *(int(v) for v in labels), -2]
    ins, outs = m.sum(axis=0), m.sum(axis=1)

    def md5(s: str) -> str:
        return hashlib.md5(s.encode("utf-8")).hexdigest()

    h = [md5(f"({int(outs[v])}, {int(ins[v])}, {full[v]})") for v in range(n)]
    preds = [[w for w in range(n) if m[w, v]] for v in range(n)]
    succs = [[w for w in range(n) if m[v, w]] for v in range(n)]
    for _ in range(n):
        h = [md5("".join(sorted(h[w] for w in preds[v])) + "|" + "".join(sorted(h[w] for w in succs[v])) + "|"
                 + h[v]) for v in range(n)]
    return md5(str(sorted(h)))


# --- enumeration ----------------------------------------------------------------------------------------------
def _full_dags(n: int) -> np.ndarray:
    """All ``[G, n, n]`` upper-triangular matrices whose every vertex is on an input -> output path
    (no empty row but the last, no empty column but the first) with at most :data:`MAX_EDGES` edges."""
    k = n * (n - 1) // 2
    bits = np.arange(1 << k, dtype=np.int64)
    pop = np.zeros_like(bits)
    for b in range(k):
        pop += (bits >> b) & 1
    bits = bits[pop <= MAX_EDGES]
    m = np.zeros((len(bits), n, n), np.int8)
    for j in range(n):
        for i in range(j):
            m[:, i, j] = (bits >> _bit(i, j)) & 1
    ok = m[:, :-1, :].any(axis=2).all(axis=1) & m[:, :, 1:].any(axis=1).all(axis=1)
    return m[ok]


def enumerate_codes() -> np.ndarray:
    """Sorted canonical codes of every NB101 cell (423,624 of them): each full DAG of 2..7 vertices with at
    most 9 edges, with every labelling, reduced to its canonical code, deduplicated."""
    out = []
    for n in range(2, MAX_VERTICES + 1):
        mats = _full_dags(n)
        labels = np.array(list(itertools.product(range(len(OPS_NB101)), repeat=n - 2)), np.int64)
        labels = labels.reshape(len(labels), n - 2)
        out.append(np.unique(canonical_codes(mats, labels)))
    return np.unique(np.concatenate(out))


# --- string form ----------------------------------------------------------------------------------------------
_STR = re.compile(r"^\s*([01]+(?:/[01]+)*)\s*\|\s*(.*?)\s*$")


def parse_cell(text: str) -> NB101Cell:
    """Cell from ``"<rows of the adjacency joined by '/'>|<interior ops joined by ','>"``, e.g.
    ``"0110/0001/0001/0000|conv3x3-bn-relu,maxpool3x3"`` (any vertex order; the result is canonical)."""
    if not isinstance(text, str):
        raise InvalidArchitectureError(f"NB101 cell string expected, got {type(text).__name__}")
    mt = _STR.match(text)
    if not mt:
        raise InvalidArchitectureError(
            f"malformed NB101 cell {text!r}: expected 'ROW/ROW/...|op,op,...' with 0/1 rows, e.g. "
            "'0110/0001/0001/0000|conv3x3-bn-relu,maxpool3x3'")
    rows = mt.group(1).split("/")
    if any(len(r) != len(rows) for r in rows):
        raise TooManyVerticesError(f"NB101 cell {text!r}: {len(rows)} rows, each must have {len(rows)} entries")
    ops = [o.strip() for o in mt.group(2).split(",")] if mt.group(2) else []
    return make_cell([[int(ch) for ch in r] for r in rows], ops)
