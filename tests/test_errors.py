"""``raynas.errors.one_line``: the one rule for summarising an exception in one line."""

from __future__ import annotations

from raynas.errors import one_line


def test_local_errors_give_their_first_line_remote_ones_their_last():
    local = ValueError("bad value\n  detail line")
    remote = RuntimeError("Traceback (most recent call last):\n  File 'x', line 1\n    ValueError: boom  \n")
    assert one_line(local) == "bad value"
    assert one_line(remote, remote=True) == "ValueError: boom"
    assert one_line(ValueError("  \n")) == "ValueError" and one_line(KeyError(), remote=True) == "KeyError"
    assert one_line(ValueError("x" * 400)) == "x" * 300 and one_line(ValueError("y" * 9), limit=4) == "yyyy"
