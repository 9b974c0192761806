"""DARTS genotypes (Liu, Simonyan & Yang, ICLR 2019): the value, its strings and its integer index.

A genotype is a normal and a reduction cell. Each cell has ``nodes`` (4) intermediate nodes; node ``k``
sums two edges ``op(state[i])`` whose inputs are DISTINCT states among the ``k + 2`` earlier ones
(``0 = c_{k-2}``, ``1 = c_{k-1}``, ``2..`` the earlier nodes), exactly as DARTS' derivation keeps the two
strongest *different* incoming edges. The cell output concatenates all intermediate nodes
(``concat = [2, ..., nodes + 1]``). ``none`` never appears in a final cell.

Canonical form: the two edges of a node are sorted by ``(input, op)``; since the inputs are distinct that is
simply "lower input first", so every unordered pair of edges has exactly one representation and
``DartsGenotype`` values compare and hash by architecture.

Canonical string (no whitespace; nodes separated by ``|``, the two edges of a node by ``,``)::

    normal=[sep_conv_3x3~0,sep_conv_3x3~1|...|skip_connect~0,dil_conv_3x3~2];reduce=[max_pool_3x3~0,...]

The familiar repr of DARTS' ``Genotype`` namedtuple (edges in any order inside a node, ``*_concat`` given as
a list or ``range(2, 6)``) is accepted too; :func:`to_darts_repr` writes it (canonical edge order).

Index: a mixed-radix number. Node ``k`` of a cell contributes the digits ``(pair, op_lo, op_hi)`` where
``pair`` numbers the unordered input pairs of ``range(k + 2)`` in lexicographic order (``(0,1), (0,2),
(1,2), ...`` as :func:`itertools.combinations` lists them) and ``op_lo``/``op_hi`` are the op positions in the
space's op list for the lower/higher input. Node 0 is the most significant digit of its cell, and
``index = normal_index * cell_size + reduce_index``. Every index is a valid genotype, so drawing a uniform
index draws a uniform genotype.
"""

from __future__ import annotations

import ast
import difflib
import itertools
import math
import re
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from raynas.errors import InvalidArchitectureError
from raynas.spaces.ops import OPS_DARTS

__all__ = [
    "DARTS_FINAL_OPS", "DARTS_V2", "DartsGenotype", "Edge", "Node", "cell_size", "format_genotype",
    "genotype_size", "index_to_genotype", "genotype_to_index", "input_pairs", "parse_genotype", "to_darts_repr",
]

#: the 7 ops of DARTS final cells (the paper's primitives without ``none``), in the paper's order: op digits
DARTS_FINAL_OPS: tuple[str, ...] = tuple(op for op in OPS_DARTS if op != "none")

Edge = tuple[str, int]  # (op, input state)
Node = tuple[Edge, Edge]

_CELLS = ("normal", "reduce")
_OP_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_INT_RE = re.compile(r"[0-9]+\Z")


def input_pairs(k: int) -> tuple[tuple[int, int], ...]:
    """Unordered distinct input pairs of node ``k`` (inputs ``0 .. k+1``), in index order."""
    return tuple(itertools.combinations(range(k + 2), 2))


def _check_edge(cell: str, k: int, edge: Any) -> Edge:
    if not isinstance(edge, (tuple, list)) or len(edge) != 2:
        raise InvalidArchitectureError(f"{cell} node {k}: an edge must be an (op, input) pair, got {edge!r}")
    op, src = edge
    if not isinstance(op, str) or not _OP_RE.match(op):
        raise InvalidArchitectureError(f"{cell} node {k}: op must be an identifier string, got {op!r}")
    if isinstance(src, bool) or not isinstance(src, int) or not 0 <= src < k + 2:
        raise InvalidArchitectureError(
            f"{cell} node {k}: input must be an int in [0, {k + 2}) (c_(k-2), c_(k-1), earlier nodes), got {src!r}"
        )
    return (op, src)


def _canonical_cell(cell: str, nodes: Any) -> tuple[Node, ...]:
    if not isinstance(nodes, (tuple, list)) or not nodes:
        raise InvalidArchitectureError(f"{cell} cell must be a non-empty sequence of nodes, got {nodes!r}")
    out: list[Node] = []
    for k, node in enumerate(nodes):
        if not isinstance(node, (tuple, list)) or len(node) != 2:
            raise InvalidArchitectureError(f"{cell} node {k} must have exactly 2 edges, got {node!r}")
        a, b = sorted((_check_edge(cell, k, e) for e in node), key=lambda e: (e[1], e[0]))
        if a[1] == b[1]:
            raise InvalidArchitectureError(
                f"{cell} node {k} reads input {a[1]} twice; the two edges of a node must come from distinct states"
            )
        out.append((a, b))
    return tuple(out)


@dataclass(frozen=True, order=True)
class DartsGenotype:
    """An immutable DARTS genotype; construction canonicalises every node (lower input first).

    Attributes:
        normal: ``nodes`` pairs of ``(op, input)`` edges of the normal cell.
        reduce: the same for the reduction cell (same node count).
    Op names are checked against a space's op list by the space, not here.
    """

    normal: tuple[Node, ...]
    reduce: tuple[Node, ...]

    def __post_init__(self) -> None:
        normal = _canonical_cell("normal", self.normal)
        reduce = _canonical_cell("reduce", self.reduce)
        if len(normal) != len(reduce):
            raise InvalidArchitectureError(
                f"normal and reduce cells must have the same node count, got {len(normal)} and {len(reduce)}"
            )
        object.__setattr__(self, "normal", normal)
        object.__setattr__(self, "reduce", reduce)

    @classmethod
    def from_pairs(cls, normal: Sequence[Edge], reduce: Sequence[Edge]) -> DartsGenotype:
        """From DARTS' flat edge lists ``[(op, input), ...]`` (2 consecutive edges per node)."""
        return cls(_group(normal, "normal"), _group(reduce, "reduce"))

    @property
    def nodes(self) -> int:
        return len(self.normal)

    @property
    def concat(self) -> tuple[int, ...]:
        """States concatenated into the cell output: every intermediate node."""
        return tuple(range(2, self.nodes + 2))

    def cell(self, name: str) -> tuple[Node, ...]:
        """``"normal"`` or ``"reduce"``."""
        if name not in _CELLS:
            raise InvalidArchitectureError(f"cell must be 'normal' or 'reduce', got {name!r}")
        return self.normal if name == "normal" else self.reduce

    def ops(self) -> tuple[str, ...]:
        """All edge ops, normal then reduce, node by node (``4 * nodes`` names)."""
        return tuple(op for cell in (self.normal, self.reduce) for node in cell for op, _ in node)

    def pairs(self, name: str) -> list[Edge]:
        """DARTS' flat edge list of cell ``name`` (canonical order)."""
        return [e for node in self.cell(name) for e in node]

    def __str__(self) -> str:
        return format_genotype(self)


def _group(edges: Any, cell: str) -> tuple[tuple[Any, Any], ...]:
    if not isinstance(edges, (tuple, list)) or not edges or len(edges) % 2:
        n = len(edges) if isinstance(edges, (tuple, list)) else edges
        raise InvalidArchitectureError(f"{cell}: DARTS lists 2 edges per node, got {n!r} edge(s)")
    return tuple((edges[i], edges[i + 1]) for i in range(0, len(edges), 2))


# --- strings --------------------------------------------------------------------------------------------
def format_genotype(g: DartsGenotype) -> str:
    """Canonical string ``normal=[op~i,op~j|...];reduce=[...]``."""

    def cell(nodes: tuple[Node, ...]) -> str:
        return "|".join(",".join(f"{op}~{src}" for op, src in node) for node in nodes)

    return f"normal=[{cell(g.normal)}];reduce=[{cell(g.reduce)}]"


def to_darts_repr(g: DartsGenotype) -> str:
    """The repr of DARTS' ``Genotype`` namedtuple (canonical edge order), e.g. for DARTS-style code."""
    concat = list(g.concat)
    return (
        f"Genotype(normal={g.pairs('normal')!r}, normal_concat={concat!r}, "
        f"reduce={g.pairs('reduce')!r}, reduce_concat={concat!r})"
    )


def parse_genotype(text: str, ops: Sequence[str] | None = DARTS_FINAL_OPS, nodes: int | None = 4) -> DartsGenotype:
    """Genotype from its canonical string or from a DARTS ``Genotype(...)`` repr.

    ``ops`` (None: any identifier) and ``nodes`` (None: any count) restrict what is accepted. The canonical
    form is parsed strictly (no whitespace, inputs of a node in increasing order) so that each genotype has
    one string; the DARTS repr is lenient about edge order inside a node. Every malformation raises
    :class:`InvalidArchitectureError`.
    """
    if not isinstance(text, str):
        raise InvalidArchitectureError(f"genotype string must be a str, got {type(text).__name__}")
    if text.strip().startswith("Genotype("):
        g = _parse_darts_repr(text.strip())
    else:
        g = _parse_canonical(text)
    check_genotype(g, ops, nodes)
    return g


def check_genotype(g: DartsGenotype, ops: Sequence[str] | None, nodes: int | None) -> None:
    """Raise :class:`InvalidArchitectureError` if ``g`` has another node count or an op outside ``ops``."""
    if nodes is not None and g.nodes != nodes:
        raise InvalidArchitectureError(f"genotype has {g.nodes} node(s) per cell, expected {nodes}")
    if ops is None:
        return
    for name in _CELLS:
        for k, node in enumerate(g.cell(name)):
            for op, src in node:
                if op in ops:
                    continue
                if op == "none":
                    raise InvalidArchitectureError(
                        f"{name} node {k}: op 'none' is not allowed in a final DARTS cell (edge from input {src})"
                    )
                close = difflib.get_close_matches(op, ops, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise InvalidArchitectureError(
                    f"{name} node {k}: unknown op {op!r}{hint}; known ops: {', '.join(ops)}"
                )


def _parse_canonical(text: str) -> DartsGenotype:
    if any(c.isspace() for c in text):
        raise InvalidArchitectureError(f"genotype string {text!r} contains whitespace; the canonical form has none")
    parts = text.split(";")
    if len(parts) != 2:
        raise InvalidArchitectureError(
            f"genotype string {text!r} must be 'normal=[...];reduce=[...]' (one ';'), got {len(parts)} part(s)"
        )
    cells = []
    for name, part in zip(_CELLS, parts):
        prefix = f"{name}=["
        if not part.startswith(prefix) or not part.endswith("]"):
            raise InvalidArchitectureError(f"genotype part {part!r} must look like '{name}=[...]'")
        body = part[len(prefix):-1]
        nodes = []
        for k, group in enumerate(body.split("|")):
            tokens = group.split(",")
            if len(tokens) != 2:
                raise InvalidArchitectureError(
                    f"{name} node {k} {group!r} must hold exactly 2 edges 'op~i,op~j', got {len(tokens)}"
                )
            edges = []
            for token in tokens:
                op, sep, src = token.partition("~")
                if not sep or not op or not _INT_RE.match(src) or str(int(src)) != src:
                    raise InvalidArchitectureError(f"{name} node {k}: edge {token!r} must look like 'op~<input>'")
                edges.append((op, int(src)))
            if edges[0][1] >= edges[1][1]:
                raise InvalidArchitectureError(
                    f"{name} node {k} {group!r}: list the two inputs in increasing order and distinct "
                    f"(canonical form: lower input first)"
                )
            nodes.append(tuple(edges))
        cells.append(tuple(nodes))
    return DartsGenotype(cells[0], cells[1])


def _parse_darts_repr(text: str) -> DartsGenotype:
    try:
        tree = ast.parse(text, mode="eval").body
    except SyntaxError as e:
        raise InvalidArchitectureError(f"DARTS genotype repr is not valid Python syntax: {e.msg}") from None
    if not (isinstance(tree, ast.Call) and isinstance(tree.func, ast.Name) and tree.func.id == "Genotype"):
        raise InvalidArchitectureError("DARTS genotype repr must be a single Genotype(...) call")
    if tree.args:
        raise InvalidArchitectureError(
            "DARTS genotype repr: pass normal=, normal_concat=, reduce=, reduce_concat= by keyword"
        )
    allowed = ("normal", "normal_concat", "reduce", "reduce_concat")
    values: dict[str, Any] = {}
    for kw in tree.keywords:
        if kw.arg not in allowed or kw.arg in values:
            raise InvalidArchitectureError(
                f"DARTS genotype repr: unexpected or repeated keyword {kw.arg!r}; allowed: {', '.join(allowed)}"
            )
        values[kw.arg] = _literal(kw.value, kw.arg)
    missing = [k for k in ("normal", "reduce") if k not in values]
    if missing:
        raise InvalidArchitectureError(f"DARTS genotype repr lacks {', '.join(missing)}")
    g = DartsGenotype.from_pairs(values["normal"], values["reduce"])
    for key in ("normal_concat", "reduce_concat"):
        if key in values and list(values[key]) != list(g.concat):
            raise InvalidArchitectureError(
                f"DARTS genotype repr: {key}={list(values[key])} but this space concatenates every "
                f"intermediate node {list(g.concat)}"
            )
    return g


def _literal(node: ast.expr, key: str) -> Any:
    """A Python literal, or ``range(a, b)`` (DARTS writes ``normal_concat=range(2, 6)``)."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "range":
        if node.keywords or not 1 <= len(node.args) <= 3:
            raise InvalidArchitectureError(f"DARTS genotype repr: {key} has a malformed range(...)")
        args = [_literal(a, key) for a in node.args]
        if not all(isinstance(a, int) and not isinstance(a, bool) for a in args):
            raise InvalidArchitectureError(f"DARTS genotype repr: {key} range(...) needs int arguments")
        r = range(*args)
        if len(r) > 64:  # a concat list longer than any cell's node count; refuse before building it
            raise InvalidArchitectureError(f"DARTS genotype repr: {key} range(...) is too long ({len(r)} entries)")
        return list(r)
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        raise InvalidArchitectureError(f"DARTS genotype repr: {key} is not a literal") from None


# --- index ----------------------------------------------------------------------------------------------
def node_radix(k: int, n_ops: int) -> int:
    """Choices of node ``k``: unordered distinct input pairs times an op per edge."""
    return math.comb(k + 2, 2) * n_ops * n_ops


def cell_size(n_ops: int, nodes: int) -> int:
    """Number of distinct cells (``1_037_664_180`` for 7 ops and 4 nodes)."""
    return math.prod(node_radix(k, n_ops) for k in range(nodes))


def genotype_size(n_ops: int, nodes: int) -> int:
    """Number of distinct genotypes: ``cell_size ** 2`` (``1_076_746_950_455_072_400`` < 2**63 for DARTS)."""
    return cell_size(n_ops, nodes) ** 2


def _cell_to_index(cell: Iterable[Node], ops: Sequence[str]) -> int:
    n = len(ops)
    value = 0
    for k, ((op_lo, lo), (op_hi, hi)) in enumerate(cell):
        digit = (input_pairs(k).index((lo, hi)) * n + ops.index(op_lo)) * n + ops.index(op_hi)
        value = value * node_radix(k, n) + digit
    return value


def _index_to_cell(value: int, ops: Sequence[str], nodes: int) -> tuple[Node, ...]:
    n = len(ops)
    out: list[Node] = []
    for k in reversed(range(nodes)):  # least significant digit = last node
        value, digit = divmod(value, node_radix(k, n))
        rest, hi_op = divmod(digit, n)
        pair, lo_op = divmod(rest, n)
        lo, hi = input_pairs(k)[pair]
        out.append(((ops[lo_op], lo), (ops[hi_op], hi)))
    return tuple(reversed(out))


def genotype_to_index(g: DartsGenotype, ops: Sequence[str] = DARTS_FINAL_OPS) -> int:
    """Index of ``g`` (ops must all be in ``ops``; see the module docstring for the digit order)."""
    check_genotype(g, ops, None)
    size = cell_size(len(ops), g.nodes)
    return _cell_to_index(g.normal, ops) * size + _cell_to_index(g.reduce, ops)


def index_to_genotype(index: int, ops: Sequence[str] = DARTS_FINAL_OPS, nodes: int = 4) -> DartsGenotype:
    """Inverse of :func:`genotype_to_index`; out-of-range indices raise :class:`InvalidArchitectureError`."""
    size = cell_size(len(ops), nodes)
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < size * size:
        raise InvalidArchitectureError(f"DARTS index must be an int in [0, {size * size}), got {index!r}")
    normal, reduce = divmod(index, size)
    return DartsGenotype(_index_to_cell(normal, ops, nodes), _index_to_cell(reduce, ops, nodes))


#: DARTS (second order) CIFAR-10 cell, as published in the paper's code (``DARTS_V2``)
DARTS_V2 = DartsGenotype.from_pairs(
    normal=[("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1),
            ("sep_conv_3x3", 1), ("skip_connect", 0), ("skip_connect", 0), ("dil_conv_3x3", 2)],
    reduce=[("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 1),
            ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("max_pool_3x3", 1)],
)
