"""TransNAS-Bench-101 (Duan et al., CVPR 2021): the ``tnb101_micro`` and ``tnb101_macro`` spaces.

One package per space family: the architectures and their indices (:mod:`.arch`), the networks
(:mod:`.model`), the seven tasks and the per-task builder (:mod:`.tasks`), analytic parameter / FLOP counts
with NAS-Bench-Suite-Zero's counter rule (:mod:`.counts`) and the :class:`SearchSpace` classes (:mod:`.space`).

``create_space("tnb101_micro", task="room_layout", C=64, in_channels=3)``: ``task`` (default ``class_scene``)
picks the network :meth:`~.space.TNB101Space.to_module` builds; ``to_module(arch, task=...)`` overrides it per
network. See :data:`TASKS` for each task's output, target, loss and validation metric.

NAS-Bench-Suite-Zero's 14 TransNAS-Bench-101 tables are published score pools ``tnb101:<micro|macro>:<task>``
and sample benchmarks ``tnb101_<micro|macro>_<task>`` (:mod:`.published`, registered on import).
"""

from __future__ import annotations

from raynas.spaces import SPACES
from raynas.spaces.tnb101.arch import (
    MICRO_OPS, TNB101MacroArch, TNB101MicroArch, macro_codes, parse_macro, parse_micro,
)
from raynas.spaces.tnb101.counts import NetworkCounts, count_network
from raynas.spaces.tnb101.space import TNB101MacroSpace, TNB101MicroSpace, TNB101Space
from raynas.spaces.tnb101.tasks import DEFAULT_TASK, JIGSAW_TILES, TASKS, TaskInfo, build_network, task_info

__all__ = [
    "DEFAULT_TASK", "JIGSAW_TILES", "MICRO_OPS", "NetworkCounts", "TASKS", "TNB101MacroArch", "TNB101MacroSpace",
    "TNB101MicroArch", "TNB101MicroSpace", "TNB101Space", "TaskInfo", "build_network", "count_network",
    "macro_codes", "parse_macro", "parse_micro", "task_info",
]

SPACES.add("tnb101_micro", lambda **kw: TNB101MicroSpace(**kw))
SPACES.add("tnb101_macro", lambda **kw: TNB101MacroSpace(**kw))

# after the spaces: its decoders build them; registers the published tables and their sample benchmarks
from raynas.spaces.tnb101 import published  # noqa: E402,F401
