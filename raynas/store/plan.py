"""What a score run was meant to hold, as the store needs it to judge completeness.

The store cannot plan a run itself: which archs a config selects depends on the search space and the shard
rules of :mod:`raynas.parallel`, both above the store. So the run that plans it stores the plan in its
``config.json`` (section ``plan``, :func:`plan_to_dict`), and a store opened on the run alone
(``ScoreStore(run)``) judges completeness against that; a caller may also hand in a :data:`Planner`
(``raynas.parallel`` provides one, :func:`raynas.parallel.plan_run`, and :func:`raynas.parallel.open_run` opens a
store with it), which recomputes the plan from the config (runs written before plans were stored).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping


@dataclass(frozen=True)
class RunPlan:
    """A run's plan: the planned arch ids, ``(shard id, arch ids)`` per planned shard, the metrics and the seed."""

    ids: tuple[int, ...]
    shards: tuple[tuple[int, tuple[int, ...]], ...]
    metrics: tuple[str, ...]
    seed: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "ids", tuple(int(i) for i in self.ids))
        object.__setattr__(self, "shards", tuple((int(s), tuple(int(i) for i in ids)) for s, ids in self.shards))
        object.__setattr__(self, "metrics", tuple(str(m) for m in self.metrics))


#: ``planner(flat_config, run_dir) -> RunPlan``; raises a :class:`~raynas.errors.RaynasError` when the stored
#: config does not describe a run it can plan (the message becomes the completeness report's config error)
Planner = Callable[[Mapping[str, Any], Path], RunPlan]

#: why a store opened without a planner, on a run that stored no plan, cannot say what the run should hold
NO_PLANNER = ("the run stored no plan (written before raynas stored plans) and no planner was given to plan it "
              "(open the run with raynas.parallel.open_run)")


def plan_to_dict(plan: RunPlan) -> dict[str, Any]:
    """The JSON form of ``plan`` (``config.json``'s ``plan`` section)."""
    return {"ids": list(plan.ids), "shards": [[s, list(ids)] for s, ids in plan.shards],
            "metrics": list(plan.metrics), "seed": plan.seed}


def plan_from_dict(d: Any) -> RunPlan:
    """Inverse of :func:`plan_to_dict`; raises ``ValueError``/``TypeError``/``KeyError`` on a malformed one."""
    return RunPlan(tuple(d["ids"]), tuple((s, tuple(ids)) for s, ids in d["shards"]), tuple(d["metrics"]),
                   int(d["seed"]))
