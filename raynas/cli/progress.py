"""Progress bars for the CLI layer (library code reports progress through callbacks only)."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Callable, Iterator

from tqdm import tqdm


@contextmanager
def progress_bar(desc: str, unit: str = "arch") -> Iterator[Callable[..., None]]:
    """Yields ``update(done, total, rate=None, eta=None)``; draws on stderr, quiet when not a TTY in CI logs."""
    bar = tqdm(desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True, mininterval=0.5)

    def update(done: int, total: int, rate: float | None = None, eta: float | None = None) -> None:
        if bar.total != total:  # a new phase (e.g. scoring, then search steps): fresh counts and rates
            bar.reset(total=total)
            bar.set_postfix({}, refresh=False)
        bar.n = done
        post = {}
        if rate is not None:
            post["archs/s"] = f"{rate:.2f}"
        if eta is not None:
            post["eta"] = f"{eta:.0f}s"
        if post:
            bar.set_postfix(post, refresh=False)
        bar.refresh()

    try:
        yield update
    finally:
        bar.close()


def write_line(text: str) -> None:
    """One line on stderr that does not tear an active progress bar."""
    tqdm.write(text, file=sys.stderr)
