"""Can a Ray resource request ever be met? Pure: no Ray, no I/O (the Ray side is :mod:`raynas.parallel.session`).

Ray queues a task or actor whose request no node can meet without an error, so a run asking one GPU per query on
a machine without GPUs sat at ``0 step`` forever. Every place that asks Ray for resources (scoring actors, query
tasks, ASHA trials) checks its request with :func:`check_request` first: against the nodes up now and, where the
cluster's autoscaler publishes its node types, the nodes it can add. A request of one task or actor must fit on
*one* node (Ray never splits it), so the cluster's total is not the measure.
"""

from __future__ import annotations

from typing import Mapping, Sequence

from raynas.errors import ConfigError

#: slack for fractional requests (0.1 + 0.2 GPUs)
_EPS = 1e-9


class ResourceRequestError(ConfigError):
    """No node of the Ray cluster (nor one its autoscaler can add) can run one task or actor of the request."""


def fits(request: Mapping[str, float], node: Mapping[str, float]) -> bool:
    """``node`` (resource -> total) can host one ``request`` (resource -> amount; amounts <= 0 ask nothing)."""
    return all(float(node.get(k, 0.0)) + _EPS >= float(v) for k, v in request.items() if v > 0)


def _show(res: Mapping[str, float], keys: Sequence[str]) -> str:
    return ", ".join(f"{float(res.get(k, 0.0)):g} {k}" for k in keys)


def check_request(request: Mapping[str, float], nodes: Sequence[Mapping[str, float]], *, who: str,
                  flags: Mapping[str, str], where: str = "the Ray cluster",
                  addable: Sequence[Mapping[str, float]] | None = None, alternative: str = "") -> str | None:
    """Whether one ``request`` of ``who`` (e.g. ``"a query task"``) can run on ``nodes`` (each node's total
    resources, e.g. ``{"CPU": 8, "GPU": 1}``).

    Returns None when some node can host it now; a note (for a warning) when none can now but a node type the
    autoscaler may add (``addable``; None: unknown, so only ``nodes`` count) can.

    Raises:
        ResourceRequestError: no node can, nor can an addable one. Its one line says what the request asks, what
            the nodes have, and what to pass instead: ``flags`` maps a resource to the setting that asks for it, a
            template with ``{}`` for the value (``{"GPU": "--gpus-per-query {}"}``), filled with the most any node
            has; ``alternative`` is appended as another way out (``"--address of a cluster with GPU nodes"``).
    """
    asked = {k: float(v) for k, v in request.items() if v > 0}
    if any(fits(asked, n) for n in nodes):
        return None
    keys = list(asked) or list(request)
    if addable and any(fits(asked, n) for n in addable):
        return (f"no node of {where} can run {who} ({_show(asked, keys)}) now; waiting for its autoscaler to add "
                "one")
    shown = "; ".join(_show(n, keys) for n in nodes[:4]) + (f"; ... ({len(nodes) - 4} more)" if len(nodes) > 4 else "")
    have = f"{len(nodes)} node{'s' if len(nodes) != 1 else ''}: {shown}" if nodes else "no node"
    if addable is not None:
        have += (f"; its autoscaler can add {'; '.join(_show(n, keys) for n in addable[:4])}" if addable
                 else "; its autoscaler can add none")
    lacking = [k for k in keys if not any(float(n.get(k, 0.0)) + _EPS >= asked[k] for n in [*nodes, *(addable or [])])]
    if not lacking:  # each resource exists somewhere, never together on one node
        lacking = keys
    fixes = []
    for k in lacking:
        most = max([float(n.get(k, 0.0)) for n in [*nodes, *(addable or [])]] or [0.0])
        template = flags.get(k)
        fix = template.format(f"{most:g}") if template else f"a request of {most:g} {k}"
        fixes.append(fix + (" or less" if most > 0 else ""))
    ways = " and ".join(fixes)
    if alternative:
        ways += f", or {alternative}"
    raise ResourceRequestError(f"{who} asks {_show(asked, keys)}, more than any node of {where} has ({have}); "
                               f"it could never start: pass {ways}")
