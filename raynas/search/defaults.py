"""Defaults shared by the searches, the pipeline and the benchmark scripts, spelled once (a module with no
imports, so a script's ``--help`` reads them without loading torch)."""

from __future__ import annotations

#: the proxies RoBoT combines (its paper's six), the default of every search over a combination of proxies
ROBOT_METRICS: tuple[str, ...] = ("grad_norm", "snip", "grasp", "fisher", "synflow", "jacob_cov")


class DefaultMetrics(tuple):
    """A search's default metric list, marked as such: the user named no metrics. The query-search session then
    searches those of them the pool holds (and that apply to its task), logging the ones it leaves out, where a
    list the user gave is searched as given or refused (:func:`raynas.search.session.load_checked_pool`). A plain
    tuple in every other respect (equal to the same names, stored as a list)."""

    __slots__ = ()


#: the default ``metrics`` of the searches over a combination of proxies (RoBoT, LinUCB, robot-reference)
DEFAULT_SEARCH_METRICS = DefaultMetrics(ROBOT_METRICS)
