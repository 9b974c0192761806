"""The Ray session of raynas: the one place that starts, attaches to and stops Ray for the scoring driver, the
query tasks of a search and the ASHA stage (:func:`attach`, :func:`shutdown`, :func:`attached`), and that says
whether a resource request can run there (:func:`require`).

One set of rules for every caller:

* **address**: an address (``"auto"``: the running cluster) or ``RAY_ADDRESS`` joins that cluster, sized by its
  nodes; nothing named starts a local Ray sized by the caller (``num_cpus`` / ``num_gpus``, None: detected);
  an already initialised Ray is reused as it is;
* **logical GPUs**: a caller may give a local Ray GPUs this machine lacks (placement only: the scoring driver
  does, so GPU actors schedule on a CPU machine); by default a local Ray has the GPUs torch sees;
* **runtime env**: one ``runtime_env`` for every worker of the job, or the workers' own environment (a local
  Ray's workers inherit this process's);
* **shutdown**: only of a Ray this process started (:func:`attach` says so; :func:`attached` does it);
* **quiet**: Ray's own loggers at WARNING, its workers' output kept out of the terminal, its token-auth
  announcement kept out (its errors pass).

:func:`require` checks one task's or actor's request (``{"CPU": 1, "GPU": 1}``) with the pure
:func:`raynas.parallel.resources.check_request` against

* the nodes of the Ray this process is attached to (alive nodes, their total resources) and, when the cluster's
  autoscaler publishes its node types (Ray's autoscaler v2 / KubeRay report a cluster config to the GCS), the
  node types it may still add: a request that only those can meet is a warning (the run waits for the new node);
* when Ray is not attached and nothing names a cluster (no address, no ``RAY_ADDRESS``), the local Ray that
  :func:`attach` would start: this machine's CPUs and the GPUs torch sees, so an impossible request is refused
  before Ray is even started.

An autoscaling cluster that does not publish its node types (Ray's cluster launcher, ``docker/cluster.yaml``) is
judged by the nodes it has *now*: start its GPU workers first (``min_workers >= 1``) and rerun once ``ray status``
lists them, or the request is refused (exit code 2) instead of waiting.
"""

from __future__ import annotations

import contextlib
import logging
import os
from typing import Any, Iterator, Mapping

import ray

from raynas.errors import RaynasError, one_line
from raynas.parallel.resources import check_request

log = logging.getLogger(__name__)


def local_resources(num_cpus: float | None = None, num_gpus: float | None = None) -> dict[str, float]:
    """The resources of a local Ray started here with ``num_cpus`` / ``num_gpus`` (None: detected, as Ray does:
    the CPUs this process may use and the GPUs torch sees)."""
    if num_cpus is None:
        try:
            num_cpus = len(os.sched_getaffinity(0))
        except AttributeError:  # not on every OS
            num_cpus = os.cpu_count() or 1
    if num_gpus is None:
        import torch

        num_gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return {"CPU": float(num_cpus), "GPU": float(num_gpus)}


def names_cluster(address: str | None) -> bool:
    """Whether :func:`attach` with ``address`` joins an existing cluster (an address, or ``RAY_ADDRESS`` set)."""
    return bool(address) or bool(os.environ.get("RAY_ADDRESS"))


def attach(address: str | None = None, *, num_cpus: float | None = None, num_gpus: float | None = None,
           runtime_env: Mapping[str, Any] | None = None, **init: Any) -> bool:
    """Attach to the Ray cluster at ``address`` or ``RAY_ADDRESS``, or start a local Ray; nothing when Ray is
    already initialised (see the module docstring for the rules).

    Args:
        address: a cluster address, ``"auto"`` (the running cluster) or None (``RAY_ADDRESS`` when set, else a
            local Ray).
        num_cpus: CPUs of a local Ray (None: those this process may use); ignored when joining a cluster.
        num_gpus: GPUs of a local Ray, logical ones allowed (None: those torch sees); ignored when joining.
        runtime_env: Ray's runtime environment for every worker of this job (None: the workers' own).
        init: more options of Ray's init (they override this function's defaults).

    Returns:
        True when this call started or joined Ray (the caller then calls :func:`shutdown`), False when Ray was
        already initialised.

    Raises:
        RaynasError: the cluster cannot be reached (one line naming the address).
    """
    if ray.is_initialized():
        return False
    # Ray announces at WARNING that token authentication is on (its default, nothing to act on) on every start;
    # quiet unless something is wrong: only its errors pass
    logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)
    # Ray's INFO lines ("Started a local Ray instance", Tune's progress) are not the caller's business; workers'
    # prints stay in Ray's session logs
    options: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": False}
    if runtime_env is not None:
        options["runtime_env"] = dict(runtime_env)
    if names_cluster(address):
        if num_cpus is not None or num_gpus is not None:  # Ray refuses them for an existing cluster
            log.debug("joining a cluster: its nodes' resources apply, not num_cpus=%s num_gpus=%s", num_cpus,
                      num_gpus)
        options["address"] = address  # None: Ray reads RAY_ADDRESS itself
    else:
        options.update(num_cpus=num_cpus, num_gpus=num_gpus, include_dashboard=False)
    options.update(init)
    try:
        ray.init(**options)  # the one start of Ray in raynas (tests/parallel/test_session.py counts them)
    except ConnectionError as exc:
        where = address or os.environ.get("RAY_ADDRESS")
        raise RaynasError(f"cannot connect to the Ray cluster at {where!r}: {one_line(exc, remote=True)}") from exc
    return True


def shutdown() -> None:
    """Stop the Ray :func:`attach` started (call it only when :func:`attach` returned True)."""
    ray.shutdown()


@contextlib.contextmanager
def attached(address: str | None = None, *, num_cpus: float | None = None, num_gpus: float | None = None,
             runtime_env: Mapping[str, Any] | None = None, **init: Any) -> Iterator[bool]:
    """:func:`attach` for the ``with`` block, then :func:`shutdown` when the attach started Ray (also when the
    block raises); a Ray that was already initialised is left running.

    Args:
        address, num_cpus, num_gpus, runtime_env, init: as :func:`attach`.

    Returns:
        (yields) whether this block started Ray.
    """
    started = attach(address, num_cpus=num_cpus, num_gpus=num_gpus, runtime_env=runtime_env, **init)
    try:
        yield started
    finally:
        if started:
            shutdown()


def cluster_nodes() -> list[dict[str, float]]:
    """Total resources of each alive node of the attached cluster."""
    return [{k: float(v) for k, v in (n.get("Resources") or {}).items()} for n in ray.nodes() if n.get("Alive")]


def autoscaler_node_types() -> list[dict[str, float]] | None:
    """Resources of each node type the attached cluster's autoscaler may still add (max count not 0); None when
    the cluster publishes no such config (no autoscaler, or one that does not report it)."""
    try:
        from ray._private.state import state  # no public API for the autoscaler's node types

        config = state.get_cluster_config()
        if config is None:
            return None
        return [{k: float(v) for k, v in g.resources.items()} for g in config.node_group_configs if g.max_count != 0]
    except Exception as exc:  # noqa: BLE001 - a private Ray API: any failure only means "unknown"
        log.debug("autoscaler node types unknown: %s", exc)
        return None


def require(request: Mapping[str, float], *, who: str, flags: Mapping[str, str], address: str | None = None,
            alternative: str = "") -> bool:
    """Refuse a ``request`` (one task or actor of ``who``) that could never run (see the module docstring);
    ``flags`` and ``alternative`` say what to pass instead (:func:`~raynas.parallel.resources.check_request`).

    Returns False when nothing could be checked yet (Ray not attached and a cluster named: check again once
    attached), else True.

    Raises:
        ResourceRequestError: (a :class:`~raynas.errors.ConfigError`) no node can ever run it.
    """
    if ray.is_initialized():
        nodes, addable = cluster_nodes(), autoscaler_node_types()
        where = f"the Ray cluster at {address}" if address else "the Ray cluster"
    elif not names_cluster(address):
        nodes, addable, where = [local_resources()], None, "this machine's local Ray"
    else:
        return False
    note = check_request(request, nodes, who=who, flags=flags, where=where, addable=addable,
                         alternative=alternative)
    if note:
        log.warning("%s", note)
    return True
