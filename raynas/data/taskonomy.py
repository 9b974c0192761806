"""Taskonomy reader: scoring batches of the TransNAS-Bench-101 tasks from Taskonomy's published file layout.

The layout (as TransNAS-Bench-101's ``lib/data/taskonomy_dataset.py`` reads it, one folder per building and per
domain, the file name keyed by camera point and view)::

    ROOT/<building>/rgb/point_<p>_view_<v>_domain_rgb.png                    the input image
    ROOT/<building>/class_object/point_<p>_view_<v>_domain_class_object.npy    object class probabilities
    ROOT/<building>/class_scene/point_<p>_view_<v>_domain_class_scene.npy      scene class probabilities
    ROOT/<building>/room_layout/point_<p>_view_<v>_domain_room_layout.npy      9 room-layout values
    ROOT/<building>/segmentsemantic/point_<p>_view_<v>_domain_segmentsemantic.png   class ids (0 = unlabelled)
    ROOT/<building>/normal/point_<p>_view_<v>_domain_normal.png                surface normals as RGB

``ROOT`` may also be one building's folder (it holds ``rgb/``). autoencoder and jigsaw read only ``rgb``. The
samples of a task are the ``(building, point, view)`` with both an RGB image and that task's target file, in
sorted order; a batch draws ``B`` of them without replacement with a NumPy generator seeded by the seed.

Per task, as TransNAS-Bench-101's loaders (``load_ops``) with their validation transforms (no augmentation):

* inputs are resized to ``size x size`` (bilinear; TNB101: 256) and normalised per channel: mean 0.5224,
  0.5222, 0.5221 / std 0.2234, 0.2235, 0.2236 for class_scene, class_object and room_layout, mean 0.5 / std
  0.5 for the others;
* class_scene / class_object: the ``.npy`` holds Taskonomy's probabilities over 365 scenes / 1000 objects, or
  already the network's classes. A vector of the task's width ``K`` (63 / 100) is used as it is; a raw one is
  reduced with TNB101's selection mask ``ROOT/class_scene_selected.npy`` / ``ROOT/class_object_selected.npy``
  (copy them from TNB101's ``lib/data``: 63 of 365 / 100 of 1000 classes). Either is then divided by its sum
  (``load_class_*_logits(selected=True, normalize=True)``);
* room_layout: the 9 values of the ``.npy`` (TNB101's processed targets, already standardised);
* segmentsemantic: the label image, resized with nearest neighbours, ``0 -> 1`` then minus 1 (ids 0..16);
* normal: the RGB normal image resized (bilinear), in ``[0, 1]`` (TNB101 does not normalise this target);
* autoencoder: the target is the normalised input itself;
* jigsaw: a permutation index ``k`` drawn uniformly from ``[0, 1000)``; the image is resized to ``3u x 3u``
  with ``u = floor(size * 85 / 64)`` (TNB101: 255, tiles of 64), tile ``n`` is a ``size x size`` crop at a
  random offset inside grid cell ``perm[k][n]``, in ``[0, 1]`` (NASLib's ``norm=False``). ``perm`` is TNB101's
  ``permutations_hamming_max_1000.npy`` (``[1000, 9]``), read from ``ROOT``. TNB101's extra centre crop (0.9)
  and colour jitter are augmentations and are not applied.

Not read: NASLib's room-layout targets computed from ``point_info`` JSON camera poses (TNB101's own loader reads
the processed ``.npy``), and TNB101's split files (every sample found is eligible).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import numpy as np
import torch

from raynas.data.batch import Batch
from raynas.errors import ConfigError, DataError

if TYPE_CHECKING:
    from raynas.tasks import Task

__all__ = ["DOMAINS", "JIGSAW_PERMUTATIONS", "open_source", "taskonomy_batch", "taskonomy_samples"]

#: task -> (folder, file extension) of its target, as TNB101's ``DOMAIN_DATA_SOURCE``
DOMAINS: dict[str, tuple[str, str]] = {
    "autoencoder": ("rgb", "png"),
    "class_object": ("class_object", "npy"),
    "class_scene": ("class_scene", "npy"),
    "normal": ("normal", "png"),
    "room_layout": ("room_layout", "npy"),
    "segmentsemantic": ("segmentsemantic", "png"),
    "jigsaw": ("rgb", "png"),
}
#: the per-channel input normalisation of each task's validation transform (mean, std)
_CLASS_NORM = ((0.5224, 0.5222, 0.5221), (0.2234, 0.2235, 0.2236))
_HALF_NORM = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
#: raw Taskonomy widths of the class targets and TNB101's selection masks
_RAW_CLASSES = {"class_scene": 365, "class_object": 1000}
#: TNB101's jigsaw permutation set, expected in the data root
JIGSAW_PERMUTATIONS = "permutations_hamming_max_1000.npy"

_RGB_NAME = re.compile(r"^(point_\d+_view_\d+)_domain_rgb\.png$")


def _buildings(root: Path) -> list[Path]:
    if (root / "rgb").is_dir():
        return [root]
    return sorted(p for p in root.iterdir() if p.is_dir() and (p / "rgb").is_dir())


def _target_path(building: Path, key: str, task: str) -> Path:
    folder, ext = DOMAINS[task]
    return building / folder / f"{key}_domain_{folder}.{ext}"


def taskonomy_samples(root: str | Path, task: str) -> list[tuple[Path, str]]:
    """The samples of ``task`` under ``root``: ``(building folder, "point_<p>_view_<v>")`` with an RGB image and
    the task's target file, sorted.

    Args:
        root: a Taskonomy root (``<building>/rgb/...``) or one building's folder.
        task: a :data:`DOMAINS` key.
    Returns:
        the samples, sorted by building then key.
    Raises:
        ConfigError: not a TNB101 task. DataError: no building with an ``rgb`` folder, or no sample.
    """
    if task not in DOMAINS:
        raise ConfigError(f"taskonomy has targets for the TransNAS-Bench-101 tasks ({', '.join(DOMAINS)}), "
                          f"not for task {task!r}")
    root = Path(root)
    buildings = _buildings(root)
    if not buildings:
        raise DataError(f"taskonomy: {root} has no <building>/rgb/ folder (Taskonomy's layout: "
                        "ROOT/<building>/rgb/point_<p>_view_<v>_domain_rgb.png)")
    out: list[tuple[Path, str]] = []
    for b in buildings:
        for f in sorted((b / "rgb").iterdir()):
            m = _RGB_NAME.match(f.name)
            if m and _target_path(b, m.group(1), task).is_file():
                out.append((b, m.group(1)))
    if not out:
        folder, ext = DOMAINS[task]
        raise DataError(f"taskonomy: no sample of task {task!r} under {root} (an rgb image with its target "
                        f"<building>/{folder}/point_<p>_view_<v>_domain_{folder}.{ext})")
    return out


def _read_image(path: Path, size: int | tuple[int, int], nearest: bool = False) -> np.ndarray:
    """``uint8 [H, W, 3]`` (or ``[H, W]`` for a label image), resized to ``size`` (square for an int)."""
    from PIL import Image, UnidentifiedImageError

    wh = (size, size) if isinstance(size, int) else (size[1], size[0])
    try:
        with Image.open(path) as im:
            im = im if nearest else im.convert("RGB")
            resample = Image.Resampling.NEAREST if nearest else Image.Resampling.BILINEAR
            return np.asarray(im.resize(wh, resample))
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise DataError(f"taskonomy: cannot read image {path}: {e}") from None


def _to_float(img: np.ndarray) -> torch.Tensor:
    """``uint8 [H, W, 3] -> float32 [3, H, W]`` in ``[0, 1]``."""
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))).float().div_(255.0)


def _normalise(x: torch.Tensor, norm: tuple[tuple[float, ...], tuple[float, ...]]) -> torch.Tensor:
    mean = torch.tensor(norm[0]).view(3, 1, 1)
    std = torch.tensor(norm[1]).view(3, 1, 1)
    return (x - mean) / std


def _load_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise DataError(f"taskonomy: cannot read {path}: {e}") from None


def _class_target(path: Path, root: Path, task: "Task") -> torch.Tensor:
    """The probability vector ``[K]`` of a class_scene / class_object target (module docstring)."""
    k = int(task.num_classes)  # type: ignore[arg-type]  # a class_probs task has classes
    v = _load_npy(path).astype(np.float64).reshape(-1)
    if v.size != k:
        raw = _RAW_CLASSES[task.name]
        mask_path = root / f"{task.name}_selected.npy"
        if v.size != raw:
            raise DataError(f"taskonomy: {path} has {v.size} values; task {task.name!r} needs {k} (the network's "
                            f"classes) or Taskonomy's {raw}")
        if not mask_path.is_file():
            raise DataError(f"taskonomy: {path} holds Taskonomy's {raw} classes; put TransNAS-Bench-101's selection "
                            f"mask {mask_path.name} (lib/data) in {root} to reduce them to the network's {k}")
        mask = _load_npy(mask_path).reshape(-1).astype(bool)
        if mask.size != raw or int(mask.sum()) != k:
            raise DataError(f"taskonomy: {mask_path} must select {k} of {raw} classes, "
                            f"selects {int(mask.sum())} of {mask.size}")
        v = v[mask]
    total = v.sum()
    if not np.isfinite(total) or total <= 0:
        raise DataError(f"taskonomy: {path}: class probabilities must have a positive finite sum, got {total}")
    return torch.from_numpy(v / total).float()


def _jigsaw(img_path: Path, root: Path, size: int, rng: np.random.Generator, classes: int) -> tuple[torch.Tensor, int]:
    """``(tiles float32 [9, 3, size, size] in [0, 1], permutation index)`` (module docstring)."""
    perm_path = root / JIGSAW_PERMUTATIONS
    if not perm_path.is_file():
        raise DataError(f"taskonomy jigsaw: the targets are indices into TransNAS-Bench-101's permutation set; put "
                        f"{JIGSAW_PERMUTATIONS} (lib/data) in {root}")
    perms = _load_npy(perm_path)
    if perms.ndim != 2 or perms.shape != (classes, 9) or sorted(perms[0].tolist()) != list(range(9)):
        raise DataError(f"taskonomy jigsaw: {perm_path} must be {classes} permutations of 0..8, [{classes}, 9], "
                        f"got shape {perms.shape}")
    unit = size * 85 // 64  # TNB101: 255 / 3 = 85 per grid cell for 64-pixel tiles
    img = _to_float(_read_image(img_path, 3 * unit))
    k = int(rng.integers(classes))
    tiles = torch.empty((9, 3, size, size), dtype=torch.float32)
    for n, pos in enumerate(perms[k].tolist()):
        top, left = (pos // 3) * unit, (pos % 3) * unit
        di, dj = (int(v) for v in rng.integers(0, unit - size + 1, size=2))
        tiles[n] = img[:, top + di:top + di + size, left + dj:left + dj + size]
    return tiles, k


def taskonomy_batch(arg: str, task: "Task", batch_size: int, seed: int, size: int, name: str) -> Batch:
    """A scoring batch of a TransNAS-Bench-101 ``task`` from the Taskonomy files under ``arg`` (module docstring).

    Args:
        arg: the data root (``taskonomy:PATH``).
        task: the task (:meth:`raynas.spaces.tnb101.TNB101Space.task`): its name picks the target files, its
            shape and classes check them.
        batch_size: ``B`` samples, drawn without replacement.
        seed: seeds the draw (and jigsaw's permutations and tile offsets).
        size: the image side (jigsaw: the tile side).
        name: the batch's description.
    Returns:
        ``Batch`` with inputs ``float32 [B, 3, size, size]`` (jigsaw ``[B, 9, 3, size, size]``) and targets
        ``[B, *task.target_shape]``.
    Raises:
        DataError: missing or unreadable files, fewer samples than ``B``, targets of the wrong shape.
    """
    root = Path(arg)
    samples = taskonomy_samples(root, task.name)
    if batch_size > len(samples):
        raise DataError(f"taskonomy: batch of {batch_size} asked, {len(samples)} sample(s) of task {task.name!r} "
                        f"under {root}")
    rng = np.random.default_rng(int(seed))
    chosen = [samples[i] for i in rng.choice(len(samples), size=batch_size, replace=False)]
    norm = _CLASS_NORM if task.name in ("class_scene", "class_object", "room_layout") else _HALF_NORM
    inputs, targets = [], []
    for building, key in chosen:
        rgb = building / "rgb" / f"{key}_domain_rgb.png"
        target_path = _target_path(building, key, task.name)
        if task.name == "jigsaw":
            tiles, k = _jigsaw(rgb, root, size, rng, int(task.num_classes))  # type: ignore[arg-type]
            inputs.append(tiles)
            targets.append(torch.tensor(k, dtype=torch.int64))
            continue
        x = _normalise(_to_float(_read_image(rgb, size)), norm)
        inputs.append(x)
        if task.name in _RAW_CLASSES:
            targets.append(_class_target(target_path, root, task))
        elif task.name == "room_layout":
            v = _load_npy(target_path).astype(np.float32).reshape(-1)
            if v.shape != tuple(task.target_shape):
                raise DataError(f"taskonomy: {target_path} has {v.size} values, room_layout needs "
                                f"{task.target_shape[0]}")
            targets.append(torch.from_numpy(v))
        elif task.name == "segmentsemantic":
            label = _read_image(target_path, task.target_shape, nearest=True)  # type: ignore[arg-type]
            if label.ndim == 3:  # an RGB-saved label map: the ids are in every channel
                label = label[..., 0]
            label = label.astype(np.int64)
            label[label == 0] = 1  # TNB101: unlabelled pixels join class 1, then ids shift to 0..16
            targets.append(torch.from_numpy(label - 1))
        elif task.name == "normal":
            targets.append(_to_float(_read_image(target_path, task.target_shape[1:])))  # type: ignore[arg-type]
        else:  # autoencoder: reconstruct the (normalised) input
            targets.append(x.clone())
    return Batch.for_task(torch.stack(inputs).contiguous(), torch.stack(targets), task, name)


def open_source(arg: str, split: str, size: int) -> NoReturn:
    """Taskonomy as a classification dataset: refused (it has per-task targets, no class labels).

    Raises:
        ConfigError: always, saying how to use it.
    """
    raise ConfigError("taskonomy has per-task targets, not class labels: score a TransNAS-Bench-101 space with "
                      "--task NAME (e.g. --space tnb101_micro --task room_layout --data taskonomy:PATH)")
