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

A space module registers its table with :func:`register_metric_costs` (e.g. :mod:`raynas.spaces.nb201.costs`).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping

from raynas.errors import ConfigError

__all__ = ["MetricCosts", "metric_costs", "register_metric_costs"]


@dataclass(frozen=True)
class MetricCosts:
    """Seconds per arch per metric of one space, measured at ``reference`` sizes (see the module docstring).

    Attributes:
        space: the registered space the table was measured on.
        seconds: metric name -> seconds per arch (fused engine, one process).
        reference: the sizes measured at: ``batch_size``, ``image_size`` and the space's network sizes (``C``, ...).
        exponents: how the cost grows with each ``reference`` key (``cost ~ (value / reference) ** exponent``).
        source: where the numbers come from, in words (machine, command, date), printed with the estimate.
    """

    space: str
    seconds: Mapping[str, float]
    reference: Mapping[str, int]
    exponents: Mapping[str, float]
    source: str

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


_COSTS: dict[str, MetricCosts] = {}


def register_metric_costs(costs: MetricCosts) -> MetricCosts:
    """Register ``costs`` for its space (a second table for the same space replaces the first)."""
    _COSTS[costs.space] = costs
    return costs


def metric_costs(space: str) -> MetricCosts | None:
    """The measured metric costs of registered space ``space``, or None when none were measured."""
    return _COSTS.get(space)
