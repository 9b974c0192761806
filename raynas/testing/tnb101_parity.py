"""The fixed cases of the TransNAS-Bench-101 reference-parity suite (``tests/parity/test_tnb101_parity.py``,
``scripts/make_tnb101_parity_fixture.py``).

Each case is one TransNAS-Bench-101 network (:func:`raynas.spaces.tnb101.build_network`, base width ``C = 8``)
of one task: two micro cells (one for the three dense-decoder tasks) and one macro skeleton per task, 18
networks. The fixture stores one task-shaped
batch per task (``tnb101.npz``) and the values NASLib's zero-cost measures compute on exactly these networks and
batches with that task's loss (``values_tnb101.json``).

Weights. The per-task decoders have fixed widths (1024 channels at their top, whatever ``C``): a segmentation
network holds about 7 M weights and an image decoder about 19 M, 30-75 MB of float32 each. So the fixture does not
store the weights but the rule that makes them (:func:`fill_weights`): every Conv2d / ConvTranspose2d / Linear
weight is He-uniform ``U(-sqrt(6 / fan_in), sqrt(6 / fan_in))`` and every bias ``U(-1/sqrt(fan_in),
1/sqrt(fan_in))``, drawn from a counter-based hash (splitmix64 of the element index, keyed by the CRC-32 of
the state-dict key): integer arithmetic and correctly rounded IEEE operations only, so every machine, numpy and
torch version makes the same float32 weights bit for bit (torch's RNG streams are not promised to stay). BN
parameters and buffers keep their deterministic initial values (weight 1, bias 0, running mean 0, variance 1).
The fixture records each case's parameter count and ``sum |w|`` (float64) so that a changed rule or a changed
network is reported as such.

Sizes: images ``32 x 32`` (every case has at most 3 stride-2 modules, so the pixel decoders give back 32 x 32),
jigsaw's 9 tiles ``16 x 16``, a batch of 8.
"""

from __future__ import annotations

import dataclasses
import zlib
from typing import Mapping

import numpy as np
import torch
import torch.nn as nn

from raynas.data.batch import Batch
from raynas.spaces.tnb101.arch import parse_macro, parse_micro
from raynas.spaces.tnb101.tasks import JIGSAW_TILES, TASKS, build_network
from raynas.tasks import Task, class_probabilities, classification, image, pixel_classification, regression

#: base width of the fixture networks (TransNAS-Bench-101: 64)
C = 8
#: samples per batch
BATCH = 8
#: image side (every case's pixel decoder gives it back: at most 3 stride-2 modules, 32 = 2^(2+3))
IMAGE = 32
#: jigsaw tile side
TILE = 16
#: the two micro cells every task is scored on: convs of both kinds, a skip and a none edge; and a cell whose
#: output node is reached by the input node only through a conv1x1 and a skip (zeros elsewhere)
MICRO_CELLS = ("64-41414-3_20_133", "64-41414-1_02_102")
#: one macro skeleton per task (at most 3 stride-2 digits, 3/4; 1 to 3 doublings, 2/4)
MACRO_SKELETONS: dict[str, str] = {
    "class_scene": "64-1423-basic",
    "class_object": "64-4132-basic",
    "jigsaw": "64-14213-basic",
    "room_layout": "64-2313-basic",
    "segmentsemantic": "64-13241-basic",
    "normal": "64-3141-basic",
    "autoencoder": "64-412113-basic",
}


def _cases() -> dict[str, tuple[str, str, str]]:
    out: dict[str, tuple[str, str, str]] = {}
    for task in TASKS:
        # the dense decoders hold 7-19 M weights whatever C: one micro cell there keeps the suite's time down
        cells = MICRO_CELLS[:1] if TASKS[task].kind in ("pixel_class", "image") else MICRO_CELLS
        for k, cell in enumerate(cells):
            out[f"{task}_micro{k}"] = ("tnb101_micro", cell, task)
        out[f"{task}_macro"] = ("tnb101_macro", MACRO_SKELETONS[task], task)
    return out


#: case name -> (space, TransNAS-Bench-101 architecture string, task)
CASES: dict[str, tuple[str, str, str]] = _cases()


def fixture_task(task: str) -> Task:
    """The :class:`~raynas.tasks.Task` of a TransNAS-Bench-101 task at the fixture's sizes, with NASLib's targets.

    class_scene / class_object: probability vectors over the head's 63 / 100 classes (NASLib's
    ``load_class_*_logits`` with ``selected=True``, normalised), the benchmark's soft cross-entropy
    (``softmax_ce_eps``, NASLib's loss unmodified); jigsaw: the permutation's
    index among 1,000, cross-entropy; room_layout: 9 floats, MSE; segmentsemantic: a class in 0..16 per pixel,
    per-pixel cross-entropy; normal / autoencoder: a 3-channel image, L1.

    Args:
        task: a :data:`~raynas.spaces.tnb101.TASKS` name.
    Returns:
        the task, named ``task``.
    """
    info = TASKS[task]
    if info.kind == "class" and task != "jigsaw":
        # the benchmark's loss (softmax_ce_eps), not class_probabilities' exact one: what the space scores with
        t = dataclasses.replace(class_probabilities(int(info.num_classes)), loss=info.loss)  # type: ignore[arg-type]
    elif task == "jigsaw":
        t = classification(int(info.num_classes))  # type: ignore[arg-type]
    elif info.kind == "regression":
        t = regression(info.output_shape, "mse")
    elif info.kind == "pixel_class":
        t = pixel_classification(int(info.num_classes), IMAGE)  # type: ignore[arg-type]
    else:
        t = image(info.output_shape[0], IMAGE, "l1")
    return dataclasses.replace(t, name=task)  # rows and messages name the TNB101 task


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def hash_uniform(key: str, n: int) -> np.ndarray:
    """``n`` float64 numbers in ``[0, 1)`` determined by ``key`` alone: splitmix64 of ``crc32(key) * 2^32 + i``.

    Args:
        key: names the stream (a state-dict key, ``"batch/..."``).
        n: how many numbers.
    Returns:
        ``[n]`` float64, multiples of ``2^-53``.
    """
    base = np.uint64(zlib.crc32(key.encode())) << np.uint64(32)
    with np.errstate(over="ignore"):  # the hash wraps modulo 2^64 on purpose
        z = np.arange(n, dtype=np.uint64) + base + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) * 2.0**-53


def hash_tensor(key: str, shape: tuple[int, ...], bound: float) -> torch.Tensor:
    """``U(-bound, bound)`` float32 of ``shape`` from :func:`hash_uniform` (``(2u - 1) * bound``, then rounded)."""
    n = int(np.prod(shape)) if shape else 1
    v = (2.0 * hash_uniform(key, n) - 1.0) * bound
    return torch.from_numpy(v.astype(np.float32).reshape(shape))


def fill_weights(net: nn.Module) -> nn.Module:
    """Overwrite every Conv2d / ConvTranspose2d / Linear weight and bias of ``net`` by the fixture's rule (module
    docstring), in place; BN parameters and buffers are left as initialised.

    Args:
        net: a freshly built network.
    Returns:
        ``net``.
    """
    with torch.no_grad():
        for name, m in net.named_modules():
            if not isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
                continue
            fan_in, _ = nn.init._calculate_fan_in_and_fan_out(m.weight)
            m.weight.copy_(hash_tensor(f"{name}.weight", tuple(m.weight.shape), float(np.sqrt(6.0 / fan_in))))
            if m.bias is not None:
                m.bias.copy_(hash_tensor(f"{name}.bias", tuple(m.bias.shape), float(1.0 / np.sqrt(fan_in))))
    return net


def case_network(case: str) -> nn.Module:
    """The case's network (train mode) with the fixture's weights.

    Args:
        case: a :data:`CASES` name.
    """
    space, arch, task = CASES[case]
    if space == "tnb101_micro":
        net = build_network((4, 1, 4, 1, 4), parse_micro(arch).ops, task, C=C)
    else:
        net = build_network(parse_macro(arch).modules, None, task, C=C)
    return fill_weights(net).train()


def weights_signature(net: nn.Module) -> tuple[int, float]:
    """``(parameter count, sum |w|)`` of the state dict's float tensors (float64 sum): what the fixture records."""
    params = sum(p.numel() for p in net.parameters())
    total = float(sum(t.detach().double().abs().sum() for t in net.state_dict().values() if t.is_floating_point()))
    return params, total


def _grid(u: np.ndarray, half_width: float) -> np.ndarray:
    """``U(-half_width, half_width)`` rounded to multiples of ``2^-10``: exact in float16 for ``half_width < 2``
    (the fixture stores them as float16, half the bytes, and they are the same numbers in float32)."""
    return np.round((2.0 * u - 1.0) * half_width * 1024.0) / 1024.0


def make_batch_arrays() -> dict[str, np.ndarray]:
    """The fixture's batches (what ``tnb101_batches.npz`` stores), from :func:`hash_uniform`.

    ``"images"`` ``[B, 3, 32, 32]`` (the input of every task but jigsaw) and ``"tiles"`` ``[B, 9, 3, 16, 16]``
    (jigsaw's): ``U(-sqrt 3, sqrt 3)`` (unit variance) on a ``2^-10`` grid, float16. ``"<task>/targets"``: class
    probabilities a softmax of noise with a bump on class ``(i mod 3) x 7`` of sample ``i`` (float32; their argmax
    repeats, so NASLib's epe_nas, which argmaxes them, has groups of several samples); jigsaw labels
    ``0, 1, 2, 0, ...`` times 331 (EPE-NAS's per-class groups have several members); segmentation labels uniform
    in 0..16 (uint8); regression and image targets ``U(-1, 1)`` on the grid (float16). :func:`fixture_batch` turns
    them into the task's dtypes.
    """
    out: dict[str, np.ndarray] = {
        "images": _grid(hash_uniform("batch/images", BATCH * 3 * IMAGE * IMAGE), np.sqrt(3.0))
        .reshape(BATCH, 3, IMAGE, IMAGE).astype(np.float16),
        "tiles": _grid(hash_uniform("batch/tiles", BATCH * JIGSAW_TILES * 3 * TILE * TILE), np.sqrt(3.0))
        .reshape(BATCH, JIGSAW_TILES, 3, TILE, TILE).astype(np.float16),
    }
    for task in TASKS:
        t = fixture_task(task)
        key = f"batch/{task}/targets"
        if t.target_kind == "class":
            y: np.ndarray = ((np.arange(BATCH) % 3) * 331).astype(np.int64)
        elif t.target_kind == "class_probs":
            z = hash_uniform(key, BATCH * int(t.num_classes)).reshape(BATCH, -1) * 4.0  # type: ignore[arg-type]
            z[np.arange(BATCH), (np.arange(BATCH) % 3) * 7] += 8.0  # argmax classes repeat (NASLib's epe_nas groups)
            e = np.exp(z - z.max(axis=1, keepdims=True))
            y = (e / e.sum(axis=1, keepdims=True)).astype(np.float32)
        elif t.target_kind == "pixel_class":
            k = int(t.num_classes)  # type: ignore[arg-type]
            y = np.floor(hash_uniform(key, BATCH * IMAGE * IMAGE) * k).astype(np.uint8)
            y = y.reshape(BATCH, IMAGE, IMAGE)
        else:
            n = BATCH * int(np.prod(t.target_shape))
            y = _grid(hash_uniform(key, n), 1.0).reshape(BATCH, *t.target_shape).astype(np.float16)
        out[f"{task}/targets"] = y
    return out


def fixture_batch(arrays: Mapping[str, np.ndarray], task: str) -> Batch:
    """The stored batch of ``task`` as a raynas :class:`~raynas.data.batch.Batch` of :func:`fixture_task` (float32
    inputs, int64 class targets, float32 other targets: the stored float16 values are exact in float32)."""
    t = fixture_task(task)
    x = torch.from_numpy(np.asarray(arrays["tiles" if task == "jigsaw" else "images"], dtype=np.float32))
    y = torch.from_numpy(np.asarray(arrays[f"{task}/targets"], dtype=np.int64 if t.integer_targets else np.float32))
    return Batch.for_task(x, y, t, name=f"tnb101-parity:{task}")
