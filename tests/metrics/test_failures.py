"""Failure helpers shared by both metric engines and the NTK code: what counts as out-of-memory, the one-line
error a result row stores, the note on values computed on a halved batch."""

from __future__ import annotations

import pytest
import torch

from raynas.metrics import engine
from raynas.metrics._failures import free_device_memory, is_oom, one_line, oom_note


@pytest.mark.parametrize("exc, oom", [
    (torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"), True),
    (RuntimeError("MPS backend out of memory"), True),
    (RuntimeError("mat1 and mat2 shapes cannot be multiplied"), False),
    (ValueError("out of memory"), False),  # only RuntimeErrors are matched by message
])
def test_is_oom(exc: BaseException, oom: bool) -> None:
    assert is_oom(exc) is oom


def test_one_line_keeps_the_first_line_at_most_500_characters() -> None:
    assert one_line(RuntimeError("  first\nsecond\n")) == "first"
    assert one_line(RuntimeError("x" * 600)) == "x" * 500
    assert one_line(KeyError()) == "KeyError"


def test_oom_note_only_for_a_smaller_batch() -> None:
    assert oom_note(8, 8) == ""
    assert oom_note(4, 16) == "computed on batch 4 of 16 after out-of-memory"


def test_free_device_memory_is_a_no_op_on_cpu() -> None:
    free_device_memory(torch.device("cpu"))


def test_the_engine_still_exports_its_public_names() -> None:
    for name in engine.__all__:
        assert getattr(engine, name) is not None
    assert engine.is_oom is is_oom and engine.oom_note is oom_note
