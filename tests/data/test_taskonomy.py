"""The Taskonomy reader (``taskonomy:PATH``) on small files written here in Taskonomy's published layout
(``<building>/<domain>/point_<p>_view_<v>_domain_<domain>.<ext>``), one batch per TransNAS-Bench-101 task."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from raynas.data import batch_name, create_batch, create_dataset
from raynas.data.taskonomy import JIGSAW_PERMUTATIONS, taskonomy_samples
from raynas.errors import ConfigError, DataError
from raynas.spaces.tnb101.space import task_contract

SIZE = 16  # images written at the batch size's side: the resize keeps them, so values are predictable
KEYS = ("point_0_view_0", "point_0_view_1", "point_3_view_2")


def _write(root: Path, building: str, key: str, folder: str, ext: str, data: np.ndarray) -> None:
    d = root / building / folder
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"{key}_domain_{folder}.{ext}"
    if ext == "npy":
        np.save(path, data)
    else:
        Image.fromarray(data).save(path)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two buildings of three views: rgb, the class / room-layout npy files, segmentation and normal pngs, and
    TNB101's selection masks and jigsaw permutation set (made up here, of the published shapes)."""
    root = tmp_path_factory.mktemp("taskonomy")
    rng = np.random.default_rng(0)
    for b, building in enumerate(("allensville", "beechwood")):
        for i, key in enumerate(KEYS):
            _write(root, building, key, "rgb", "png", rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8))
            _write(root, building, key, "class_scene", "npy", rng.random(63))  # already the network's 63 classes
            _write(root, building, key, "class_object", "npy", rng.random(1000))  # Taskonomy's raw 1000 classes
            _write(root, building, key, "room_layout", "npy", rng.normal(size=9))
            _write(root, building, key, "segmentsemantic", "png", rng.integers(0, 18, (SIZE, SIZE), dtype=np.uint8))
            _write(root, building, key, "normal", "png", rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8))
    mask = np.zeros(1000, dtype=np.int64)
    mask[rng.choice(1000, 100, replace=False)] = 1
    np.save(root / "class_object_selected.npy", mask)
    np.save(root / JIGSAW_PERMUTATIONS, np.stack([rng.permutation(9) for _ in range(1000)]))
    (root / "beechwood" / "rgb" / "notes.txt").write_text("not a sample")  # ignored: not a view's image
    return root


def _task(name: str, size: int = SIZE):  # type: ignore[no-untyped-def]
    # the contract itself: the reader needs no network, so no decoder's size rule (tnb101_micro.task checks that)
    return task_contract(name, image_size=size)


def _rgb(building: Path, key: str) -> np.ndarray:
    return np.asarray(Image.open(building / "rgb" / f"{key}_domain_rgb.png"))


def test_samples_are_the_views_with_a_target(root: Path) -> None:
    samples = taskonomy_samples(root, "room_layout")
    assert [(b.name, k) for b, k in samples] == [(b, k) for b in ("allensville", "beechwood") for k in KEYS]
    (root / "beechwood" / "room_layout" / f"{KEYS[1]}_domain_room_layout.npy").rename(root / "moved.npy")
    try:
        assert len(taskonomy_samples(root, "room_layout")) == 5  # a view without its target is not a sample
    finally:
        (root / "moved.npy").rename(root / "beechwood" / "room_layout" / f"{KEYS[1]}_domain_room_layout.npy")
    # one building's folder is a root of its own
    assert len(taskonomy_samples(root / "allensville", "normal")) == 3


@pytest.mark.parametrize("name", ["class_scene", "class_object", "room_layout", "segmentsemantic", "normal",
                                  "autoencoder", "jigsaw"])
def test_every_task_reads_a_batch_of_its_shape_reproducibly(root: Path, name: str) -> None:
    task = _task(name)
    spec = f"taskonomy:{root}"
    a = create_batch(spec, 4, 1, SIZE, task=task)
    b = create_batch(spec, 4, 1, SIZE, task=task)
    assert a.task == task and a.name == batch_name(spec, 4, 1, SIZE)
    assert a.inputs.shape == ((4, 9, 3, SIZE, SIZE) if name == "jigsaw" else (4, 3, SIZE, SIZE))
    assert a.targets.shape == (4, *task.target_shape) and a.targets.dtype == (
        torch.int64 if task.integer_targets else torch.float32)
    assert torch.equal(a.inputs, b.inputs) and torch.equal(a.targets, b.targets)  # same seed, same batch


def _first(root: Path, name: str, seed: int = 0):  # type: ignore[no-untyped-def]
    """A batch of one sample and the files it came from (found by its input image among all the samples)."""
    batch = create_batch(f"taskonomy:{root}", 1, seed, SIZE, task=_task(name))
    x = batch.inputs[0]
    z = (x - x.mean()) / x.std()  # the per-channel normalisation is affine: compare standardised pixels

    def gap(sample: tuple[Path, str]) -> float:
        raw = torch.from_numpy(_rgb(*sample).transpose(2, 0, 1).copy()).float()
        mean, std = torch.tensor(MEANS[name]).view(3, 1, 1), torch.tensor(STDS[name]).view(3, 1, 1)
        y = (raw / 255 - mean) / std
        return float(((y - y.mean()) / y.std() - z).abs().max())

    building, key = min(taskonomy_samples(root, name), key=gap)
    return batch, building, key


MEANS = {n: (0.5224, 0.5222, 0.5221) if n in ("class_scene", "class_object", "room_layout") else (0.5,) * 3
         for n in ("class_scene", "class_object", "room_layout", "segmentsemantic", "normal", "autoencoder")}
STDS = {n: (0.2234, 0.2235, 0.2236) if MEANS[n][0] != 0.5 else (0.5,) * 3 for n in MEANS}


def test_inputs_are_normalised_per_task(root: Path) -> None:
    batch, building, key = _first(root, "room_layout")
    raw = torch.from_numpy(_rgb(building, key).transpose(2, 0, 1).copy()).float() / 255
    mean = torch.tensor([0.5224, 0.5222, 0.5221]).view(3, 1, 1)
    std = torch.tensor([0.2234, 0.2235, 0.2236]).view(3, 1, 1)
    assert torch.allclose(batch.inputs[0], (raw - mean) / std, atol=1e-5)
    target = np.load(building / "room_layout" / f"{key}_domain_room_layout.npy").astype(np.float32)
    assert torch.equal(batch.targets[0], torch.from_numpy(target))
    ae, building, key = _first(root, "autoencoder")
    raw = torch.from_numpy(_rgb(building, key).transpose(2, 0, 1).copy()).float() / 255
    assert torch.allclose(ae.inputs[0], (raw - 0.5) / 0.5, atol=1e-5)
    assert torch.equal(ae.targets, ae.inputs)  # the autoencoder reconstructs its (normalised) input


def test_class_targets_are_the_selected_probabilities(root: Path) -> None:
    scene, building, key = _first(root, "class_scene")
    v = np.load(building / "class_scene" / f"{key}_domain_class_scene.npy")
    assert torch.allclose(scene.targets[0].double(), torch.from_numpy(v / v.sum()), atol=1e-6)
    obj, building, key = _first(root, "class_object")
    v = np.load(building / "class_object" / f"{key}_domain_class_object.npy")
    kept = v[np.load(root / "class_object_selected.npy").astype(bool)]
    assert torch.allclose(obj.targets[0].double(), torch.from_numpy(kept / kept.sum()), atol=1e-6)
    assert abs(float(obj.targets[0].sum()) - 1) < 1e-5


def test_raw_class_targets_without_the_mask_say_which_file_is_missing(root: Path) -> None:
    mask = root / "class_object_selected.npy"
    mask.rename(root / "aside.npy")
    try:
        with pytest.raises(DataError, match="class_object_selected.npy"):
            create_batch(f"taskonomy:{root}", 2, 0, SIZE, task=_task("class_object"))
    finally:
        (root / "aside.npy").rename(mask)


def test_segmentation_labels_shift_as_the_benchmark_does(root: Path) -> None:
    seg, building, key = _first(root, "segmentsemantic")
    raw = np.asarray(Image.open(building / "segmentsemantic" / f"{key}_domain_segmentsemantic.png")).astype(np.int64)
    assert raw.min() == 0 and raw.max() == 17  # both ends present in the fixture
    assert torch.equal(seg.targets[0], torch.from_numpy(np.maximum(raw, 1) - 1))
    normal, building, key = _first(root, "normal")
    n = np.asarray(Image.open(building / "normal" / f"{key}_domain_normal.png"))
    assert torch.allclose(normal.targets[0], torch.from_numpy(n.transpose(2, 0, 1).copy()).float() / 255)


def test_jigsaw_tiles_follow_the_drawn_permutation(tmp_path: Path) -> None:
    """Each grid cell of the image a constant colour: tile ``n`` is then the colour of cell ``perm[k][n]``."""
    size = 8
    unit = size * 85 // 64  # the reader's grid cell: 10 for 8-pixel tiles
    img = np.zeros((3 * unit, 3 * unit, 3), dtype=np.uint8)
    colours = np.arange(9) * 25 + 10
    for cell in range(9):
        img[(cell // 3) * unit:(cell // 3 + 1) * unit, (cell % 3) * unit:(cell % 3 + 1) * unit] = colours[cell]
    for j in range(3):
        _write(tmp_path, "b", f"point_{j}_view_0", "rgb", "png", img)
    perms = np.stack([np.random.default_rng(i).permutation(9) for i in range(1000)])
    np.save(tmp_path / JIGSAW_PERMUTATIONS, perms)
    batch = create_batch(f"taskonomy:{tmp_path}", 3, 5, size, task=_task("jigsaw", size))
    for tiles, k in zip(batch.inputs, batch.targets.tolist()):
        for n in range(9):
            assert torch.all(tiles[n] == float(colours[perms[k][n]]) / 255), (k, n)
    (tmp_path / JIGSAW_PERMUTATIONS).unlink()
    with pytest.raises(DataError, match=JIGSAW_PERMUTATIONS):
        create_batch(f"taskonomy:{tmp_path}", 3, 5, size, task=_task("jigsaw", size))


def test_errors_are_typed_and_say_what_to_do(root: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="batch of 7 asked, 6 sample"):
        create_batch(f"taskonomy:{root}", 7, 0, SIZE, task=_task("normal"))
    with pytest.raises(DataError, match="no <building>/rgb/ folder"):
        create_batch(f"taskonomy:{tmp_path}", 1, 0, SIZE, task=_task("normal"))
    with pytest.raises(ConfigError, match="--task"):  # no class labels: not a classification dataset
        create_batch(f"taskonomy:{root}", 2, 0, SIZE)
    with pytest.raises(ConfigError, match="--task"):
        create_dataset(f"taskonomy:{root}", "train", SIZE)
    # a dataset of class labels given another task: typed, naming the sources that have such targets
    with pytest.raises(ConfigError, match=r"use --data noise .*taskonomy:PATH"):
        create_batch("digits", 4, 0, SIZE, task=_task("room_layout"))
    with pytest.raises(ConfigError, match="use --data noise"):
        create_batch("noise:7", 4, 0, SIZE, task=_task("room_layout"))
