"""NAS-Bench-201 cell architectures as values: the canonical edge order, the immutable :class:`NB201Arch`, its
string form (``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``) and the input-to-output path test.

A leaf module (ops table and errors only) so that the space (:mod:`raynas.spaces.nb201.space`), its networks and its
TE-NAS supernet (:mod:`raynas.spaces.nb201.supernet`) import it without importing one another.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Sequence

from raynas.errors import InvalidArchitectureError
from raynas.spaces.ops import OPS_NB201

__all__ = ["EDGES_NB201", "NB201Arch", "cell_edges", "format_arch", "has_path", "parse_arch"]


def cell_edges(nodes: int) -> tuple[tuple[int, int], ...]:
    """Edges ``(dst, src)`` of a fully connected ``nodes``-node cell in canonical order."""
    return tuple((j, i) for j in range(1, nodes) for i in range(j))


EDGES_NB201 = cell_edges(4)


@dataclass(frozen=True, order=True)
class NB201Arch:
    """An immutable cell: ``ops[e]`` is the op on edge ``cell_edges(nodes)[e]``.

    ``str(arch)`` is the canonical string. Op names are checked against a space's op list by the space.
    """

    ops: tuple[str, ...]

    def __post_init__(self) -> None:
        ops = tuple(self.ops) if isinstance(self.ops, (list, tuple)) else self.ops
        if not isinstance(ops, tuple) or not ops or not all(isinstance(o, str) and o for o in ops):
            raise InvalidArchitectureError(f"NB201Arch needs a non-empty tuple of op names, got {self.ops!r}")
        if _nodes_of(len(ops)) is None:
            raise InvalidArchitectureError(f"{len(ops)} edge ops do not fill a fully connected cell (1, 3, 6, 10, ...)")
        object.__setattr__(self, "ops", ops)

    @property
    def nodes(self) -> int:
        return _nodes_of(len(self.ops))  # type: ignore[return-value]

    def edges(self) -> tuple[tuple[int, int, str], ...]:
        """``(dst, src, op)`` for every edge in canonical order."""
        return tuple((j, i, op) for (j, i), op in zip(cell_edges(self.nodes), self.ops))

    def __str__(self) -> str:
        return format_arch(self)


def _nodes_of(n_edges: int) -> int | None:
    nodes = 2
    while nodes * (nodes - 1) // 2 < n_edges:
        nodes += 1
    return nodes if nodes * (nodes - 1) // 2 == n_edges else None


def format_arch(arch: NB201Arch) -> str:
    """Canonical string ``|op~0|+|op~0|op~1|+...``."""
    groups: dict[int, list[str]] = {}
    for j, i, op in arch.edges():
        groups.setdefault(j, []).append(f"{op}~{i}")
    return "+".join("|" + "|".join(groups[j]) + "|" for j in sorted(groups))


def parse_arch(text: str, ops: Sequence[str] = OPS_NB201, nodes: int = 4) -> NB201Arch:
    """Strict inverse of :func:`format_arch`; every malformation raises :class:`InvalidArchitectureError`."""
    if not isinstance(text, str):
        raise InvalidArchitectureError(f"architecture string must be a str, got {type(text).__name__}")
    if any(c.isspace() for c in text):
        raise InvalidArchitectureError(f"architecture string {text!r} contains whitespace; the canonical form has none")
    groups = text.split("+")
    if len(groups) != nodes - 1:
        raise InvalidArchitectureError(
            f"architecture string {text!r} has {len(groups)} node group(s) separated by '+', expected {nodes - 1}"
        )
    out: list[str] = []
    for j, group in enumerate(groups, start=1):
        if len(group) < 2 or not (group.startswith("|") and group.endswith("|")):
            raise InvalidArchitectureError(f"node {j} group {group!r} must start and end with '|'")
        tokens = group[1:-1].split("|")
        if len(tokens) != j:
            raise InvalidArchitectureError(
                f"node {j} group {group!r} has {len(tokens)} edge(s), expected {j} (inputs 0..{j - 1})"
            )
        for i, token in enumerate(tokens):
            op, sep, src = token.partition("~")
            if not sep or "~" in src:
                raise InvalidArchitectureError(f"edge {token!r} of node {j} must look like 'op~{i}'")
            if op not in ops:
                close = difflib.get_close_matches(op, ops, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise InvalidArchitectureError(
                    f"unknown op {op!r} on edge {j}<-{i}{hint}; known ops: {', '.join(ops)}"
                )
            if src != str(i):
                raise InvalidArchitectureError(
                    f"edge {token!r} of node {j} reads input ~{src}, expected ~{i} "
                    f"(inputs are listed 0..{j - 1} in order)"
                )
            out.append(op)
    return NB201Arch(tuple(out))


def has_path(arch: NB201Arch) -> bool:
    """Whether the cell's input reaches its output through non-``none`` edges.

    A cell without such a path outputs zeros whatever its input (the benchmark keeps these architectures).
    """
    reached = {0}
    for j, i, op in arch.edges():  # canonical order visits every source before its destinations
        if op != "none" and i in reached:
            reached.add(j)
    return arch.nodes - 1 in reached
