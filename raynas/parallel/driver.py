"""The Ray driver of a scoring run: a work queue over N scoring actors with shard-level fault tolerance.

Each actor holds one shard at a time and gets the next as soon as it returns one; completions are consumed in
completion order (``ray.wait``) and written at once, atomically, so a killed driver loses at most the shards
in flight. A shard whose actor (or node) dies is queued again, up to ``max_retries`` times, then recorded as
``status="error"`` rows so the run always finishes. With ``shard_timeout_s`` a shard still running past its
deadline counts as such a failure: its actor is killed (Ray restarts it) and the shard goes back to the queue,
so a hung worker cannot block the run. A failed actor is only given work again after it answers a
``ready`` ping (Ray restarts it, possibly on another node); one that cannot restart is replaced.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any

import ray
from ray import exceptions as rex

from raynas.errors import RaynasError
from raynas.parallel.actor import create_actor
from raynas.parallel.config import ScoreConfig
from raynas.parallel.run import ProgressCallback, RunState, prepare_run
from raynas.parallel.scoring import failed_table, run_local
from raynas.parallel.shards import Shard

log = logging.getLogger(__name__)

#: errors meaning "the process or node that ran the task is gone" (the shard itself may be fine)
ACTOR_FAILURES: tuple[type[BaseException], ...] = (
    rex.RayActorError,  # includes ActorDiedError, ActorUnavailableError
    rex.WorkerCrashedError,
    rex.NodeDiedError,
    rex.ObjectLostError,  # includes OwnerDiedError: the result died with its node
    rex.LocalRayletDiedError,
    rex.ActorUnschedulableError,
)

#: with work pending, no actor ready and nothing in flight for this long, the cluster has lost its capacity
STALL_TIMEOUT_S = 600.0

#: longest single ``ray.wait`` of the driver loop (stall checks and shard deadlines run between waits)
POLL_S = 10.0

#: after the last shard, how long to wait for actors still starting (only to report where they ran)
PING_GRACE_S = 10.0


@dataclass
class _Slot:
    """One actor position of the pool. ``state``: starting (ping in flight) | idle | busy."""

    actor: Any
    state: str = "starting"
    info: dict[str, Any] | None = None


def run_scoring(cfg: ScoreConfig, progress_callback: ProgressCallback | None = None) -> dict[str, Any]:
    """Score the archs selected by ``cfg`` into ``cfg.out``; returns a summary dict.

    ``cfg.workers == 0`` runs the plain in-process loop. Otherwise Ray is used: an already initialised Ray is
    reused, ``cfg.address`` (e.g. ``"auto"``) attaches to a cluster, and no address starts a local instance
    sized for the actors (with logical GPUs when ``gpus_per_worker > 0`` on a machine without any).
    ``progress_callback(done_archs, total_archs, archs_per_s, eta_s)`` is called after every shard.
    """
    if cfg.workers == 0:
        return run_local(cfg, progress_callback)
    run = prepare_run(cfg)
    t0 = time.perf_counter()
    tracker = run.tracker(progress_callback)
    if not run.todo:
        return {**run.summary(0.0, cfg.workers), "actors": []}
    started = _init_ray(cfg)
    try:
        if cfg.address:
            _check_capacity(cfg)
        actors = _Pool(cfg, run).drain(tracker)
    finally:
        if started:
            ray.shutdown()
    summary = run.summary(time.perf_counter() - t0, cfg.workers)
    summary["actors"] = actors
    return summary


def _init_ray(cfg: ScoreConfig) -> bool:
    """Start or attach Ray; True when this call started it (and must shut it down)."""
    if ray.is_initialized():
        return False
    if cfg.address:
        try:
            ray.init(address=cfg.address, log_to_driver=False)
        except ConnectionError as exc:
            raise RaynasError(f"cannot connect to the Ray cluster at {cfg.address!r}: {_one_line(exc)}") from exc
        return True
    ray.init(
        num_cpus=max(1, math.ceil(cfg.workers * cfg.cpus_per_worker)),
        num_gpus=_local_gpus(cfg),
        include_dashboard=False,
        log_to_driver=False,
    )
    return True


def _local_gpus(cfg: ScoreConfig) -> int | None:
    """GPUs of a local Ray: autodetected when there are real ones, else logical ones so GPU actors schedule."""
    if cfg.gpus_per_worker <= 0:
        return None
    import torch

    if torch.cuda.is_available():
        return None
    return max(1, math.ceil(cfg.workers * cfg.gpus_per_worker))


def _check_capacity(cfg: ScoreConfig) -> None:
    """Warn when no node can host an actor right now (an autoscaling cluster may still add GPU nodes; if it
    never does, the driver gives up after :data:`STALL_TIMEOUT_S`)."""
    res = ray.cluster_resources()
    for name, need in (("GPU", cfg.gpus_per_worker), ("CPU", cfg.cpus_per_worker)):
        if need > 0 and res.get(name, 0.0) < need:
            log.warning("the Ray cluster at %s has %g %s now; each actor needs %g (waiting for the autoscaler)",
                        cfg.address, res.get(name, 0.0), name, need)


class _Pool:
    """The actor pool and its work queue for one run."""

    def __init__(self, cfg: ScoreConfig, run: RunState):
        self.cfg, self.run = cfg, run
        self.batch_ref = ray.put(run.batch)  # sent once; every actor receives the same object
        self.pending: deque[Shard] = deque(run.todo)
        self.attempts: Counter[str] = Counter()
        self.inflight: dict[Any, tuple[_Slot, Shard]] = {}
        self.deadlines: dict[Any, float] = {}  # in-flight ref -> monotonic deadline (with shard_timeout_s)
        self.pings: dict[Any, _Slot] = {}
        self.replacements = 0
        self._any_ready = False
        self.max_replacements = cfg.workers * (cfg.max_retries + 1)
        self.slots = [self._start(_Slot(None)) for _ in range(min(cfg.workers, len(self.pending)))]

    def _start(self, slot: _Slot, fresh: bool = True) -> _Slot:
        if fresh:
            slot.actor = create_actor(self.cfg, self.run.metrics, self.batch_ref, self.run.data_name)
        slot.state = "starting"
        self.pings[slot.actor.ready.remote()] = slot
        return slot

    def drain(self, tracker: Any) -> list[dict[str, Any]]:
        """Run until every shard is written (scored or recorded as failed); returns the actors' placements."""
        last_progress = time.monotonic()
        try:
            while self.pending or self.inflight:
                self._assign()
                refs = list(self.inflight) + list(self.pings)
                done, _ = ray.wait(refs, num_returns=1, timeout=self._wait_s())
                if self._expire(tracker, done):
                    last_progress = time.monotonic()
                    continue
                if not done:
                    if not self.inflight and time.monotonic() - last_progress > STALL_TIMEOUT_S:
                        raise RaynasError(
                            f"no scoring actor could start for {STALL_TIMEOUT_S:.0f} s; the Ray cluster lacks "
                            f"{self.cfg.cpus_per_worker:g} CPU / {self.cfg.gpus_per_worker:g} GPU for an actor "
                            f"(written shards are kept: rerun with --resume)"
                        )
                    continue
                last_progress = time.monotonic()
                ref = done[0]
                if ref in self.pings:
                    self._on_ping(ref, self.pings.pop(ref))
                    if not self._any_ready and any(s.state == "idle" for s in self.slots):
                        self._any_ready = True
                        tracker.restart_clock()  # rate / ETA from the first ready actor on
                else:
                    slot, shard = self.inflight.pop(ref)
                    self.deadlines.pop(ref, None)
                    self._on_result(ref, slot, shard, tracker)
            self._collect_late_pings()
        finally:
            for slot in self.slots:
                try:
                    ray.kill(slot.actor, no_restart=True)
                except rex.RayError as exc:  # best effort: the cluster may be gone already
                    log.warning("could not stop a scoring actor: %s", _one_line(exc))
        return [s.info for s in self.slots if s.info is not None]

    def _collect_late_pings(self) -> None:
        """Placement of actors that started after the work ran out (a busy node can start one late), so the
        summary lists every actor of the run; waits at most :data:`PING_GRACE_S`."""
        if not self.pings:
            return
        ready, _ = ray.wait(list(self.pings), num_returns=len(self.pings), timeout=PING_GRACE_S)
        for ref in ready:
            slot = self.pings.pop(ref)
            try:
                slot.info = ray.get(ref)
            except rex.RayError as exc:  # it could not start; nothing was lost, it had no work
                log.warning("an idle scoring actor failed to start: %s", _one_line(exc))

    def _assign(self) -> None:
        for slot in self.slots:
            if slot.state == "idle" and self.pending:
                shard = self.pending.popleft()
                slot.state = "busy"
                ref = slot.actor.score.remote(shard)
                self.inflight[ref] = (slot, shard)
                if self.cfg.shard_timeout_s is not None:
                    self.deadlines[ref] = time.monotonic() + self.cfg.shard_timeout_s

    def _wait_s(self) -> float:
        """How long one ``ray.wait`` may block: :data:`POLL_S`, or less when a shard's deadline comes sooner."""
        if not self.deadlines:
            return POLL_S
        return min(POLL_S, max(0.0, min(self.deadlines.values()) - time.monotonic()))

    def _expire(self, tracker: Any, done: list[Any]) -> bool:
        """Kill the actors of shards past their deadline and queue the shards again; True if any expired.
        A shard in ``done`` finished before this check and is not expired (its result is read next)."""
        now = time.monotonic()
        late = [ref for ref, t in self.deadlines.items() if t <= now and ref not in done]
        for ref in late:
            del self.deadlines[ref]
            slot, shard = self.inflight.pop(ref)
            log.warning("shard %s exceeded its %.0f s deadline; restarting its actor", shard.shard_id,
                        self.cfg.shard_timeout_s)
            try:
                ray.kill(slot.actor, no_restart=False)  # Ray restarts it (max_restarts); the ping tells when
            except rex.RayError as exc:
                log.warning("could not kill the actor of shard %s: %s", shard.shard_id, _one_line(exc))
            self._retry(shard, f"timed out after {self.cfg.shard_timeout_s:g} s", tracker)
            self._start(slot, fresh=False)
        return bool(late)

    def _on_ping(self, ref: Any, slot: _Slot) -> None:
        try:
            slot.info = ray.get(ref)
            slot.state = "idle"
        except rex.RayError as exc:  # the ACTOR_FAILURES, a task error or anything else Ray reports
            # Ray could not (re)start it: replace it, within a bound so a crash-looping actor cannot spin forever.
            self.replacements += 1
            if self.replacements > self.max_replacements:
                raise RaynasError(
                    f"scoring actors keep dying ({self.replacements} replaced); last error: {_one_line(exc)}"
                ) from exc
            log.warning("actor could not start (%s); replacing it", type(exc).__name__)
            ray.kill(slot.actor, no_restart=True)
            self._start(slot)

    def _on_result(self, ref: Any, slot: _Slot, shard: Shard, tracker: Any) -> None:
        try:
            _shard_id, table = ray.get(ref)
        except ACTOR_FAILURES as exc:
            # The actor (or its node) is gone; wait for Ray to restart it before giving it work again.
            self._retry(shard, f"{type(exc).__name__}: {_one_line(exc)}", tracker)
            self._start(slot, fresh=False)
            return
        except rex.RayTaskError as exc:  # the scoring code itself raised: the actor is fine
            self._retry(shard, f"{type(exc).__name__}: {_one_line(exc)}", tracker)
            slot.state = "idle"
            return
        except rex.RayError as exc:
            # Anything else Ray reports for the task (its memory monitor killing the worker, a cancelled task,
            # a lost object): retry the shard on a checked actor rather than abort the run.
            self._retry(shard, f"{type(exc).__name__}: {_one_line(exc)}", tracker)
            self._start(slot, fresh=False)
            return
        slot.state = "idle"
        self.run.write(shard, table)
        tracker.add(len(shard))

    def _retry(self, shard: Shard, error: str, tracker: Any) -> None:
        self.run.retries += 1
        self.attempts[shard.shard_id] += 1
        n = self.attempts[shard.shard_id]
        if n <= self.cfg.max_retries:
            log.warning("shard %s failed (attempt %d/%d): %s; retrying",
                        shard.shard_id, n, self.cfg.max_retries + 1, error)
            self.pending.appendleft(shard)
            return
        log.error("shard %s failed %d times, recording its rows as errors: %s", shard.shard_id, n, error)
        run = self.run
        table = failed_table(run.space, shard.ids, list(shard.metrics or run.metrics), self.cfg.seed, run.data_name,
                             f"shard failed {n} times: {error}")
        run.write(shard, table, failed=True)
        tracker.add(len(shard))


def _one_line(exc: BaseException) -> str:
    lines = [ln for ln in str(exc).splitlines() if ln.strip()]
    return lines[-1][:300] if lines else type(exc).__name__
