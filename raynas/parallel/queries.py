"""Queries of a search as Ray tasks: :class:`RayQueryExecutor` runs each oracle query (a real training) as one
Ray task with ``num_gpus`` (and ``num_cpus``) of its own, on any node of the cluster.

It is the executor :func:`raynas.search.queries.drive` hands the queries of a q-batch search to (``q`` of them
in flight): ``submit`` starts a task, ``wait`` returns the finished ones in completion order. Each worker
builds its oracle once from ``factory`` (a picklable callable, e.g. ``functools.partial(TrainingOracle, ...)``
with ``device="auto"``, so the oracle trains on the GPU Ray gave the task) and keeps it for the tasks it runs
later. Failures:

* a task whose worker process or node dies is retried by Ray on another worker, at most ``max_retries`` times
  (Ray's ``max_retries`` counts exactly these system failures); after the last one the query is a
  :class:`~raynas.oracles.base.QueryFailure` with status ``"worker_lost"``;
* a query that raises is never retried (a training that crashes crashes again) and is a ``QueryFailure`` with
  status ``"error"`` and the exception's last line as the reason.

The search records either as a failed query (:meth:`raynas.search.base.QuerySearch.tell_failed`), never as a
value. Benchmark-table oracles answer in microseconds and stay in the driver's process.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any, Callable

import ray
from ray.exceptions import RayError, RayTaskError

from raynas.errors import ConfigError, OracleError, one_line
from raynas.oracles.base import Oracle, QueryFailure, QueryResult
from raynas.parallel import session

log = logging.getLogger(__name__)

#: the oracles a worker process built, by executor token (a worker runs many queries of one search)
_WORKER_ORACLES: dict[str, Oracle] = {}


def _run_query(token: str, factory: Callable[[], Oracle], arch_index: int) -> QueryResult:
    """One query on a Ray worker (its oracle built on first use and kept)."""
    oracle = _WORKER_ORACLES.get(token)
    if oracle is None:
        oracle = _WORKER_ORACLES[token] = factory()
    res = oracle.query(int(arch_index))
    return QueryResult(float(res.value), float(res.cost_seconds))


def attach_ray(address: str | None, *, num_cpus: int | None = None, num_gpus: float | None = None) -> bool:
    """Attach to the Ray cluster at ``address`` (``"auto"``: the running one; None: ``RAY_ADDRESS`` when set), or
    start a local Ray with ``num_cpus`` / ``num_gpus``; nothing when Ray is already initialised. True when this
    call started it. A delegation kept for the searches: :func:`raynas.parallel.session.attach` owns the rules."""
    return session.attach(address, num_cpus=num_cpus, num_gpus=num_gpus)


def shutdown_ray() -> None:
    """Shut down the Ray :func:`attach_ray` started (:func:`raynas.parallel.session.shutdown`)."""
    session.shutdown()


#: what a query task's resources are asked with on the command line (``raynas search robot|hnas``)
QUERY_FLAGS = {"GPU": "--gpus-per-query {}", "CPU": "--cpus-per-query {}"}


def require_query_resources(num_cpus: float, num_gpus: float, address: str | None = None,
                            flags: dict[str, str] | None = None) -> bool:
    """Refuse query tasks no node can run (:func:`raynas.parallel.session.require`); False when not checked yet
    (a cluster that is not attached)."""
    return session.require({"CPU": num_cpus, "GPU": num_gpus}, who="a query task", flags=flags or QUERY_FLAGS,
                           address=address, alternative="--address of a Ray cluster with such nodes"
                           if not address else "")


class RayQueryExecutor:
    """Queries as Ray tasks (see the module docstring). ``num_cpus`` / ``num_gpus``: resources of one query (no
    node of the cluster can run one: :class:`~raynas.parallel.resources.ResourceRequestError`);
    ``max_retries``: re-runs after a lost worker. Ray must be initialised (:func:`attach_ray`)."""

    def __init__(self, factory: Callable[[], Oracle], *, num_cpus: float = 1.0, num_gpus: float = 0.0,
                 max_retries: int = 2):
        if num_cpus < 0 or num_gpus < 0 or max_retries < 0:
            raise ConfigError(f"num_cpus, num_gpus and max_retries must be >= 0, got {num_cpus}, {num_gpus}, "
                              f"{max_retries}")
        if not ray.is_initialized():
            raise OracleError("RayQueryExecutor needs an initialised Ray (raynas.parallel.queries.attach_ray)")
        require_query_resources(num_cpus, num_gpus)  # Ray would queue a task no node can run forever
        self._token = uuid.uuid4().hex
        self._factory = ray.put(factory)
        self._task = ray.remote(_run_query).options(num_cpus=num_cpus, num_gpus=num_gpus, max_retries=max_retries,
                                                    retry_exceptions=False)
        self._running: dict[Any, int] = {}  # object ref -> key

    def submit(self, key: int, arch_index: int) -> None:
        ref = self._task.remote(self._token, self._factory, int(arch_index))
        self._running[ref] = int(key)

    def wait(self) -> list[tuple[int, QueryResult | QueryFailure]]:
        if not self._running:
            raise OracleError("no query is running")
        ready, _ = ray.wait(list(self._running), num_returns=1)
        # everything else that is already done too, in the order Ray reports it
        more, _ = ray.wait([r for r in self._running if r not in ready], num_returns=len(self._running) - 1,
                           timeout=0) if len(self._running) > 1 else ([], [])
        out: list[tuple[int, QueryResult | QueryFailure]] = []
        for ref in [*ready, *more]:
            key = self._running.pop(ref)
            try:
                out.append((key, ray.get(ref)))
            except RayTaskError as exc:  # the query itself raised: not retried
                out.append((key, QueryFailure("error", one_line(exc, remote=True))))
            except RayError as exc:  # its worker (or node) died on every try
                out.append((key, QueryFailure("worker_lost", f"{type(exc).__name__}: {one_line(exc, remote=True)}")))
        return out

    def close(self) -> None:
        for ref in list(self._running):
            try:
                ray.cancel(ref, force=True)
            except RayError as exc:  # already finished or its worker is gone: nothing to stop
                log.debug("could not cancel a query task: %s", one_line(exc, remote=True))
        self._running.clear()
