"""Scoring actors that misbehave on purpose, for the Ray driver's failure handling."""

from __future__ import annotations


def hang_once_actor_factory(marker):  # type: ignore[no-untyped-def]
    """A ``create_actor`` replacement whose actors hang (sleep an hour, as a deadlocked worker would) on the
    first ``score`` call any of them receives; an ``O_EXCL``-created ``marker`` file picks that one call across
    processes. Every later call scores normally. Exercises the driver's per-shard deadline."""
    import os
    import time

    import ray

    from raynas.parallel.actor import ScoringWorker, create_actor

    class HangOnceWorker(ScoringWorker):
        def score(self, shard):  # type: ignore[no-untyped-def]
            try:
                os.close(os.open(marker, os.O_CREAT | os.O_EXCL))
            except FileExistsError:
                return super().score(shard)
            time.sleep(3600)
            raise RuntimeError("a hung shard should have been killed by its deadline")

    actor_cls = ray.remote(HangOnceWorker)

    def create(cfg, metrics, batch_ref, data_name):  # type: ignore[no-untyped-def]
        return create_actor(cfg, metrics, batch_ref, data_name, actor_cls=actor_cls)

    return create
