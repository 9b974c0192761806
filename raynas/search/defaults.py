"""Defaults shared by the searches, the pipeline and the benchmark scripts, spelled once (a module with no
imports, so a script's ``--help`` reads them without loading torch)."""

from __future__ import annotations

#: the proxies RoBoT combines (its paper's six), the default of every search over a combination of proxies
ROBOT_METRICS: tuple[str, ...] = ("grad_norm", "snip", "grasp", "fisher", "synflow", "jacob_cov")
