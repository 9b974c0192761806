"""Measured metric costs registered beside their spaces: what scoring one arch with each metric takes.

A :class:`MetricCosts` is a small table of seconds per arch per metric, measured once on a named machine at a
reference network size and batch (the ``seconds`` column of a real score run's rows, see ``source``). A scoring
run reads it before it scores anything, so ``raynas score`` can say what a run will cost before committing to it
(:func:`raynas.parallel.run.prior_estimate`).

Other sizes are scaled: the metrics' work is dominated by forward/backward passes of convolutions, whose cost
grows as ``batch * image_size**2 * C**2 * N`` (each cell's convolutions cost ``C_stage**2 * H * W``, and a stage
doubles ``C`` as it halves ``H`` and ``W``), so :meth:`MetricCosts.scale` multiplies by ``(value / reference) **
exponent`` per key. That is an approximation: tiny networks are dominated by fixed overheads (the scaled estimate
is then too low), and a machine other than the one measured differs by its speed. A space without a table gets
its estimate from the run's first scored arch only.

Where the tables live: ``raynas/spaces/<package>/metric_costs.json`` beside each space, a list of tables, one per
(space, task) (TransNAS-Bench-101's seven task networks cost differently), written by
``scripts/measure_metric_costs.py`` and read when :mod:`raynas.spaces` discovers the package
(:func:`load_metric_costs_file`). Code may also register a table with :func:`register_metric_costs`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

from raynas.errors import ConfigError

__all__ = ["COSTS_FILE", "EXPONENTS", "MetricCosts", "load_metric_costs_file", "metric_costs", "metric_costs_file",
           "register_metric_costs"]

#: the file name of a space package's measured tables
COSTS_FILE = "metric_costs.json"

#: how the cost grows with each size a table can be measured at (see the module docstring): the batch and the
#: pixels linearly, the width quadratically (convolutions), the depth (cells per stage ``N``, DARTS's
#: ``layers``) linearly
EXPONENTS: Mapping[str, float] = MappingProxyType(
    {"batch_size": 1, "image_size": 2, "C": 2, "N": 1, "layers": 1})


@dataclass(frozen=True)
class MetricCosts:
    """Seconds per arch per metric of one space, measured at ``reference`` sizes (see the module docstring).

    Attributes:
        space: the registered space the table was measured on.
        seconds: metric name -> seconds per arch (fused engine, one process).
        reference: the sizes measured at: ``batch_size``, ``image_size`` and the space's network sizes (``C``, ...).
        exponents: how the cost grows with each ``reference`` key (``cost ~ (value / reference) ** exponent``).
        source: where the numbers come from, in words (machine, command, date), printed with the estimate.
        task: the task whose network was measured (TransNAS-Bench-101's), None for a space of one task.
    """

    space: str
    seconds: Mapping[str, float]
    reference: Mapping[str, int]
    exponents: Mapping[str, float]
    source: str
    task: str | None = None

    def __post_init__(self) -> None:
        unknown = sorted(set(self.exponents) - set(self.reference))
        if unknown:
            raise ConfigError(f"metric costs of {self.space!r}: exponents for {unknown} have no reference size")
        bad = {m: s for m, s in self.seconds.items() if not s >= 0}
        if bad:
            raise ConfigError(f"metric costs of {self.space!r}: seconds must be >= 0, got {bad}")
        object.__setattr__(self, "seconds", MappingProxyType(dict(self.seconds)))
        object.__setattr__(self, "reference", MappingProxyType(dict(self.reference)))
        object.__setattr__(self, "exponents", MappingProxyType(dict(self.exponents)))

    def scale(self, sizes: Mapping[str, float]) -> float:
        """The cost factor of ``sizes`` (e.g. ``{"C": 8, "N": 5, "batch_size": 64, "image_size": 32}``) relative to
        the reference; keys not given (or not scaled) count as the reference value."""
        factor = 1.0
        for key, exp in self.exponents.items():
            value = sizes.get(key)
            if value is not None and value > 0:
                factor *= (float(value) / float(self.reference[key])) ** exp
        return factor

    def per_metric(self, metrics: list[str] | tuple[str, ...], sizes: Mapping[str, float]) -> dict[str, float]:
        """Seconds per arch of each metric of ``metrics`` the table knows, scaled to ``sizes``; metrics it does
        not know are left out (the caller names them)."""
        f = self.scale(sizes)
        return {m: self.seconds[m] * f for m in metrics if m in self.seconds}

    def sizes_note(self, sizes: Mapping[str, float]) -> str:
        """``"measured at C=16 N=5 batch_size=64 image_size=32"``, plus ``", scaled x0.25 to C=8"`` when ``sizes``
        differ from the reference."""
        ref = " ".join(f"{k}={v}" for k, v in self.reference.items())
        changed = {k: sizes[k] for k in self.exponents if sizes.get(k) not in (None, self.reference[k])}
        if not changed:
            return f"measured at {ref}"
        to = " ".join(f"{k}={v:g}" for k, v in changed.items())
        return f"measured at {ref}, scaled x{self.scale(sizes):.3g} to {to}"


#: (space, task) -> its table; task None: the space's table for any task it has no own table for
_COSTS: dict[tuple[str, str | None], MetricCosts] = {}


def register_metric_costs(costs: MetricCosts) -> MetricCosts:
    """Register ``costs`` for its (space, task) (a second table for the same pair replaces the first)."""
    _COSTS[(costs.space, costs.task)] = costs
    return costs


def metric_costs(space: str, task: str | None = None) -> MetricCosts | None:
    """The measured metric costs of registered space ``space`` scoring ``task``.

    Args:
        space: a registered space name.
        task: the task scored (TransNAS-Bench-101's); None: the space's own task, or for a space measured per
            task the first task measured (in name order).

    Returns:
        the table, or None when none was measured for that space (and task).
    """
    table = _COSTS.get((space, task)) or _COSTS.get((space, None))
    if table is None and task is None:
        tasks = sorted((k for k in _COSTS if k[0] == space and k[1] is not None), key=lambda k: str(k[1]))
        table = _COSTS[tasks[0]] if tasks else None
    return table


def _entry(data: Mapping[str, Any], path: Path) -> MetricCosts:
    try:
        return MetricCosts(space=str(data["space"]), seconds={str(k): float(v) for k, v in data["seconds"].items()},
                           reference=dict(data["reference"]), exponents=dict(data["exponents"]),
                           source=str(data["source"]), task=data.get("task"))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ConfigError(f"{path}: not a metric-cost table ({type(exc).__name__}: {exc})") from exc


def load_metric_costs_file(path: str | Path) -> list[MetricCosts]:
    """Register every table of ``path`` (a JSON list written by ``scripts/measure_metric_costs.py``).

    Args:
        path: a space package's ``metric_costs.json``; a missing file registers nothing.

    Returns:
        the tables registered (already registered pairs are replaced).
    """
    path = Path(path)
    if not path.exists():
        return []
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: unreadable metric-cost tables ({exc})") from exc
    if not isinstance(data, list):
        raise ConfigError(f"{path}: expected a list of metric-cost tables, got {type(data).__name__}")
    return [register_metric_costs(_entry(d, path)) for d in data]


def metric_costs_file(space: object) -> Path:
    """Where a space's tables live: ``metric_costs.json`` in the package that defines the space.

    Args:
        space: a built space (``create_space(name)``); its class's package is the space's package.

    Returns:
        the file's path (which may not exist yet).
    """
    import importlib

    module = type(space).__module__
    package = module.rpartition(".")[0] if module.count(".") > 2 else module
    return Path(importlib.import_module(package).__file__ or "").parent / COSTS_FILE
