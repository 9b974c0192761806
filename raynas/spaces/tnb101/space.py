"""The two TransNAS-Bench-101 search spaces as :class:`~raynas.spaces.base.SearchSpace` objects.

A space is built for one task (``create_space("tnb101_micro", task="room_layout")``; default
``class_scene``); :meth:`TNB101Space.to_module` builds that task's network unless its ``task=`` says
otherwise, so one space object serves every task.
"""

from __future__ import annotations

from typing import Any, Hashable

import torch.nn as nn

from raynas.errors import ConfigError, InvalidArchitectureError
from raynas.spaces.base import SearchSpace
from raynas.spaces.tnb101.arch import (
    TNB101MacroArch, TNB101MicroArch, macro_codes, macro_index, micro_from_index, micro_index, parse_macro,
    parse_micro,
)
from raynas.spaces.tnb101.counts import NetworkCounts, count_network
from raynas.spaces.tnb101.tasks import DEFAULT_TASK, TaskInfo, build_network, task_info

__all__ = ["TNB101MacroSpace", "TNB101MicroSpace", "TNB101Space"]

TNB101Arch = TNB101MicroArch | TNB101MacroArch


class TNB101Space(SearchSpace):
    """Common part of the micro and macro spaces: the task, the network options and the networks.

    Args:
        task: the :data:`~raynas.spaces.tnb101.tasks.TASKS` entry whose network :meth:`to_module` builds.
        C: channels after the stem (TNB101: 64).
        in_channels: input image channels (TNB101: 3).
    """

    network_size_keys = ("C",)
    _arch_type: type = TNB101MicroArch

    def __init__(self, task: str = DEFAULT_TASK, *, C: int = 64, in_channels: int = 3):
        task_info(task)  # an unknown task fails here, with close matches
        if isinstance(C, bool) or not isinstance(C, int) or C < 2 or C % 2:
            raise ConfigError(f"space {self.name!r}: C must be an even int >= 2, got {C!r}")
        if isinstance(in_channels, bool) or not isinstance(in_channels, int) or in_channels < 1:
            raise ConfigError(f"space {self.name!r}: in_channels must be a positive int, got {in_channels!r}")
        self.macro: dict[str, Any] = dict(task=task, C=C, in_channels=in_channels)

    @property
    def task_info(self) -> TaskInfo:
        """The :class:`~raynas.spaces.tnb101.tasks.TaskInfo` of the space's task (what :meth:`to_module` builds
        by default). Named so as not to shadow :meth:`SearchSpace.task` (the generic task contract)."""
        return task_info(self.macro["task"])

    # --- strings ----------------------------------------------------------------------------------------
    def format(self, arch: Hashable) -> str:
        return str(self._check(arch))

    # --- networks ---------------------------------------------------------------------------------------
    def _options(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(kwargs) - set(self.macro))
        if unknown:
            raise ConfigError(f"{self.name}.to_module: unknown option(s) {unknown}; allowed: {sorted(self.macro)}")
        return {**self.macro, **kwargs}

    def to_module(self, arch: Hashable, num_classes: int | None = None, **kwargs: Any) -> nn.Module:
        """TransNAS-Bench-101's network of ``arch`` for the space's task (or ``task=``).

        Args:
            arch: an architecture of this space or its string.
            num_classes: width of the last layer (classes; room_layout's outputs; image channels); None: the
                task's (:data:`~raynas.spaces.tnb101.tasks.TASKS`: 63 / 100 for scene / object, see there).
            **kwargs: ``task``, ``C``, ``in_channels`` override the space's.

        Returns:
            ``[B, 3, H, W]`` (jigsaw ``[B, 9, 3, h, w]``) -> the task's output, e.g. ``[B, 63]`` for class_scene,
            ``[B, 17, H, W]`` for segmentsemantic, ``[B, 3, H, W]`` for autoencoder / normal.
        """
        a = self._check(arch)
        opts = self._options(kwargs)
        return build_network(a.skeleton, getattr(a, "ops", None), opts["task"], num_classes=num_classes,
                             C=opts["C"], in_channels=opts["in_channels"])

    def count(self, arch: Hashable, num_classes: int | None = None, *, input_size: tuple[int, int] | None = None,
              **kwargs: Any) -> NetworkCounts:
        """Parameter and FLOP counts of :meth:`to_module` ``(arch, num_classes, **kwargs)`` without building it
        (:func:`~raynas.spaces.tnb101.counts.count_network`; ``input_size`` None: the task's)."""
        a = self._check(arch)
        opts = self._options(kwargs)
        return count_network(a.skeleton, getattr(a, "ops", None), opts["task"], input_size=input_size,
                             num_classes=num_classes, C=opts["C"], in_channels=opts["in_channels"])

    def training_kwargs(self) -> dict[str, Any]:
        """A real-training query's default network: base width 16 (the benchmark's: 64)."""
        return {"C": 16}

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "macro": dict(self.macro)}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(task={self.macro['task']!r}, size={self.size})"

    def _check(self, arch: Hashable) -> TNB101Arch:
        if isinstance(arch, str):
            return self.parse(arch)
        if not isinstance(arch, self._arch_type):
            raise InvalidArchitectureError(
                f"{self.name}: expected a {self._arch_type.__name__} or its string, got {type(arch).__name__}")
        return arch  # type: ignore[return-value]

    def _check_index(self, index: int) -> int:
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < self.size:
            raise InvalidArchitectureError(f"{self.name} index must be an int in [0, {self.size}), got {index!r}")
        return index


class TNB101MicroSpace(TNB101Space):
    """TransNAS-Bench-101 micro: 4,096 cells (6 edges x 4 ops) on the fixed skeleton ``41414``; index = the
    cell's digits in base 4 (:mod:`raynas.spaces.tnb101.arch`)."""

    name = "tnb101_micro"
    _arch_type = TNB101MicroArch

    @property
    def size(self) -> int:
        return 4**6

    def index_to_arch(self, index: int) -> TNB101MicroArch:
        return micro_from_index(self._check_index(index))

    def arch_to_index(self, arch: Hashable) -> int:
        return micro_index(self._check(arch))  # type: ignore[arg-type]

    def parse(self, text: str) -> TNB101MicroArch:
        return parse_micro(text)


class TNB101MacroSpace(TNB101Space):
    """TransNAS-Bench-101 macro: 3,256 skeletons of 4-6 modules of ResNet basic blocks; index = position in
    :func:`~raynas.spaces.tnb101.arch.macro_codes` (by length, then as strings)."""

    name = "tnb101_macro"
    _arch_type = TNB101MacroArch

    @property
    def size(self) -> int:
        return len(macro_codes())

    def index_to_arch(self, index: int) -> TNB101MacroArch:
        return TNB101MacroArch(tuple(int(c) for c in macro_codes()[self._check_index(index)]))

    def arch_to_index(self, arch: Hashable) -> int:
        return macro_index(self._check(arch))  # type: ignore[arg-type]

    def parse(self, text: str) -> TNB101MacroArch:
        return parse_macro(text)
