"""Progress bars for the CLI layer (library code reports progress through callbacks only)."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Callable, Iterator

from tqdm import tqdm


@contextmanager
def progress_bar(desc: str, unit: str = "arch") -> Iterator[Callable[..., None]]:
    """Yields ``update(done, total, rate=None, eta=None, metric=None, detail=None)``; draws on stderr, quiet when not
    a TTY in CI logs. ``metric``: what the current unit is computing (shown in the postfix until the next plain
    update); ``detail``: progress inside the current step (e.g. a training query's epoch), in the postfix too."""
    bar = tqdm(desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True, mininterval=0.5)

    def update(done: int, total: int, rate: float | None = None, eta: float | None = None,
               metric: str | None = None, detail: str | None = None) -> None:
        if bar.total != total or done < bar.n:  # a new phase (e.g. scoring, then search steps): fresh counts, rates
            bar.reset(total=total)
            bar.set_postfix({}, refresh=False)
            # tqdm's rate is (n - initial) / seconds since the reset: what was done before this phase was heard of
            # (a resumed search, or a phase announced only with its first answer) is not counted in it, else one
            # step heard a millisecond after the reset reads as thousands of steps/s
            bar.initial = done
        bar.n = done
        post = {}
        if rate is not None:
            post["archs/s"] = f"{rate:.2f}"
        if eta is not None:
            post["eta"] = f"{eta:.0f}s"
        if metric is not None:
            post["metric"] = metric
        if detail is not None:  # progress inside the current step (a training query's epochs)
            post["query"] = detail
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


def interrupted_line(out: str | None, resume_hint: str) -> str:
    """What an interrupted command says last about ``out`` (a run or search directory), true to what it keeps:
    ``interrupted; OUT keeps 3 score shard files (re-run with --resume to continue)``, or that nothing was stored
    there. ``resume_hint``: how a rerun continues (``--resume``, or ``the same command``)."""
    from raynas.store import stored_summary

    if not out:
        return "interrupted"
    kept = stored_summary(out)
    if kept is None:
        return f"interrupted; nothing was stored in {out} (re-run the same command to start again)"
    how = f"with {resume_hint}" if resume_hint.startswith("-") else resume_hint
    return f"interrupted; {out} keeps {kept} (re-run {how} to continue)"
