"""Reader of the CIFAR-10 / CIFAR-100 "python version" pickle batches (no torchvision).

File layout (as distributed by the CIFAR authors, Krizhevsky 2009):
- CIFAR-10 (``cifar-10-batches-py/``): ``data_batch_1`` .. ``data_batch_5``, ``test_batch``, ``batches.meta``;
  each batch is a dict with ``b"data"`` (``uint8 [N, 3072]``: 1024 red, then 1024 green, then 1024 blue
  values, each plane row-major 32x32) and ``b"labels"`` (N ints); the meta holds ``b"label_names"``.
- CIFAR-100 (``cifar-100-python/``): ``train``, ``test``, ``meta``; labels are ``b"fine_labels"`` and the meta
  holds ``b"fine_label_names"``.

The pickles are read with an unpickler that only accepts the few numpy globals an array needs, so a
malicious file cannot run code.
"""

from __future__ import annotations

import logging
import pickle
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from raynas.errors import DataError

log = logging.getLogger(__name__)

#: files per variant and split
FILES: dict[str, dict[str, tuple[str, ...]]] = {
    "cifar10": {"train": tuple(f"data_batch_{i}" for i in range(1, 6)), "test": ("test_batch",)},
    "cifar100": {"train": ("train",), "test": ("test",)},
}
_META = {"cifar10": ("batches.meta", b"label_names"), "cifar100": ("meta", b"fine_label_names")}
_LABELS = {"cifar10": b"labels", "cifar100": b"fine_labels"}
_SUBDIRS = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}
NUM_CLASSES = {"cifar10": 10, "cifar100": 100}

#: (module, name) pairs a CIFAR pickle may reference: numpy array reconstruction only
_ALLOWED = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("_codecs", "encode"),
}


class ImageData(NamedTuple):
    """A whole split in memory: ``images uint8 [N, H, W, 3]``, ``labels int64 [N]``, class names."""

    images: np.ndarray
    labels: np.ndarray
    classes: list[str]

    @property
    def num_classes(self) -> int:
        return len(self.classes)


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR file")
        if module.startswith("numpy.core."):  # pickles from numpy<2 name the old module path
            module = "numpy._core." + module[len("numpy.core."):]
            try:
                __import__(module)
            except ImportError:  # numpy < 2 has only the old path
                module = module.replace("numpy._core.", "numpy.core.")
        return super().find_class(module, name)


def _unpickle(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            # encoding="bytes": the official files were written by Python 2 (keys come back as bytes)
            obj = _SafeUnpickler(f, encoding="bytes").load()
    except FileNotFoundError:
        raise DataError(f"CIFAR file {path} is missing") from None
    except OSError as e:
        raise DataError(f"cannot read CIFAR file {path}: {e.strerror or e}") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            ImportError, MemoryError) as e:
        raise DataError(f"CIFAR file {path} is corrupt or not a CIFAR pickle ({type(e).__name__}: {e})") from None
    if not isinstance(obj, dict):
        raise DataError(f"CIFAR file {path} holds a {type(obj).__name__}, expected a dict")
    # files written by Python 3 with str keys are accepted too
    return {k.encode() if isinstance(k, str) else k: v for k, v in obj.items()}


def detect_variant(path: str | Path) -> str:
    """``"cifar10"`` or ``"cifar100"`` from the files present in ``path`` (or its standard subdirectory)."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"CIFAR directory {p} does not exist")
    for variant in ("cifar10", "cifar100"):
        for d in (p, p / _SUBDIRS[variant]):
            if (d / FILES[variant]["test"][0]).is_file() or (d / FILES[variant]["train"][0]).is_file():
                return variant
    raise DataError(f"no CIFAR-10 or CIFAR-100 python batches found in {p}")


def find_dir(path: str | Path, variant: str) -> Path:
    """The directory holding ``variant``'s batch files: ``path`` itself or ``path/<standard subdir>``."""
    if variant not in FILES:
        raise DataError(f"unknown CIFAR variant {variant!r} (known: {', '.join(FILES)})")
    p = Path(path)
    if not p.exists():
        raise DataError(f"CIFAR directory {p} does not exist")
    for d in (p, p / _SUBDIRS[variant]):
        if any((d / name).is_file() for files in FILES[variant].values() for name in files):
            return d
    expected = ", ".join(FILES[variant]["train"] + FILES[variant]["test"])
    raise DataError(f"{p} holds no {variant} batch files (expected {expected} there or in {_SUBDIRS[variant]}/)")


def _class_names(d: Path, variant: str) -> list[str]:
    name, key = _META[variant]
    n = NUM_CLASSES[variant]
    if not (d / name).is_file():  # the meta file only names classes; numbers suffice without it
        log.warning("%s: no %s file, classes are named by number", d, name)
        return [str(i) for i in range(n)]
    names = _unpickle(d / name).get(key)
    if not isinstance(names, (list, tuple)) or len(names) != n:
        raise DataError(f"{d / name}: {key.decode()} must list {n} class names")
    return [x.decode() if isinstance(x, bytes) else str(x) for x in names]


def _read_batch(path: Path, label_key: bytes, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """``(uint8 [N, 32, 32, 3], int64 [N])`` of one batch file."""
    d = _unpickle(path)
    if b"data" not in d or label_key not in d:
        raise DataError(f"CIFAR file {path} lacks {'data' if b'data' not in d else label_key.decode()!r}")
    data = np.asarray(d[b"data"])
    labels = np.asarray(d[label_key])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise DataError(f"CIFAR file {path}: data must be uint8 [N, 3072], got {data.dtype} {data.shape}")
    if labels.ndim != 1 or len(labels) != len(data) or not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"CIFAR file {path}: expected {len(data)} integer labels, got {labels.dtype} {labels.shape}")
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise DataError(f"CIFAR file {path}: labels outside [0, {num_classes})")
    # [N, 3072] = N x (R plane, G plane, B plane), each 32x32 row-major -> [N, 3, 32, 32] -> NHWC
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels.astype(np.int64)


def load_cifar(path: str | Path, split: str = "train", variant: str | None = None) -> ImageData:
    """Read a whole CIFAR split.

    Args:
        path: the batch directory, or the directory containing ``cifar-10-batches-py/`` /
            ``cifar-100-python/``.
        split: ``"train"`` (50,000 images) or ``"test"`` (10,000).
        variant: ``"cifar10"`` / ``"cifar100"``; detected from the files when None.
    Returns:
        ``ImageData(images uint8 [N, 32, 32, 3], labels int64 [N], classes)``.
    Raises:
        DataError: missing directory or file, corrupt pickle, wrong shapes or labels.
    """
    variant = variant or detect_variant(path)
    d = find_dir(path, variant)
    if split not in FILES[variant]:
        raise DataError(f"unknown CIFAR split {split!r} (known: {', '.join(FILES[variant])})")
    parts = [_read_batch(d / name, _LABELS[variant], NUM_CLASSES[variant]) for name in FILES[variant][split]]
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    return ImageData(images, labels, _class_names(d, variant))
