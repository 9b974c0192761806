"""create_batch / create_dataset: spec parsing, determinism of every provider, balance, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from raynas.data import DATASETS, create_batch, create_dataset
from raynas.data.noise import noise_batch
from raynas.data.transforms import MEAN_STD
from raynas.errors import ConfigError, DataError, UnknownNameError
from raynas.testing import write_fake_cifar


@pytest.fixture()
def cifar_dir(tmp_path):  # type: ignore[no-untyped-def]
    write_fake_cifar(tmp_path / "cifar", "cifar10", n_per_file=10)  # 50 train images, 5 per class
    return tmp_path / "cifar"


@pytest.fixture()
def image_dir(tmp_path):  # type: ignore[no-untyped-def]
    root = tmp_path / "images"
    for k, name in enumerate(["a", "b", "c"]):
        (root / name).mkdir(parents=True)
        for j in range(5):
            Image.new("RGB", (8, 8), (40 * k + j, 10, 200)).save(root / name / f"{j}.png")
    return root


def test_registry_names():
    assert DATASETS.names() == ["cifar10", "cifar100", "digits", "folder", "noise", "taskonomy"]


def test_every_provider_is_deterministic(cifar_dir, image_dir):
    specs = ["digits", "noise", "noise:3", f"cifar10:{cifar_dir}", f"folder:{image_dir}"]
    for spec in specs:
        a, b = create_batch(spec, 8, seed=1, size=16), create_batch(spec, 8, seed=1, size=16)
        c = create_batch(spec, 8, seed=2, size=16)
        assert a.inputs.shape == (8, 3, 16, 16) and a.inputs.dtype == torch.float32, spec
        assert torch.equal(a.inputs, b.inputs) and torch.equal(a.labels, b.labels), spec
        assert not torch.equal(a.inputs, c.inputs), spec
        assert a.name == f"{spec}:seed=1:n=8:size=16"


def test_digits_batch_is_balanced():
    b = create_batch("digits", batch_size=64, seed=0)
    assert b.inputs.shape == (64, 3, 32, 32) and b.num_classes == 10
    assert sorted(torch.bincount(b.labels, minlength=10).tolist()) == [6] * 6 + [7] * 4
    assert b.name == "digits:seed=0:n=64:size=32"


def test_cifar_batch_values(cifar_dir):
    b = create_batch(f"cifar10:{cifar_dir}", batch_size=20, seed=0, size=32)
    assert torch.bincount(b.labels).tolist() == [2] * 10
    # every fake image is channel-constant (3i, 3i+1, 3i+2) apart from one red marker pixel
    mean, std = MEAN_STD["cifar10"]
    x = b.inputs[:, :, 5, 5] * torch.tensor(std) + torch.tensor(mean)
    i = torch.round(x[:, 0] * 255 / 3)
    assert torch.allclose(x * 255, torch.stack([3 * i, 3 * i + 1, 3 * i + 2], 1), atol=1e-3)
    assert torch.equal(i.long() % 10, b.labels)  # label = i % 10
    # batches come from the train part of the fixed 80/20 split: one image per class is held out
    _, y_val, k = create_dataset(f"cifar10:{cifar_dir}", "val", 32)
    assert k == 10 and torch.bincount(y_val).tolist() == [1] * 10


def test_cifar_splits(cifar_dir):
    x, y, k = create_dataset(f"cifar10:{cifar_dir}", "train", 8)
    assert x.shape == (40, 3, 8, 8) and y.shape == (40,) and k == 10
    x, y, _ = create_dataset(f"cifar10:{cifar_dir}", "test", 8)
    assert y.tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
    assert create_dataset(f"cifar10:{cifar_dir}", "all", 8)[0].shape[0] == 50


def test_folder_is_normalised_by_its_own_statistics(image_dir):
    x, y, k = create_dataset(f"folder:{image_dir}", "all", 4)
    assert k == 3 and y.tolist() == [0] * 5 + [1] * 5 + [2] * 5
    assert x.mean(dim=(0, 2, 3)).abs().max() < 1e-5
    assert float(x[:, 0].std(unbiased=False)) == pytest.approx(1.0, abs=1e-4)
    assert float(x[:, 1].abs().max()) < 1e-6  # green is constant (10): centred, not blown up by std ~ 0


def test_noise_batch():
    b = create_batch("noise:5", batch_size=8, seed=3, size=4)
    g = torch.Generator().manual_seed(3)
    assert torch.equal(b.inputs, torch.randn(8, 3, 4, 4, generator=g))
    assert torch.equal(b.labels, torch.randint(5, (8,), generator=g))
    assert b.num_classes == 5 and b.name == "noise:5:seed=3:n=8:size=4"
    assert noise_batch(4, 2, 10, 0).name == "noise:10:seed=0:n=4"
    x, y, k = create_dataset("noise:4", "val", 4)
    assert x.shape == (256, 3, 4, 4) and k == 4 and int(y.max()) < 4


def test_digits_dataset_matches_split():
    x, y, k = create_dataset("digits", "val", 8)
    assert x.shape == (359, 3, 8, 8) and k == 10


def test_spec_errors(tmp_path):
    with pytest.raises(UnknownNameError, match="did you mean 'digits'"):
        create_batch("digit")
    with pytest.raises(ConfigError, match="needs a path"):
        create_batch("cifar10")
    with pytest.raises(DataError, match="does not exist"):
        create_batch(f"cifar10:{tmp_path / 'missing'}")
    with pytest.raises(DataError, match="no cifar10 batch files"):
        create_batch(f"cifar10:{tmp_path}")
    with pytest.raises(ConfigError, match="integer number of classes"):
        create_batch("noise:x")
    with pytest.raises(ConfigError, match="takes no argument"):
        create_batch("digits:foo")
    with pytest.raises(DataError, match="exceeds"):
        create_batch("digits", batch_size=2000)
    with pytest.raises(DataError, match="no test split"):
        create_dataset("digits", "test")
    assert np.isfinite(create_batch("digits", 1, size=2).inputs.numpy()).all()
