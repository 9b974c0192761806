"""Declarative search-space specs (``raynas/spaces/specs/<name>.yaml``), validated strictly.

A spec names the space, its ``kind`` (which implementation builds it), the candidate ops, the cell's node
count, the macro skeleton and the input shape. The ``macro`` block's schema depends on the kind; other
space modules add theirs with :func:`register_macro_schema`. Unknown keys anywhere are a
:class:`ConfigError`.

Built-in specs ship once, inside the package (``raynas/spaces/specs/<name>.yaml``), so a source checkout and an
installed wheel read the same files (there used to be a second copy in the repository's top-level ``spaces/``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Mapping

from raynas.config import from_dict, load_yaml, to_dict
from raynas.errors import ConfigError, UnknownNameError

#: where the built-in specs are (one folder, shipped with the package)
SPEC_DIRS: tuple[Path, ...] = (Path(__file__).resolve().parent / "specs",)


def _check_min(owner: str, **values: int) -> None:
    for key, (value, low) in values.items():
        if value < low:
            raise ConfigError(f"{owner}: {key} must be >= {low}, got {value}")


@dataclass(frozen=True)
class InputSpec:
    """Input images ``[B, channels, size, size]``."""

    channels: int
    size: int

    def __post_init__(self) -> None:
        _check_min("input", channels=(self.channels, 1), size=(self.size, 1))


@dataclass(frozen=True)
class NB201MacroSpec:
    """NAS-Bench-201 skeleton: ``stages`` stages of ``N`` cells at ``C * 2**s`` channels."""

    C: int
    N: int
    stages: int = 3
    reduction: Literal["resnet_basic"] = "resnet_basic"
    affine: bool = True
    track_running_stats: bool = True

    def __post_init__(self) -> None:
        _check_min("macro", C=(self.C, 1), N=(self.N, 1), stages=(self.stages, 1))


@dataclass(frozen=True)
class SpaceSpec:
    """A validated spec; ``macro`` is an instance of the kind's macro schema."""

    name: str
    kind: str
    ops: tuple[str, ...]
    nodes: int
    macro: Any
    input: InputSpec
    description: str = ""


#: kind -> dataclass validating the ``macro`` block
MACRO_SCHEMAS: dict[str, type] = {"nb201": NB201MacroSpec}


def register_macro_schema(kind: str, schema: type) -> None:
    """Let another space module (e.g. DARTS) accept specs of ``kind``."""
    if kind in MACRO_SCHEMAS and MACRO_SCHEMAS[kind] is not schema:
        raise ConfigError(f"macro schema for space kind {kind!r} is registered twice")
    MACRO_SCHEMAS[kind] = schema


def parse_space_spec(data: Mapping[str, Any], source: str = "<dict>") -> SpaceSpec:
    """Validate a spec mapping: keys, types, kind, op names, node count and macro block."""
    from raynas.spaces.ops import OPS

    try:
        spec = from_dict(SpaceSpec, data)
    except ConfigError as e:
        raise ConfigError(f"space spec {source}: {e}") from None
    if not isinstance(spec.input, InputSpec):
        raise ConfigError(f"space spec {source}: input must be a mapping with channels and size")
    if not spec.name:
        raise ConfigError(f"space spec {source}: name must be a non-empty string")
    if spec.kind not in MACRO_SCHEMAS:
        raise UnknownNameError("space kind", spec.kind, MACRO_SCHEMAS)
    if not spec.ops or len(set(spec.ops)) != len(spec.ops):
        raise ConfigError(f"space spec {source}: ops must be a non-empty list of distinct names, got {list(spec.ops)}")
    for op in spec.ops:
        if op not in OPS:
            raise UnknownNameError("op", op, OPS)
    if spec.nodes < 2:
        raise ConfigError(f"space spec {source}: nodes must be >= 2, got {spec.nodes}")
    try:
        macro = from_dict(MACRO_SCHEMAS[spec.kind], spec.macro)
    except ConfigError as e:
        raise ConfigError(f"space spec {source}: macro: {e}") from None
    return dataclasses.replace(spec, macro=macro)


def load_space_spec(path: str | Path) -> SpaceSpec:
    """Read and validate a spec YAML file."""
    return parse_space_spec(load_yaml(path), source=str(path))


def spec_to_dict(spec: SpaceSpec) -> dict[str, Any]:
    """Plain dict of a spec (lists, nested dicts) that :func:`parse_space_spec` turns back into ``spec``."""
    return to_dict(spec)


def builtin_spec_path(name: str) -> Path:
    """Path of built-in spec ``name``: the checkout's ``spaces/`` first, then the packaged copy."""
    known: set[str] = set()
    for d in SPEC_DIRS:
        p = d / f"{name}.yaml"
        if p.is_file():
            return p
        if d.is_dir():
            known.update(q.stem for q in d.glob("*.yaml"))
    raise UnknownNameError("space spec", name, known)


def load_builtin_spec(name: str) -> SpaceSpec:
    return load_space_spec(builtin_spec_path(name))
