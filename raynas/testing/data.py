"""Tiny CIFAR pickle batches in the real on-disk format, so the loaders are tested without the real data."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np


def fake_cifar_image(i: int):  # type: ignore[no-untyped-def]
    """``uint8 [32, 32, 3]`` of sample ``i``: channels filled with ``3i, 3i+1, 3i+2 (mod 256)``, and the red
    pixel at row 0, column 1 set to 255 (checks the R/G/B plane and row-major decoding)."""
    img = np.empty((32, 32, 3), dtype=np.uint8)
    for c in range(3):
        img[:, :, c] = (3 * i + c) % 256
    img[0, 1, 0] = 255
    return img


def write_fake_cifar(root, variant: str = "cifar10", n_per_file: int = 10, protocol: int = 2):  # type: ignore[no-untyped-def]
    """Write CIFAR ``variant`` batches under ``root/<standard subdir>/``; returns that directory.

    Sample ``i`` (numbered across the split's files) has image :func:`fake_cifar_image` and label
    ``i % num_classes``; the test split numbers from 1000.
    """
    k = 10 if variant == "cifar10" else 100
    sub = "cifar-10-batches-py" if variant == "cifar10" else "cifar-100-python"
    files = ({"train": [f"data_batch_{j}" for j in range(1, 6)], "test": ["test_batch"]} if variant == "cifar10"
             else {"train": ["train"], "test": ["test"]})
    label_key = b"labels" if variant == "cifar10" else b"fine_labels"
    d = Path(root) / sub
    d.mkdir(parents=True, exist_ok=True)
    for split, names in files.items():
        start = 0 if split == "train" else 1000
        for j, name in enumerate(names):
            ids = range(start + j * n_per_file, start + (j + 1) * n_per_file)
            # [N, 32, 32, 3] -> [N, 3, 32, 32] -> [N, 3072]: R plane, G plane, B plane, each row-major
            data = np.stack([fake_cifar_image(i) for i in ids]).transpose(0, 3, 1, 2).reshape(len(ids), -1)
            obj = {b"batch_label": name.encode(), b"data": data, label_key: [i % k for i in ids]}
            (d / name).write_bytes(pickle.dumps(obj, protocol=protocol))
    meta_name, meta_key = ("batches.meta", b"label_names") if variant == "cifar10" else ("meta", b"fine_label_names")
    (d / meta_name).write_bytes(pickle.dumps({meta_key: [f"class{c}".encode() for c in range(k)]}, protocol=protocol))
    return d
