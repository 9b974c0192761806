"""Image-folder reader: ``root/<class_name>/<image>``, classes in sorted order, decoded with Pillow.

Images are converted to RGB and resized (bilinear) to ``size x size`` while reading, so memory holds only
the small versions. Files are visited in sorted order so the result never depends on directory listing order.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from raynas.data.cifar import ImageData
from raynas.errors import DataError

log = logging.getLogger(__name__)

#: file suffixes read as images (case-insensitive); anything else (READMEs, .DS_Store) is ignored
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".ppm", ".pgm", ".tif", ".tiff", ".webp")


def list_images(root: str | Path) -> tuple[list[tuple[Path, int]], list[str]]:
    """``([(file, class_index), ...], class_names)`` of an image folder, both sorted.

    Raises:
        DataError: ``root`` missing, no class subdirectories, or a class directory without images.
    """
    r = Path(root)
    if not r.is_dir():
        raise DataError(f"image folder {r} does not exist or is not a directory")
    classes = sorted(p.name for p in r.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DataError(f"image folder {r} has no class subdirectories (expected {r}/<class_name>/<image>)")
    items: list[tuple[Path, int]] = []
    for k, name in enumerate(classes):
        files = sorted(
            p for p in (r / name).rglob("*")
            if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
        )
        if not files:
            # a silently skipped class would shift every later class index
            raise DataError(f"class directory {r / name} holds no images ({', '.join(IMAGE_SUFFIXES)})")
        items.extend((f, k) for f in files)
    return items, classes


def read_image(path: Path, size: int) -> np.ndarray:
    """One image as ``uint8 [size, size, 3]`` (RGB, bilinear resize)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            if im.size != (size, size):
                im = im.resize((size, size), Image.Resampling.BILINEAR)
            return np.asarray(im, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise DataError(f"cannot read image {path}: {e}") from None


def load_image_folder(root: str | Path, size: int = 32) -> ImageData:
    """Read every image of ``root/<class>/``.

    Returns:
        ``ImageData(images uint8 [N, size, size, 3], labels int64 [N], classes)``.
    """
    if size < 1:
        raise DataError(f"image size must be >= 1, got {size}")
    items, classes = list_images(root)
    images = np.stack([read_image(p, size) for p, _ in items])
    labels = np.array([k for _, k in items], dtype=np.int64)
    log.debug("%s: %d images in %d classes", root, len(items), len(classes))
    return ImageData(images, labels, classes)
