"""Command-line flags generated from a typed config (a frozen dataclass), so each setting is spelled once: its
name, type, default and help live on the config's field, and the CLI's flag follows from them.

A field ``name`` becomes ``--name`` with dashes. Its ``metadata`` may hold ``help`` (the text; the default is
appended), ``choices``, ``min`` (the least int accepted; with an optional int, ``none`` means no limit) and
``cli`` (``False``: no flag, the field is set from YAML or Python only; ``"training"``: the real-training oracle's
flag group, :func:`raynas.cli.search_cmd`). A field without a default is a required flag (so is one whose metadata says ``required``: e.g. an output directory that the Python API may leave
unset). Flags not given are
absent from the namespace (``argparse.SUPPRESS``), so the typed config's default applies and the config sees only
what the user said.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from typing import Any, Iterable, Literal

from raynas.cli.argtypes import optional_count, positive_int


def flag_of(field: dataclasses.Field) -> str:
    """The flag of a config field: ``--`` and its name with dashes."""
    return "--" + field.name.replace("_", "-")


def has_flag(field: dataclasses.Field) -> bool:
    """Whether :func:`add_config_flags` gives ``field`` a flag of its own."""
    return field.metadata.get("cli", True) is True


def _required(field: dataclasses.Field) -> bool:
    return field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING


def _default_text(field: dataclasses.Field) -> str | None:
    if _required(field):
        return None
    d = field.default if field.default is not dataclasses.MISSING else field.default_factory()
    if isinstance(d, bool):
        return None  # a switch: its help says what it does
    if d is None:
        return None
    if isinstance(d, (tuple, list)):
        return ",".join(map(str, d)) if d else None
    return str(d)


def _base_type(hint: Any) -> tuple[Any, bool]:
    """``(the non-None type, whether None is allowed)`` of a field's type hint; a ``tuple | str`` union (a list the
    CLI spells as a comma string) is ``str``."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        optional = len(rest) < len(args)
        if str in rest:
            return str, optional
        return (rest[0] if len(rest) == 1 else str), optional
    return hint, False


def add_config_flags(p: argparse.ArgumentParser | argparse._ArgumentGroup, cls: type,
                     names: Iterable[str] | None = None) -> list[str]:
    """Add a flag to ``p`` for each field of ``cls`` (those in ``names``, in that order; default: all, in field order)
    that has one (:func:`has_flag`). Returns the names of the fields given flags."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    done = []
    for name in (names if names is not None else fields):
        f = fields[name]
        if not has_flag(f):
            continue
        tp, optional = _base_type(hints[name])
        meta = f.metadata
        text = meta.get("help", name.replace("_", " "))
        default = _default_text(f)
        if default is not None:
            text += f" (default: {default})"
        kw: dict[str, Any] = {"help": text, "default": argparse.SUPPRESS}
        if _required(f) or meta.get("required"):
            kw["required"] = True
        if tp is bool:
            if f.default is True:
                kw["action"] = argparse.BooleanOptionalAction
            else:
                kw["action"] = "store_true"
            p.add_argument(flag_of(f), **kw)
            done.append(name)
            continue
        choices = meta.get("choices")
        if typing.get_origin(tp) is Literal:
            choices = typing.get_args(tp)
            tp = type(choices[0])
        if choices is not None:
            kw["choices"] = list(choices)
        if tp is int:
            low = meta.get("min")
            kw["type"] = optional_count(low if low is not None else -(2 ** 63)) if optional else \
                positive_int if low == 1 else int
        elif tp is float:
            kw["type"] = float
        else:
            kw["type"] = str
        kw["metavar"] = None if choices is not None else name.upper()
        p.add_argument(flag_of(f), **kw)
        done.append(name)
    return done
