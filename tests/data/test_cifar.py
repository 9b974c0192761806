"""CIFAR pickle reader on generated files in the real format."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

from raynas.data.cifar import load_cifar
from raynas.errors import DataError
from raynas.testing import fake_cifar_image, write_fake_cifar


def test_cifar10_train_decodes_planes_and_labels(tmp_path):
    d = write_fake_cifar(tmp_path, "cifar10", n_per_file=3)
    data = load_cifar(d, "train")
    assert data.images.shape == (15, 32, 32, 3) and data.images.dtype == np.uint8
    assert data.labels.tolist() == [i % 10 for i in range(15)] and data.labels.dtype == np.int64
    assert data.classes == [f"class{c}" for c in range(10)] and data.num_classes == 10
    # sample 4 (second file): R=12, G=13, B=14, and the marker in the red plane at row 0, column 1
    assert data.images[4, 5, 5].tolist() == [12, 13, 14]
    assert data.images[4, 0, 1].tolist() == [255, 13, 14]
    assert data.images[4, 1, 0].tolist() == [12, 13, 14]  # not transposed
    np.testing.assert_array_equal(data.images[14], fake_cifar_image(14))


def test_cifar10_test_split_and_parent_dir(tmp_path):
    write_fake_cifar(tmp_path, "cifar10", n_per_file=2)
    data = load_cifar(tmp_path, "test")  # the directory that contains cifar-10-batches-py/
    assert data.images.shape == (2, 32, 32, 3)
    assert data.labels.tolist() == [0, 1]  # samples 1000, 1001
    assert data.images[1, 3, 3].tolist() == [(3 * 1001 + c) % 256 for c in range(3)]


def test_cifar100_fine_labels(tmp_path):
    d = write_fake_cifar(tmp_path, "cifar100", n_per_file=4, protocol=pickle.HIGHEST_PROTOCOL)
    data = load_cifar(d, "train")
    assert data.num_classes == 100 and data.classes[7] == "class7"
    assert data.labels.tolist() == [0, 1, 2, 3]
    assert load_cifar(tmp_path, "test", variant="cifar100").labels.tolist() == [0, 1, 2, 3]  # 1000..1003 % 100


def test_missing_directory_and_file(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_cifar(tmp_path / "nope")
    with pytest.raises(DataError, match="no CIFAR"):
        load_cifar(tmp_path)
    d = write_fake_cifar(tmp_path, "cifar10", n_per_file=1)
    os.remove(d / "data_batch_3")
    with pytest.raises(DataError, match="data_batch_3 is missing"):
        load_cifar(d, "train")
    with pytest.raises(DataError, match="unknown CIFAR split"):
        load_cifar(d, "valid")


def test_corrupt_and_truncated_files(tmp_path):
    d = write_fake_cifar(tmp_path, "cifar10", n_per_file=2)
    good = (d / "test_batch").read_bytes()
    (d / "test_batch").write_bytes(good[: len(good) // 2])
    with pytest.raises(DataError, match="corrupt"):
        load_cifar(d, "test")
    (d / "test_batch").write_bytes(b"this is not a pickle at all")
    with pytest.raises(DataError, match="corrupt"):
        load_cifar(d, "test")


def test_wrong_content_is_rejected(tmp_path):
    d = write_fake_cifar(tmp_path, "cifar10", n_per_file=2)
    bad = {b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}
    (d / "test_batch").write_bytes(pickle.dumps(bad))
    with pytest.raises(DataError, match=r"uint8 \[N, 3072\]"):
        load_cifar(d, "test")
    bad = {b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]}
    (d / "test_batch").write_bytes(pickle.dumps(bad))
    with pytest.raises(DataError, match="labels outside"):
        load_cifar(d, "test")
    (d / "test_batch").write_bytes(pickle.dumps({b"data": np.zeros((2, 3072), np.uint8)}))
    with pytest.raises(DataError, match="lacks 'labels'"):
        load_cifar(d, "test")


class _Evil:
    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.system, ("echo pwned > /dev/null",))


def test_pickle_cannot_run_code(tmp_path):
    d = write_fake_cifar(tmp_path, "cifar10", n_per_file=1)
    (d / "test_batch").write_bytes(pickle.dumps({b"data": _Evil(), b"labels": [0]}))
    with pytest.raises(DataError, match="not allowed"):
        load_cifar(d, "test")
