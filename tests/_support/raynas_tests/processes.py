"""Starting processes in a session of their own, and finding and killing them there (Linux ``/proc``): the Ray
nodes and drivers the integration tests lose on purpose, and whatever they leave behind."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path


def session_pids(sid):  # type: ignore[no-untyped-def]
    """Pids whose session is ``sid`` (Linux ``/proc``). A process a test started with ``start_new_session``
    leads its own session, which then holds exactly what it spawned: Ray puts each worker in its own process
    group, so the session (not the group) is how a test finds, e.g., one node's or one driver's processes."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.getsid(int(entry)) == sid:
                    pids.append(int(entry))
            except (ProcessLookupError, PermissionError):
                continue
    return pids


def kill_session(sid, sig=9):  # type: ignore[no-untyped-def]
    """Send ``sig`` (default SIGKILL) to every process of session ``sid`` (see :func:`session_pids`)."""
    for pid in session_pids(sid):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def start_logged(cmd, log_stem, **kwargs):  # type: ignore[no-untyped-def]
    """``subprocess.Popen(cmd)`` in a session of its own (see :func:`kill_session`), its stdout and stderr going
    to the files ``<log_stem>.out`` and ``<log_stem>.err``: a pipe nobody reads while the process runs (a test
    waiting for it to reach some point) could fill and block it. :func:`finish` reads them."""
    stem = Path(log_stem)
    with open(stem.with_suffix(".out"), "wb") as out, open(stem.with_suffix(".err"), "wb") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, start_new_session=True, **kwargs)
    proc.log_stem = stem  # type: ignore[attr-defined]
    return proc


def finish(proc, timeout=None, kill=False):  # type: ignore[no-untyped-def]
    """Wait for a :func:`start_logged` process (SIGKILL its whole session first with ``kill``; afterwards kill
    whatever of its session is left, e.g. the local Ray of a driver that died) and return ``(stdout, stderr)``."""
    try:
        if kill:
            kill_session(proc.pid)
        proc.wait(timeout=timeout)
    finally:
        kill_session(proc.pid)
    stem = proc.log_stem
    return (stem.with_suffix(".out").read_text(errors="replace"), stem.with_suffix(".err").read_text(errors="replace"))
