"""How long tests that start Ray or subprocesses may take, and waiting on a condition instead of sleeping.

A busy 2-core machine (load 3-10: a CI box, a laptop in use) starts a Ray actor in tens of seconds rather than
two, so these tests never bound a step by what it takes on an idle machine. They wait for the event they need (a
file, a state row, a process exit) up to :data:`WAIT_S`, a deadline that only a broken test reaches, and each
integration test gets :data:`TEST_LIMIT_S` in all (``pytest.mark.timeout``)."""

from __future__ import annotations

import time
from typing import Any, Callable

#: per-test limit of an integration test: what such a test takes at load 10 on 2 cores, with room to spare
TEST_LIMIT_S = 600

#: the longest one wait of a test (a subprocess to finish, a condition to hold): reached only when what it waits
#: for never happens, so it may be long; below :data:`TEST_LIMIT_S` so the test reports which wait failed
WAIT_S = 480.0


def wait_for(condition: Callable[[], Any], what: str, *, timeout: float = WAIT_S, poll: float = 0.05,
             proc: Any = None) -> Any:
    """Poll ``condition()`` until it returns something true and return that. Raises AssertionError naming
    ``what`` after ``timeout`` seconds, or as soon as ``proc`` (a ``subprocess.Popen`` that should make the
    condition true) has exited without it."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            value = condition()  # it may have made the condition true just before exiting
            if value:
                return value
            raise AssertionError(f"{what}: the process exited ({proc.returncode}) first")
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f} s")
        time.sleep(poll)
