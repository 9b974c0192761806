"""Holding a driver process at a known point of its run, so a test can kill it there.

A test that SIGKILLs a driver "mid-run" must not race the driver: on a busy machine the test may notice the
moment too late (the run already finished) or a fast machine may pass it. A driver given :func:`hold_at` as its
progress callback stops itself at that point and says so in a marker file; the test waits for the file and kills
the driver, which by then cannot have gone further."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Callable


def hold_at(count: int, marker: str | os.PathLike[str]) -> Callable[..., None]:
    """A progress callback ``(done, total, ...)`` that, once ``done >= count``, writes ``marker`` (``done`` and
    this pid) and then holds this process (sleeps an hour) until it is killed. A search calls it after each tell,
    once its state (with that row) is saved; scoring after each arch it receives (the shards finished before it are
    written, that arch's shard is not)."""

    def progress(done: int, *rest: Any) -> None:
        if done >= count:
            Path(marker).write_text(f"{done} {os.getpid()}\n")
            time.sleep(3600)
            raise RuntimeError("a held driver should have been killed by the test")

    return progress
