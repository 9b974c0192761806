"""Scoring actors that misbehave on purpose, for the Ray driver's failure handling.

They hang instead of relying on timing: a test that must kill an actor while it holds a shard, or must see a
shard pass its deadline, makes that shard hang until it is killed, so the outcome does not depend on how fast a
(possibly busy) machine scores."""

from __future__ import annotations


def hanging_actor_factory(markers=None, after_archs=0, warm_up=False):  # type: ignore[no-untyped-def]
    """A ``create_actor`` replacement whose actors hang (sleep an hour, as a deadlocked worker would) in some
    ``score`` calls, after streaming the first ``after_archs`` archs of the shard; the other calls score normally.

    ``markers``: file paths; each hanging call claims one (created with ``O_EXCL``, so the claim holds across the
    actors' processes), so the first ``len(markers)`` calls any of the actors receives hang and later ones do not.
    None: every call hangs.

    ``warm_up``: each actor incarnation scores one arch when it first answers the driver's ``ready`` ping (which
    brings the batch: the constructor has none), before it is given work, so its first real shard takes as long as
    any other (a fresh actor's first shard otherwise pays for lazy imports and first-call set-up: many seconds on a
    busy machine, which a test's shard deadline would have to allow for)."""
    # imports and helpers live in here: Ray ships the actor class by value, and its workers cannot import
    # raynas_tests (not on their path)
    import itertools
    import os
    import time

    import ray

    from raynas.parallel.actor import ScoringWorker, create_actor
    from raynas.parallel.shards import Shard

    def claim() -> bool:
        if markers is None:
            return True
        for m in markers:
            try:
                os.close(os.open(m, os.O_CREAT | os.O_EXCL))
                return True
            except FileExistsError:
                continue
        return False

    def hang_after(items, n):  # type: ignore[no-untyped-def]
        # a plain loop, not ``yield from``: Ray drives the stream with ``send``, which an islice does not take
        for item in itertools.islice(items, n):
            yield item
        time.sleep(3600)
        raise RuntimeError("a hung shard should have been killed (by its deadline or by the test)")

    class HangingWorker(ScoringWorker):
        def __init__(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            super().__init__(*args, **kwargs)
            self.warm = not warm_up

        def ready(self, batch=None):  # type: ignore[no-untyped-def]
            info = super().ready(batch)
            if not self.warm:  # once per incarnation: a restart runs __init__ again
                for _ in super().score(Shard(-1, (0,))):
                    pass
                self.warm = True
            return info

        def score(self, shard):  # type: ignore[no-untyped-def]
            if not claim():
                return super().score(shard)
            return hang_after(super().score(shard), after_archs)

    actor_cls = ray.remote(HangingWorker)

    def create(cfg, metrics, data_name):  # type: ignore[no-untyped-def]
        return create_actor(cfg, metrics, data_name, actor_cls=actor_cls)

    return create


def hang_once_actor_factory(marker, warm_up=False):  # type: ignore[no-untyped-def]
    """:func:`hanging_actor_factory` whose first ``score`` call (of any of its actors) hangs before scoring
    anything, claiming ``marker``; every later call scores normally. Exercises the driver's per-shard deadline."""
    return hanging_actor_factory([str(marker)], 0, warm_up=warm_up)
