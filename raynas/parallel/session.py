"""The Ray session of raynas: the one place that starts, attaches to and stops Ray for the scoring driver, the
query tasks of a search and the ASHA stage (:func:`attach`, :func:`shutdown`), and that says whether a resource
request can run there (:func:`require`).

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

import logging
import os
from typing import Any, Mapping

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
           **init: Any) -> bool:
    """Attach to the Ray cluster at ``address`` (``"auto"``: the running one), or start a local Ray with
    ``num_cpus`` / ``num_gpus`` (logical GPUs are fine: placement only; None: detected) when ``address`` is None;
    nothing when Ray is already initialised. ``init``: more ``ray.init`` options. True when this call started it
    (the caller shuts it down, :func:`shutdown`).

    Raises:
        RaynasError: the cluster cannot be reached (one line naming the address).
    """
    if ray.is_initialized():
        return False
    # Ray announces at WARNING that token authentication is on (its default, nothing to act on) on every start;
    # quiet unless something is wrong: only its errors pass
    logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)
    try:
        if address:
            ray.init(address=address, log_to_driver=False, **init)
        else:
            ray.init(num_cpus=num_cpus, num_gpus=num_gpus, include_dashboard=False, log_to_driver=False, **init)
    except ConnectionError as exc:
        where = address or os.environ.get("RAY_ADDRESS")
        raise RaynasError(f"cannot connect to the Ray cluster at {where!r}: {one_line(exc, remote=True)}") from exc
    return True


def shutdown() -> None:
    """Stop the Ray :func:`attach` started."""
    ray.shutdown()


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
