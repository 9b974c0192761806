"""Finding and killing the processes a test started in its own session (Linux ``/proc``): the Ray nodes and
drivers the integration tests lose on purpose, and whatever they leave behind."""

from __future__ import annotations

import os


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
