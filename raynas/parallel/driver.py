"""The Ray driver of a scoring run: a work queue over N scoring actors with shard-level fault tolerance.

Each actor holds one shard at a time and gets the next as soon as it returns one. It streams each arch's rows
back as soon as that arch is scored (``num_returns="streaming"``), so progress counts archs; a shard is written
at once, atomically, when its last arch arrives, so a killed driver loses at most the shards in flight, and an
interrupted one (Ctrl-C) first writes the archs they finished. A shard whose actor (or node) dies has its
unscored archs queued again, up to ``max_retries`` times, then recorded as ``status="error"`` rows so the run
always finishes. With ``shard_timeout_s`` a shard still running past its
deadline counts as such a failure: its actor is killed (Ray restarts it) and the shard goes back to the queue,
so a hung worker cannot block the run. A failed actor is only given work again after it answers a
``ready`` ping (Ray restarts it, possibly on another node); one that cannot restart is replaced.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import ray
from ray import exceptions as rex

from raynas.errors import ConfigError, RaynasError, one_line
from raynas.parallel import session
from raynas.parallel.actor import MetricProgress, create_actor
from raynas.parallel.config import ScoreConfig
from raynas.parallel.local import run_local
from raynas.parallel.run import (EstimateCallback, ProgressCallback, RunState, announce, format_seconds,
                                 scoring_run)
from raynas.parallel.scoring import failed_table
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

#: how long a restarting actor (a deadline or a crash killed its incarnation) may keep answering "unavailable"
#: before it counts as one that cannot start. A time, not a count of pings: Ray answers each ping of a restarting
#: actor after about 2 s, and a restart takes 20-40 s on a busy 2-core machine (a fresh process imports torch),
#: so 3 pings replaced healthy actors there and, after ``workers * (max_retries + 1)`` replacements, stopped the
#: run with "scoring actors keep dying"
RESTART_TIMEOUT_S = 300.0

#: after the last shard, how long to wait for actors still starting (only to report where they ran)
PING_GRACE_S = 10.0


@dataclass
class _Slot:
    """One actor position of the pool. ``state``: starting (ping in flight) | idle | busy."""

    actor: Any
    state: str = "starting"
    info: dict[str, Any] | None = None
    restarting_since: float | None = None  # monotonic time of the first "actor unavailable" answer in a row


def run_scoring(cfg: ScoreConfig, progress_callback: ProgressCallback | None = None,
                estimate_callback: EstimateCallback | None = None,
                metric_callback: Any = None) -> dict[str, Any]:
    """Score the archs selected by ``cfg`` into ``cfg.out``; returns a summary dict.

    ``cfg.workers == 0`` runs the plain in-process loop. Otherwise Ray is used: an already initialised Ray is
    reused, ``cfg.address`` (e.g. ``"auto"``) attaches to a cluster, and no address starts a local instance
    sized for the actors (with logical GPUs when ``gpus_per_worker > 0`` on a machine without any). Without an
    address, ``workers`` is capped at what the (local) cluster can run at once, with a warning; the summary's
    ``workers`` is the number of actors that really started (``workers_requested`` the asked-for number).
    ``progress_callback(done_archs, total_archs, archs_per_s, eta_s)`` is called after every arch (actors stream
    each arch's rows back as it finishes); ``estimate_callback(CostEstimate)`` before Ray starts (from the space's
    measured metric costs, when it has them) and after the first arch (measured). ``metric_callback(names, done,
    total)``: progress inside an arch, as each metric pass starts (the actors stream it between their archs).
    On ``KeyboardInterrupt`` the finished archs of every unfinished shard are written before it propagates.
    """
    if cfg.workers == 0:
        return run_local(cfg, progress_callback, estimate_callback, metric_callback)
    with scoring_run(cfg) as run:  # a run that never starts (no cluster, no node for an actor) leaves no trace
        t0 = time.perf_counter()
        if not run.todo:
            run.tracker(progress_callback)
            return {**run.summary(0.0, 0), "actors": []}
        planned = cfg.workers if cfg.address else _cap_workers(cfg, _machine_resources(cfg), warn=False)
        announce(run.prior_estimate(workers=min(planned, len(run.todo))), estimate_callback)
        started = _init_ray(cfg)
        try:
            require_actor_resources(cfg)
            workers = cfg.workers if cfg.address else _cap_workers(cfg, ray.cluster_resources())
            pool = _Pool(cfg.replace(workers=workers), run, metric_callback)
            tracker = run.tracker(progress_callback, estimate_callback, workers=len(pool.slots))
            actors = pool.drain(tracker)
        finally:
            if started:
                session.shutdown()
        summary = run.summary(time.perf_counter() - t0, len(actors))
    if len(actors) != cfg.workers:
        summary["workers_requested"] = cfg.workers
    summary["actors"] = actors
    return summary


def _init_ray(cfg: ScoreConfig) -> bool:
    """Start or attach Ray (:func:`raynas.parallel.session.attach`); True when this call started it (and must shut
    it down). A local Ray gets the CPUs of the workers this machine can run, and logical GPUs when the actors ask
    for GPUs on a machine without any."""
    if ray.is_initialized():
        return False
    if cfg.address:
        return session.attach(cfg.address)
    workers = _cap_workers(cfg, _machine_resources(cfg), warn=False)  # run_scoring warns, from the cluster's view
    return session.attach(None, num_cpus=max(1, math.ceil(workers * cfg.cpus_per_worker)),
                          num_gpus=_local_gpus(cfg.replace(workers=workers)))


#: what a scoring actor's resources are asked with on the command line (``raynas score``)
ACTOR_FLAGS = {"GPU": "--gpus-per-worker {}", "CPU": "--cpus-per-worker {}"}


def require_actor_resources(cfg: ScoreConfig, flags: dict[str, str] | None = None) -> bool:
    """Refuse scoring actors no node of the cluster can host (:func:`raynas.parallel.session.require`; an
    autoscaling cluster that publishes its node types may add one); False when not checked (Ray not attached to
    the named cluster yet)."""
    return session.require({"CPU": cfg.cpus_per_worker, "GPU": cfg.gpus_per_worker}, who="a scoring actor",
                           flags=flags or ACTOR_FLAGS, address=cfg.address,
                           alternative="--address of a Ray cluster with such nodes" if not cfg.address else "")


def _machine_resources(cfg: ScoreConfig) -> dict[str, float]:
    """CPUs (and real GPUs, when actors ask for GPUs and torch sees some) this machine offers a local Ray."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on every OS
        cpus = os.cpu_count() or 1
    res = {"CPU": float(cpus)}
    if cfg.gpus_per_worker > 0:
        import torch

        if torch.cuda.is_available():
            res["GPU"] = float(torch.cuda.device_count())
    return res


def _cap_workers(cfg: ScoreConfig, resources: dict[str, float], warn: bool = True) -> int:
    """``cfg.workers``, or fewer when ``resources`` (a local cluster's CPUs / GPUs) cannot run that many actors
    at once (logged as a warning; never below 1). GPUs only cap when ``resources`` has a ``GPU`` entry."""
    fits = {"CPU": int(resources.get("CPU", 0.0) / cfg.cpus_per_worker + 1e-9)}
    if cfg.gpus_per_worker > 0 and "GPU" in resources:
        fits["GPU"] = int(resources["GPU"] / cfg.gpus_per_worker + 1e-9)
    n = max(1, min([cfg.workers, *fits.values()]))
    if n < cfg.workers and warn:
        why = ", ".join(f"{resources[k]:g} {k}s at {need:g} per worker" for k, need in
                        (("CPU", cfg.cpus_per_worker), ("GPU", cfg.gpus_per_worker)) if k in fits)
        log.warning("workers=%d is more than this Ray cluster can run at once (%s): starting %d", cfg.workers,
                    why, n)
    return n


def _local_gpus(cfg: ScoreConfig) -> int | None:
    """GPUs of a local Ray: autodetected when there are real ones, else logical ones so GPU actors schedule."""
    if cfg.gpus_per_worker <= 0:
        return None
    import torch

    if torch.cuda.is_available():
        return None
    return max(1, math.ceil(cfg.workers * cfg.gpus_per_worker))


@dataclass
class _Work:
    """A planned shard while it is scored: the rows of its finished archs (streamed back one arch at a time)."""

    shard: Shard
    tables: list[pa.Table] = field(default_factory=list)
    done: set[int] = field(default_factory=set)

    def rest(self) -> Shard:
        """The part still to score (same shard id: its rows end up in the shard's one file)."""
        return Shard(self.shard.shard_id, tuple(i for i in self.shard.ids if i not in self.done), self.shard.metrics)


class _Pool:
    """The actor pool and its work queue for one run."""

    def __init__(self, cfg: ScoreConfig, run: RunState, metric_callback: Any = None):
        self.cfg, self.run = cfg, run
        #: ``(names, done, total)`` as each metric pass of an actor's arch starts (the actors stream them)
        self.metric_callback = metric_callback
        # put once; each ping and scoring call carries its reference, nested so Ray does not resolve it per call
        # (an actor fetches it once per incarnation) and kept out of the actors' constructors (actor.py)
        self.batch = [ray.put(run.batch)]
        self.pending: deque[Shard] = deque(run.todo)
        self.work: dict[int, _Work] = {s.shard_id: _Work(s) for s in run.todo}  # shards not written yet
        self.attempts: Counter[int] = Counter()
        #: streaming ``score`` call -> (its actor slot, the shard part it scores)
        self.inflight: dict[Any, tuple[_Slot, Shard]] = {}
        self.deadlines: dict[Any, float] = {}  # in-flight call -> monotonic deadline (with shard_timeout_s)
        self.pings: dict[Any, _Slot] = {}
        self.replacements = 0
        self._any_ready = False
        self.max_replacements = cfg.workers * (cfg.max_retries + 1)
        self.slots = [self._start(_Slot(None)) for _ in range(min(cfg.workers, len(self.pending)))]

    def _start(self, slot: _Slot, fresh: bool = True) -> _Slot:
        if fresh:
            slot.actor = create_actor(self.cfg, self.run.metrics, self.run.data_name)
        slot.state = "starting"
        self.pings[slot.actor.ready.remote(self.batch)] = slot
        return slot

    def drain(self, tracker: Any) -> list[dict[str, Any]]:
        """Run until every shard is written (scored or recorded as failed); returns the actors' placements.

        An interrupt (``KeyboardInterrupt``) writes the finished archs of every unwritten shard first."""
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
                    self._on_item(ref, tracker)
            self._collect_late_pings()
        except KeyboardInterrupt:
            self._save_finished_archs()
            raise
        finally:
            for slot in self.slots:
                try:
                    ray.kill(slot.actor, no_restart=True)
                except rex.RayError as exc:  # best effort: the cluster may be gone already
                    log.warning("could not stop a scoring actor: %s", one_line(exc, remote=True))
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
                log.warning("an idle scoring actor failed to start: %s", one_line(exc, remote=True))

    def _assign(self) -> None:
        for slot in self.slots:
            if slot.state == "idle" and self.pending:
                part = self.pending.popleft()
                slot.state = "busy"
                # streaming: one ref per finished arch, so progress and an interrupt see every arch
                gen = slot.actor.stream.options(num_returns="streaming").remote(part, self.batch)
                self.inflight[gen] = (slot, part)
                if self.cfg.shard_timeout_s is not None:
                    self.deadlines[gen] = time.monotonic() + self.cfg.shard_timeout_s

    def _wait_s(self) -> float:
        """How long one ``ray.wait`` may block: :data:`POLL_S`, or less when a shard's deadline comes sooner."""
        if not self.deadlines:
            return POLL_S
        return min(POLL_S, max(0.0, min(self.deadlines.values()) - time.monotonic()))

    def _expire(self, tracker: Any, done: list[Any]) -> bool:
        """Kill the actors of shards past their deadline and queue their unscored archs again; True if any
        expired. A call in ``done`` has a result ready (read next), so it is not expired now."""
        now = time.monotonic()
        late = [ref for ref, t in self.deadlines.items() if t <= now and ref not in done]
        limit = format_seconds(self.cfg.shard_timeout_s or 0.0)
        for ref in late:
            del self.deadlines[ref]
            slot, part = self.inflight.pop(ref)
            log.warning("shard %s exceeded its %s deadline; restarting its actor", part.shard_id, limit)
            try:
                ray.kill(slot.actor, no_restart=False)  # Ray restarts it (max_restarts); the ping tells when
            except rex.RayError as exc:
                log.warning("could not kill the actor of shard %s: %s", part.shard_id, one_line(exc, remote=True))
            self._retry(part.shard_id, f"timed out after {limit}", tracker)
            self._start(slot, fresh=False)
        return bool(late)

    def _on_ping(self, ref: Any, slot: _Slot) -> None:
        try:
            slot.info = ray.get(ref)
            slot.state = "idle"
            slot.restarting_since = None
        except rex.ActorUnavailableError as exc:
            # Restarting (e.g. the ping went to the incarnation a deadline just killed): ask the new one again
            # until it answers, for up to RESTART_TIMEOUT_S, before counting it as an actor that cannot start.
            now = time.monotonic()
            if slot.restarting_since is None:
                slot.restarting_since = now
            if now - slot.restarting_since <= RESTART_TIMEOUT_S:
                log.info("actor restarting (%s); asking again", one_line(exc, remote=True))
                self._start(slot, fresh=False)
                return
            slot.restarting_since = None
            self._replace(slot, exc)
        except rex.RayTaskError as exc:
            if isinstance(getattr(exc, "cause", None), RaynasError):
                # the actor is up but cannot score this run (a metric it cannot load): no retry can help
                raise ConfigError(f"{exc.cause} (written shards are kept)") from None
            self._replace(slot, exc)
        except rex.RayError as exc:  # the ACTOR_FAILURES or anything else Ray reports
            self._replace(slot, exc)

    def _replace(self, slot: _Slot, exc: BaseException) -> None:
        # Ray could not (re)start it: replace it, within a bound so a crash-looping actor cannot spin forever.
        self.replacements += 1
        if self.replacements > self.max_replacements:
            raise RaynasError(
                f"scoring actors keep dying ({self.replacements} replaced); last error: {one_line(exc, remote=True)}"
            ) from exc
        log.warning("actor could not start (%s); replacing it", type(exc).__name__)
        ray.kill(slot.actor, no_restart=True)
        self._start(slot)

    def _on_item(self, gen: Any, tracker: Any) -> None:
        """The next arch of an in-flight shard: store its rows, or handle the end of the stream or its failure."""
        slot, part = self.inflight[gen]
        try:
            ref = next(gen)
            item = ray.get(ref)
        except StopIteration:
            self._drop(gen)
            slot.state = "idle"
            work = self.work[part.shard_id]
            if work.rest().ids:  # cannot happen with ScoringWorker; a broken subclass must not lose archs
                self._retry(part.shard_id, "the actor's stream ended before every arch was scored", tracker)
            else:
                self._write(work)
            return
        except ACTOR_FAILURES as exc:
            # The actor (or its node) is gone; wait for Ray to restart it before giving it work again.
            self._drop(gen)
            self._retry(part.shard_id, f"{type(exc).__name__}: {one_line(exc, remote=True)}", tracker)
            self._start(slot, fresh=False)
            return
        except rex.RayTaskError as exc:  # the scoring code itself raised: the actor is fine
            self._drop(gen)
            if isinstance(getattr(exc, "cause", None), RaynasError):
                raise ConfigError(f"{exc.cause} (written shards are kept)") from None
            self._retry(part.shard_id, f"{type(exc).__name__}: {one_line(exc, remote=True)}", tracker)
            slot.state = "idle"
            return
        except rex.RayError as exc:
            # Anything else Ray reports for the task (its memory monitor killing the worker, a cancelled task,
            # a lost object): retry the shard on a checked actor rather than abort the run.
            self._drop(gen)
            self._retry(part.shard_id, f"{type(exc).__name__}: {one_line(exc, remote=True)}", tracker)
            self._start(slot, fresh=False)
            return
        if isinstance(item, MetricProgress):  # a metric pass of the actor's current arch starts
            if self.metric_callback is not None:
                self.metric_callback(item.names, item.done, item.total)
            return
        idx, table = item
        work = self.work[part.shard_id]
        work.tables.append(table)
        work.done.add(int(idx))
        tracker.add(1, table)

    def _drop(self, gen: Any) -> None:
        self.inflight.pop(gen, None)
        self.deadlines.pop(gen, None)

    def _write(self, work: _Work, failed: bool = False) -> None:
        self.work.pop(work.shard.shard_id, None)
        self.run.write(work.shard, pa.concat_tables(work.tables), failed=failed)

    def _retry(self, shard_id: int, error: str, tracker: Any) -> None:
        """One failed attempt of shard ``shard_id``: queue its unscored archs again, or after ``max_retries``
        write its scored archs plus error rows for the rest."""
        self.run.retries += 1
        self.attempts[shard_id] += 1
        n = self.attempts[shard_id]
        work = self.work[shard_id]
        rest = work.rest()
        if not rest.ids:  # every arch was streamed back before the failure
            self._write(work)
            return
        if n <= self.cfg.max_retries:
            log.warning("shard %s failed (attempt %d/%d): %s; retrying its %d unscored arch(s)",
                        shard_id, n, self.cfg.max_retries + 1, error, len(rest))
            self.pending.appendleft(rest)
            return
        log.error("shard %s failed %d times, recording its %d unscored arch(s) as errors: %s",
                  shard_id, n, len(rest), error)
        run = self.run
        work.tables.append(failed_table(run.space, rest.ids, list(rest.metrics or run.metrics), self.cfg.seed,
                                        run.data_name, f"shard failed {n} times: {error}"))
        self._write(work, failed=True)
        tracker.add(len(rest))

    def _save_finished_archs(self) -> None:
        """On interrupt: read the archs already streamed back (without waiting), then write every unwritten
        shard's finished archs as its file, so a resume scores only the rest (a partly stored shard becomes a
        sub-shard of its missing archs, see :func:`raynas.parallel.shards.missing_work`)."""
        try:
            while self.inflight:
                ready, _ = ray.wait(list(self.inflight), num_returns=len(self.inflight), timeout=0)
                if not ready:
                    break
                for gen in ready:
                    _slot, part = self.inflight[gen]
                    try:
                        item = ray.get(next(gen), timeout=1.0)
                    except (StopIteration, rex.RayError):
                        self._drop(gen)
                        continue
                    if isinstance(item, MetricProgress):
                        continue
                    idx, table = item
                    work = self.work[part.shard_id]
                    work.tables.append(table)
                    work.done.add(int(idx))
        except rex.RayError as exc:  # the cluster may be going down with the interrupt: keep what was read
            log.warning("interrupted: could not read the last streamed archs (%s)", one_line(exc, remote=True))
        for work in list(self.work.values()):
            if work.tables:
                self._write(work)
                log.warning("interrupted: stored the %d finished arch(s) of shard %d", len(work.done),
                            work.shard.shard_id)
