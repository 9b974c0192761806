"""The two TransNAS-Bench-101 search spaces as :class:`~raynas.spaces.base.SearchSpace` objects.

A space is built for one task (``create_space("tnb101_micro", task="room_layout")``; default
``class_scene``); :meth:`TNB101Space.to_module` builds that task's network unless its ``task=`` says
otherwise, so one space object serves every task (``raynas score --task NAME`` passes ``task`` that way).

The task contract (:meth:`TNB101Space.task`, :func:`task_contract`): each TransNAS-Bench-101 task as a
:class:`raynas.tasks.Task`, the targets and loss every loss-based metric scores the task's network with:

* ``class_scene`` / ``class_object``: ``class_probs`` over the network's **63 / 100** outputs, soft
  cross-entropy as TNB101's ``SoftmaxCrossEntropyWithLogits`` computes it (``softmax_ce_eps``: ``-sum p
  log(softmax(z) + 1e-5)``, NASLib's loss for these tasks too; not the exact ``log_softmax`` form, which gives
  other loss-based values, see :mod:`raynas.tasks`). Not 47 / 75 (the classes TNB101's final labels
  keep): the network's head decides the loss's width, a ``[B, 63]`` output cannot be scored against ``[B, 47]``
  probabilities, and the 63 / 100 heads are the ones whose parameters the published tables count (see
  :mod:`.tasks`). NASLib's zero-cost batches match: its loader keeps Taskonomy's "selected" 63 / 100 classes.
  Their targets are probability vectors (the soft labels), so the label-needing metrics are not applicable.
* ``jigsaw``: ``class`` over the 1000 permutations, cross-entropy, ``tiles=9`` (inputs ``[B, 9, 3, s, s]``).
* ``segmentsemantic``: ``pixel_class`` over 17 classes, per-pixel cross-entropy, labels ``[B, s, s]``.
* ``room_layout``: ``regression`` of 9 values, mean squared error (TNB101's and NASLib's ``MSELoss``).
* ``autoencoder`` / ``normal``: ``image`` ``[B, 3, s, s]``, L1 (``nn.L1Loss``). TNB101 trains these two as
  pix2pix GANs, adding an adversarial term from a discriminator it trains alongside; that term is a second
  network's opinion (untrained at initialisation, so any value it gives is noise about *this* network) and not
  a function of the architecture's output and target alone, so the zero-cost loss is the L1 reconstruction
  term, as NASLib's ``get_loss_fn`` gives its proxies.

``s`` is the run's image size (TNB101: 256; jigsaw tiles 64). The pixel and image decoders bring the
features back to the input's size only when ``s`` is a multiple of ``2^(2+k)`` (``k`` stride-2 modules:
3 in the micro skeleton, up to 4 in the macro space), so :meth:`TNB101Space.task` refuses other sizes for those
tasks up front.
"""

from __future__ import annotations

from typing import Any, Hashable

import torch.nn as nn

from raynas.errors import ConfigError, InvalidArchitectureError, UnknownNameError
from raynas.spaces.base import SearchSpace
from raynas.spaces.tnb101.arch import (
    TNB101MacroArch, TNB101MicroArch, macro_codes, macro_index, micro_from_index, micro_index, parse_macro,
    parse_micro,
)
from raynas.spaces.tnb101.counts import NetworkCounts, count_network
from raynas.spaces.tnb101.tasks import DEFAULT_TASK, JIGSAW_TILES, TASKS, TaskInfo, build_network, head_width, \
    task_info
from raynas.tasks import Task

__all__ = ["TNB101MacroSpace", "TNB101MicroSpace", "TNB101Space", "task_contract"]

#: TransNAS-Bench-101's image side (jigsaw: its tiles' side, 64)
BENCHMARK_IMAGE_SIZE = 256


def task_contract(task: str, *, num_classes: int | None = None, image_size: int | None = None) -> Task:
    """The :class:`raynas.tasks.Task` of a TransNAS-Bench-101 task (module docstring: the choice per task).

    Args:
        task: a :data:`~raynas.spaces.tnb101.tasks.TASKS` name.
        num_classes: the width of the network's last layer, as ``to_module`` takes it (classes; room_layout's
            outputs; image channels); None: the task's (63 / 100 / 1000 / 17 / 9 / 3).
        image_size: the side ``s`` of the input images (jigsaw: of each tile); sets the per-sample target shape
            of the pixel and image tasks (``(s, s)``, ``(3, s, s)``); None: TNB101's 256.
    Returns:
        the task, named as in TNB101, with TNB101's validation metric and its direction.
    Raises:
        UnknownNameError: not a TNB101 task. ConfigError: a width or size that is not a positive int.
    """
    info = task_info(task)
    n = head_width(task) if num_classes is None else num_classes
    s = BENCHMARK_IMAGE_SIZE if image_size is None else image_size
    for label, v in (("num_classes", n), ("image_size", s)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ConfigError(f"tnb101 task {task!r}: {label} must be a positive int, got {v!r}")
    metric, hib = info.val_metric_name, info.higher_is_better
    if info.loss == "softmax_ce_eps":  # scene / object: soft labels over the head's outputs, the benchmark's loss
        return Task(info.name, "class_probs", (n,), n, "softmax_ce_eps", metric, hib)
    if info.kind == "class":  # jigsaw: a permutation index of the 9 tiles
        return Task(info.name, "class", (), n, "cross_entropy", metric, hib, tiles=JIGSAW_TILES)
    if info.kind == "pixel_class":
        return Task(info.name, "pixel_class", (s, s), n, "pixel_cross_entropy", metric, hib)
    if info.kind == "regression":
        return Task(info.name, "regression", (n,), None, "mse", metric, hib)
    return Task(info.name, "image", (n, s, s), None, "l1", metric, hib)

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

    # --- tasks --------------------------------------------------------------------------------------------
    #: the most stride-2 modules a network of the space has (the pixel decoders need sizes divisible by 2^(2+k))
    _max_down: int = 3

    def task_names(self) -> tuple[str, ...]:
        """The seven TNB101 tasks, the space's own task (the default) first, then the others in
        :data:`~raynas.spaces.tnb101.tasks.TASKS` order."""
        own = self.macro["task"]
        return (own, *(t for t in TASKS if t != own))

    def task(self, name: str | None = None, *, num_classes: int | None = None,
             image_size: int | None = None) -> Task:
        """The task contract of ``name`` (None: the space's task), bridged from TNB101 by :func:`task_contract`.

        Args:
            name: a TNB101 task; None: the space's.
            num_classes: the network's last-layer width (None: the task's, e.g. 63 for class_scene).
            image_size: the input side (jigsaw: tile side) the targets of pixel / image tasks follow; None: 256.
        Returns:
            the :class:`raynas.tasks.Task`.
        Raises:
            UnknownNameError: not a TNB101 task (close matches). ConfigError: for a pixel or image task, an
            ``image_size`` the decoders cannot bring back to (not a multiple of ``2^(2+k)``).
        """
        name = self.macro["task"] if name is None else name
        if name not in TASKS:
            raise UnknownNameError(f"task of space {self.name!r}", str(name), self.task_names())
        task = task_contract(name, num_classes=num_classes, image_size=image_size)
        unit = 2 ** (2 + self._max_down)
        if task.target_kind in ("pixel_class", "image") and image_size is not None and image_size % unit:
            raise ConfigError(
                f"{self.name} task {name!r}: the image size must be a multiple of {unit} (the decoder brings the "
                f"features of up to {self._max_down} stride-2 modules back to the input's size), got {image_size}")
        return task

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
    _max_down = 4  # skeletons have 1 to 4 stride-2 modules (arch.macro_codes)

    @property
    def size(self) -> int:
        return len(macro_codes())

    def index_to_arch(self, index: int) -> TNB101MacroArch:
        return TNB101MacroArch(tuple(int(c) for c in macro_codes()[self._check_index(index)]))

    def arch_to_index(self, arch: Hashable) -> int:
        return macro_index(self._check(arch))  # type: ignore[arg-type]

    def parse(self, text: str) -> TNB101MacroArch:
        return parse_macro(text)
