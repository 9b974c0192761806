"""Image-folder reader on a few generated PNGs."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from raynas.data.folder import load_image_folder
from raynas.errors import DataError


def _png(path, color, size=(6, 6), mode="RGB"):  # type: ignore[no-untyped-def]
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, color).save(path)


@pytest.fixture()
def folder(tmp_path):  # type: ignore[no-untyped-def]
    _png(tmp_path / "dog" / "b.png", (0, 0, 200))
    _png(tmp_path / "dog" / "a.png", (0, 100, 0))
    _png(tmp_path / "cat" / "z.png", (10, 20, 30), size=(12, 5))  # non-square: resized anyway
    _png(tmp_path / "cat" / "gray.png", 77, mode="L")  # grayscale: replicated to RGB
    (tmp_path / "cat" / "README.txt").write_text("ignored")
    return tmp_path


def test_reads_sorted_classes_and_files(folder):  # type: ignore[no-untyped-def]
    data = load_image_folder(folder, size=4)
    assert data.classes == ["cat", "dog"]
    assert data.labels.tolist() == [0, 0, 1, 1]
    assert data.images.shape == (4, 4, 4, 3) and data.images.dtype == np.uint8
    # files sorted per class: cat/gray.png, cat/z.png, dog/a.png, dog/b.png (solid colours survive resizing)
    assert data.images[:, 2, 1].tolist() == [[77, 77, 77], [10, 20, 30], [0, 100, 0], [0, 0, 200]]


def test_errors(tmp_path):  # type: ignore[no-untyped-def]
    with pytest.raises(DataError, match="does not exist"):
        load_image_folder(tmp_path / "missing")
    with pytest.raises(DataError, match="no class subdirectories"):
        load_image_folder(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds no images"):
        load_image_folder(tmp_path)
    (tmp_path / "empty" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="cannot read image .*broken.png"):
        load_image_folder(tmp_path)
