"""A batch's name (stored in every score row) reads back into the settings that made it (issue 29: --adopt)."""

from __future__ import annotations

from raynas.data import batch_name, create_batch, parse_batch_name


def test_a_batch_name_reads_back() -> None:
    b = create_batch("digits", batch_size=8, seed=3, size=8)
    assert b.name == batch_name("digits", 8, 3, 8)
    assert parse_batch_name(b.name) == {"data": "digits", "seed": 3, "batch_size": 8, "image_size": 8}
    assert parse_batch_name(batch_name("cifar10:/data/c:x", 64, 0, 32))["data"] == "cifar10:/data/c:x"


def test_other_text_is_none() -> None:
    assert parse_batch_name("digits") is None
    assert parse_batch_name("digits:seed=x:n=8:size=8") is None
    assert parse_batch_name("digits:n=8:seed=0:size=8") is None
