"""The seven TransNAS-Bench-101 tasks as plain metadata (:data:`TASKS`), and the per-task network builder.

Plain data on purpose: the generic task contract lives elsewhere (``raynas.tasks``); this module only states
what TransNAS-Bench-101 does, so that contract can be bridged to it.

Class counts. TransNAS-Bench-101's configs train class_scene on 47 and class_object on 75 Taskonomy classes
(the soft-label targets have that many entries); NASLib's ``model_builder.py``, which built the networks of
NAS-Bench-Suite-Zero's tables (``/work/shared/data/tnb101``: ``params``, ``flops`` and every zero-cost
score), uses heads of 63 and 100. The tables' ``params`` column is reproduced exactly with 63 / 100 and
with no other count (47 / 75 are short by ``512 * 16 + 16 = 8,208`` / ``512 * 25 + 25 = 12,825`` on every
micro row), so :data:`TASKS` and :func:`build_network` default to **63 / 100**; ``num_classes=47`` (75)
builds the network TransNAS-Bench-101 trained. ``label_classes`` records the benchmark's own count.

Input sizes. Images are 256x256 RGB (both the benchmark's and NAS-Bench-Suite-Zero's loaders resize to
256); jigsaw's input is the 9 tiles of 64x64 its ``MakeJigsawPuzzle`` cuts (``[B, 9, 3, 64, 64]``), with
1000 permutation classes. Any input works whose sides are multiples of ``2^(2+k)`` (``k`` stride-2 modules,
at most 4: 64 always works); class / regression heads take any size the encoder accepts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch.nn as nn

from raynas.errors import ConfigError, UnknownNameError
from raynas.spaces.tnb101.model import (
    ClassifierHead, GenerativeDecoder, SegmentationDecoder, SiameseHead, TNB101Encoder, TNB101Network, upsamples,
)

__all__ = ["DEFAULT_TASK", "JIGSAW_TILES", "TASKS", "TaskInfo", "build_network", "task_info"]

#: the task a space builds networks for unless told otherwise
DEFAULT_TASK = "class_scene"
#: jigsaw's tiles per image
JIGSAW_TILES = 9

OutputKind = Literal["class", "pixel_class", "regression", "image"]


@dataclass(frozen=True)
class TaskInfo:
    """What one TransNAS-Bench-101 task is (shapes per sample, at the benchmark's input size).

    Attributes:
        name: the task's name in TNB101 and in the tables' file names.
        kind: ``"class"`` (one label per sample), ``"pixel_class"`` (a label per pixel), ``"regression"``
            (a vector of reals) or ``"image"`` (an image to generate).
        input_shape: one sample's input, ``(3, 256, 256)``; jigsaw ``(9, 3, 64, 64)`` (tiles).
        output_shape: the network's output per sample (logits, values or image).
        target_shape: TNB101's training target per sample: class_scene/object a probability vector over
            ``label_classes``; jigsaw ``()`` (the permutation's index); segmentsemantic ``(256, 256)`` class
            ids; room_layout 9 values; autoencoder the input image, normal the surface-normal image.
        num_classes: classes of the network's head (``"class"``, ``"pixel_class"``), None otherwise: the
            counts of NAS-Bench-Suite-Zero's networks (module docstring).
        label_classes: the classes TNB101's labels have (47 / 75 for scene / object), None without classes.
        loss: TNB101's training loss: ``"softmax_ce_eps"`` (softmax cross-entropy with probability targets as
            TNB101's ``SoftmaxCrossEntropyWithLogits`` computes it, ``-sum p log(softmax(z) + 1e-5)``, see
            :mod:`raynas.tasks`), ``"cross_entropy"``, ``"pixel_cross_entropy"``,
            ``"mse"``, ``"l1"`` (autoencoder and normal also train a pix2pix GAN loss against a discriminator;
            L1 is the reconstruction term, and what NASLib's zero-cost proxies used).
        val_metric_name: the validation metric of the tables' ``val_metric_name`` column.
        higher_is_better: for that metric (``valid_neg_loss`` is a negated loss: higher is better).
    """

    name: str
    kind: OutputKind
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    target_shape: tuple[int, ...]
    num_classes: int | None
    label_classes: int | None
    loss: str
    val_metric_name: str
    higher_is_better: bool


_IMG = (3, 256, 256)

#: task name -> :class:`TaskInfo`
TASKS: dict[str, TaskInfo] = {
    t.name: t
    for t in (
        TaskInfo("class_scene", "class", _IMG, (63,), (47,), 63, 47, "softmax_ce_eps", "valid_top1", True),
        TaskInfo("class_object", "class", _IMG, (100,), (75,), 100, 75, "softmax_ce_eps", "valid_top1", True),
        TaskInfo("jigsaw", "class", (JIGSAW_TILES, 3, 64, 64), (1000,), (), 1000, 1000, "cross_entropy",
                 "valid_top1", True),
        TaskInfo("room_layout", "regression", _IMG, (9,), (9,), None, None, "mse", "valid_neg_loss", True),
        TaskInfo("segmentsemantic", "pixel_class", _IMG, (17, 256, 256), (256, 256), 17, 17, "pixel_cross_entropy",
                 "valid_acc", True),
        TaskInfo("normal", "image", _IMG, _IMG, _IMG, None, None, "l1", "valid_ssim", True),
        TaskInfo("autoencoder", "image", _IMG, _IMG, _IMG, None, None, "l1", "valid_ssim", True),
    )
}


def task_info(task: str) -> TaskInfo:
    """:data:`TASKS` entry of ``task``; an unknown name raises :class:`UnknownNameError` with close matches."""
    if task not in TASKS:
        raise UnknownNameError("tnb101 task", str(task), TASKS)
    return TASKS[task]


def head_width(task: str) -> int:
    """The default width of the task's last layer: classes, regression outputs or image channels."""
    info = task_info(task)
    return info.num_classes if info.num_classes is not None else info.output_shape[0]


def build_network(skeleton: tuple[int, ...], cell: tuple[int, ...] | None, task: str = DEFAULT_TASK, *,
                  num_classes: int | None = None, C: int = 64, in_channels: int = 3) -> nn.Module:
    """TransNAS-Bench-101's network of one task.

    Args:
        skeleton: module digits (micro: ``(4, 1, 4, 1, 4)``).
        cell: the micro cell's six op digits, None for the macro space's basic blocks.
        task: a :data:`TASKS` name.
        num_classes: width of the last layer (classes of ``class`` / ``pixel_class`` tasks, outputs of
            room_layout, channels of the generated image); None: the task's default (:data:`TASKS`).
        C: channels after the stem (TNB101: 64; smaller values give small test networks).
        in_channels: input image channels (TNB101: 3).

    Returns:
        A :class:`~raynas.spaces.tnb101.model.TNB101Network`: ``[B, in_channels, H, W]`` (jigsaw
        ``[B, 9, in_channels, h, w]``) -> ``[B, n]`` (class, regression), ``[B, n, H, W]`` (pixel tasks).
    """
    info = task_info(task)
    n = head_width(task) if num_classes is None else num_classes
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError(f"tnb101 {task}: num_classes must be a positive int, got {num_classes!r}")
    encoder = TNB101Encoder(tuple(skeleton), None if cell is None else tuple(cell), C=C, in_channels=in_channels)
    width = encoder.out_channels
    if info.name == "jigsaw":
        return TNB101Network(encoder, SiameseHead(width, n, JIGSAW_TILES), tiles=JIGSAW_TILES)
    if info.kind in ("class", "regression"):
        decoder: nn.Module = ClassifierHead(width, n)
    elif info.kind == "pixel_class":
        decoder = SegmentationDecoder(width, upsamples(encoder), n)
    else:
        decoder = GenerativeDecoder(width, upsamples(encoder), n)
    return TNB101Network(encoder, decoder)
