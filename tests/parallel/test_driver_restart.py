"""The scoring driver awaits a restarting actor by time, not by a count of pings (issue 28: a restart takes 20-40 s
on a busy 2-core machine, and Ray answers each ping of a restarting actor after ~2 s, so 3 pings replaced healthy
actors there). Pure logic: Ray's answers and the clock are stand-ins, no cluster is started."""

from __future__ import annotations

import pytest
import ray.exceptions as rex

import raynas.parallel.driver as driver


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture()
def pool(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    clock = Clock()
    monkeypatch.setattr(driver.time, "monotonic", clock)
    answers: list[object] = []

    def fake_get(ref):  # type: ignore[no-untyped-def]
        a = answers.pop(0)
        if isinstance(a, BaseException):
            raise a
        return a

    monkeypatch.setattr(driver.ray, "get", fake_get)
    p = object.__new__(driver._Pool)  # the pool's logic alone: no actor is created
    p.events = []  # type: ignore[attr-defined]
    p._start = lambda slot, fresh=True: p.events.append("ping again") or slot  # type: ignore[method-assign]
    p._replace = lambda slot, exc: p.events.append("replaced")  # type: ignore[method-assign]
    return p, clock, answers


def _unavailable() -> rex.ActorUnavailableError:
    return rex.ActorUnavailableError("restarting", None)


def test_a_slow_restart_is_awaited_until_the_actor_answers(pool):  # type: ignore[no-untyped-def]
    p, clock, answers = pool
    slot = driver._Slot(actor=object())
    for _ in range(20):  # 20 pings over 40 s: a busy machine's restart, far more than 3 pings
        answers.append(_unavailable())
        p._on_ping("ref", slot)
        clock.now += 2.0
    answers.append({"host": "h"})
    p._on_ping("ref", slot)
    assert p.events == ["ping again"] * 20 and slot.state == "idle" and slot.restarting_since is None


def test_an_actor_that_never_comes_back_is_replaced_after_the_restart_timeout(pool):  # type: ignore[no-untyped-def]
    p, clock, answers = pool
    slot = driver._Slot(actor=object())
    answers.append(_unavailable())
    p._on_ping("ref", slot)
    clock.now += driver.RESTART_TIMEOUT_S + 1
    answers.append(_unavailable())
    p._on_ping("ref", slot)
    assert p.events == ["ping again", "replaced"] and slot.restarting_since is None
