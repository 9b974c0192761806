"""TransNAS-Bench-101 architectures: their strings, values and stable integer indices.

Both spaces share TransNAS-Bench-101's own architecture string ``"<C>-<macro digits>-<cell>"``:

``tnb101_micro`` (4,096 cells)
    ``64-41414-a_bc_def``: the fixed skeleton ``41414`` (five modules of two cells) and a 4-node cell whose six
    edges are written node by node: ``a`` = 1<-0; ``bc`` = 2<-0, 2<-1; ``def`` = 3<-0, 3<-1, 3<-2. Each digit
    is an op: 0 ``none``, 1 ``skip_connect``, 2 ``conv1x1``, 3 ``conv3x3``. Index: the six digits read as a
    base-4 number, ``a`` most significant (``64-41414-0_00_000`` is 0, ``64-41414-3_33_333`` is 4,095).
``tnb101_macro`` (3,256 skeletons)
    ``64-<digits>-basic``: 4 to 6 modules of two ResNet basic blocks; each digit says what the module does to
    its input: 1 nothing, 2 doubles the channels, 3 halves the resolution (stride 2), 4 both. A valid skeleton
    has 1 to 4 resolution halvings (digits 3/4) and 1 to 3 channel doublings (digits 2/4), as the benchmark.
    Index: the position in the list of all valid skeletons sorted by length, then as strings
    (``64-1114-basic`` ... ``64-444222-basic``); TransNAS-Bench-101 has no index of its own, so this order is
    raynas's, and stable because it depends on the strings alone.
"""

from __future__ import annotations

import functools
import itertools
import re
from dataclasses import dataclass

from raynas.errors import InvalidArchitectureError

__all__ = [
    "BASE_CHANNELS", "MACRO_LENGTHS", "MICRO_EDGES", "MICRO_OPS", "MICRO_SKELETON", "TNB101MacroArch",
    "TNB101MicroArch", "macro_codes", "macro_index", "micro_index", "micro_from_index", "parse_macro", "parse_micro",
]

#: channels after the stem: the ``64`` that starts every TransNAS-Bench-101 string
BASE_CHANNELS = 64
#: the micro space's fixed module skeleton
MICRO_SKELETON = (4, 1, 4, 1, 4)
#: op of each micro digit 0..3
MICRO_OPS: tuple[str, ...] = ("none", "skip_connect", "conv1x1", "conv3x3")
#: the six cell edges ``(to, from)`` in string order
MICRO_EDGES: tuple[tuple[int, int], ...] = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
#: number of modules a macro skeleton may have
MACRO_LENGTHS: tuple[int, ...] = (4, 5, 6)

_MICRO_RE = re.compile(r"^(\d+)-(\d+)-([0-3])_([0-3]{2})_([0-3]{3})$")
_MACRO_RE = re.compile(r"^(\d+)-([1-4]+)-basic$")


def _stride(digit: int) -> int:
    return 2 if digit in (3, 4) else 1


def _doubles(digit: int) -> bool:
    return digit in (2, 4)


@dataclass(frozen=True)
class TNB101MicroArch:
    """A micro cell: ``ops`` the six edge op digits (0..3) in string order (see :data:`MICRO_EDGES`)."""

    ops: tuple[int, ...]

    def __post_init__(self) -> None:
        if len(self.ops) != 6 or any(isinstance(o, bool) or o not in (0, 1, 2, 3) for o in self.ops):
            raise InvalidArchitectureError(f"tnb101_micro: a cell is six op digits in 0..3, got {self.ops!r}")

    @property
    def skeleton(self) -> tuple[int, ...]:
        """The module digits (always :data:`MICRO_SKELETON`)."""
        return MICRO_SKELETON

    def __str__(self) -> str:
        a, b, c, d, e, f = self.ops
        return f"{BASE_CHANNELS}-{''.join(map(str, MICRO_SKELETON))}-{a}_{b}{c}_{d}{e}{f}"


@dataclass(frozen=True)
class TNB101MacroArch:
    """A macro skeleton: ``modules`` the module digits (1..4), 4 to 6 of them (see the module docstring)."""

    modules: tuple[int, ...]

    def __post_init__(self) -> None:
        m = self.modules
        if len(m) not in MACRO_LENGTHS or any(isinstance(d, bool) or d not in (1, 2, 3, 4) for d in m):
            raise InvalidArchitectureError(f"tnb101_macro: a skeleton is 4 to 6 digits in 1..4, got {m!r}")
        n_down = sum(_stride(d) == 2 for d in m)
        n_up = sum(_doubles(d) for d in m)
        if not (1 <= n_down <= 4 and 1 <= n_up <= 3):
            raise InvalidArchitectureError(
                f"tnb101_macro: {''.join(map(str, m))} has {n_down} stride-2 module(s) (digits 3/4, need 1..4) and "
                f"{n_up} channel doubling(s) (digits 2/4, need 1..3); the benchmark has no such skeleton"
            )

    @property
    def skeleton(self) -> tuple[int, ...]:
        return self.modules

    def __str__(self) -> str:
        return f"{BASE_CHANNELS}-{''.join(map(str, self.modules))}-basic"


def parse_micro(text: str) -> TNB101MicroArch:
    """``"64-41414-a_bc_def"`` -> :class:`TNB101MicroArch`. Raises :class:`InvalidArchitectureError`."""
    m = _MICRO_RE.match(text.strip()) if isinstance(text, str) else None
    if m is None:
        raise InvalidArchitectureError(
            f"tnb101_micro: expected a string '64-41414-a_bc_def' with digits 0..3, got {text!r}")
    if int(m.group(1)) != BASE_CHANNELS or m.group(2) != "".join(map(str, MICRO_SKELETON)):
        raise InvalidArchitectureError(
            f"tnb101_micro: the benchmark's cells all start '64-41414-', got {text!r}")
    return TNB101MicroArch(tuple(int(c) for c in "".join(m.group(3, 4, 5))))


def parse_macro(text: str) -> TNB101MacroArch:
    """``"64-<digits>-basic"`` -> :class:`TNB101MacroArch`. Raises :class:`InvalidArchitectureError`."""
    m = _MACRO_RE.match(text.strip()) if isinstance(text, str) else None
    if m is None:
        raise InvalidArchitectureError(
            f"tnb101_macro: expected a string '64-<4 to 6 digits in 1..4>-basic', got {text!r}")
    if int(m.group(1)) != BASE_CHANNELS:
        raise InvalidArchitectureError(f"tnb101_macro: the benchmark's skeletons all start '64-', got {text!r}")
    return TNB101MacroArch(tuple(int(c) for c in m.group(2)))


def micro_index(arch: TNB101MicroArch) -> int:
    """The six digits as a base-4 number, first edge most significant."""
    k = 0
    for d in arch.ops:
        k = 4 * k + d
    return k


def micro_from_index(index: int) -> TNB101MicroArch:
    """Inverse of :func:`micro_index` (``index`` in ``[0, 4096)``, checked by the caller)."""
    digits = []
    for _ in range(6):
        index, d = divmod(index, 4)
        digits.append(d)
    return TNB101MicroArch(tuple(reversed(digits)))


@functools.lru_cache(maxsize=None)
def macro_codes() -> tuple[str, ...]:
    """Every valid macro digit string, in index order (by length, then as strings); 3,256 of them."""
    out = []
    for n in MACRO_LENGTHS:
        for digits in itertools.product((1, 2, 3, 4), repeat=n):  # product order is string order here
            n_down = sum(_stride(d) == 2 for d in digits)
            n_up = sum(_doubles(d) for d in digits)
            if 1 <= n_down <= 4 and 1 <= n_up <= 3:
                out.append("".join(map(str, digits)))
    return tuple(out)


@functools.lru_cache(maxsize=None)
def _macro_positions() -> dict[str, int]:
    return {code: i for i, code in enumerate(macro_codes())}


def macro_index(arch: TNB101MacroArch) -> int:
    """Position of the skeleton in :func:`macro_codes`."""
    return _macro_positions()["".join(map(str, arch.modules))]
