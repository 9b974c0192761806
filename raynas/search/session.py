"""One query-search session: pool -> oracle -> search directory -> new or resumed search -> executor -> result.

Every query search (a :class:`~raynas.search.base.QuerySearch` over a :class:`~raynas.search.pool.CandidatePool`
answered by an oracle) is run the same way; a search contributes only its typed config and how to build itself
from a pool and an oracle (:class:`SearchSpec`). The session owns the rest, in this order, so bad input is refused
before any work: the query tasks' resources are checked, the pool is read and checked for completeness, the
oracle is built, the search directory is claimed (one writer; a refused run leaves it as it was), its stored
config compared (resume) or written, the search resumed from its state or started, run where its queries go
(this process or Ray tasks, :func:`raynas.search.runner.run_with_executor`), and the result written with the
pool, the space and the benchmark's answer.

LinUCB runs through it (:mod:`raynas.search.linucb_run`); RoBoT and HNAS still have their own run functions of
the same steps (issue 30 moves them here).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from raynas.config import from_dict, to_dict
from raynas.oracles.base import Oracle, benchmark_answer
from raynas.search.base import QuerySearch
from raynas.search.pool import CandidatePool
from raynas.search.runner import (
    load_checked_pool,
    make_oracle,
    oracle_name,
    check_query_resources,
    resume_or_start,
    run_with_executor,
    start_progress,
    typed_config_dict,
)
from raynas.spaces import DEFAULT_SPACE
from raynas.store import SearchDir

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SearchSpec:
    """What a query search brings to :func:`run_query_session`.

    Attributes:
        config_cls: its typed config (fields ``scores``, ``out``, ``oracle``, ``oracle_options``, ``metrics``,
            ``seed``, ``resume``, ``restart``, ``allow_incomplete``, ``q`` and the query placement fields of
            :class:`raynas.search.runner.QueryPlacement`, plus its own settings).
        search_cls: the :class:`QuerySearch` subclass (its ``from_state`` resumes a saved search).
        build: ``build(config, pool, oracle)`` -> a new search.
        transform: ``transform(config)`` -> the pool's score transform (``"none"`` unless the search has one).
    """

    config_cls: type
    search_cls: type[QuerySearch[Any]]
    build: Callable[[Any, CandidatePool, Oracle], QuerySearch[Any]]
    transform: Callable[[Any], str] = lambda c: "none"


def run_query_session(spec: SearchSpec, cfg: Any, progress_callback: Callable[..., None] | None = None
                      ) -> dict[str, Any]:
    """Run (or resume) the search ``spec`` configured by ``cfg`` (typed, or a mapping converted strictly).

    Returns the search's :meth:`~raynas.search.base.QuerySearch.result` plus ``arch`` (the answer's string),
    ``metrics``, ``space``, ``pool`` (what was searched, with its completeness), ``benchmark`` (the space's
    benchmark answer, None without one) and ``trace``; the same is written to the directory's ``result.json``.
    """
    c = cfg if isinstance(cfg, spec.config_cls) else from_dict(spec.config_cls, cfg)
    check_query_resources(c)  # before any work (a named cluster: once attached)
    loaded = load_checked_pool(c.scores, c.metrics, spec.transform(c), allow_incomplete=c.allow_incomplete)
    c = dataclasses.replace(c, oracle=oracle_name(c.oracle, loaded.config))  # the config records the oracle used
    oracle = make_oracle(c.oracle, loaded.config, c.seed, c.oracle_options)
    where = SearchDir(Path(c.out))
    with where.claim():  # one writer; refused before the first state save, the directory is left as it was
        started = where.resumable()
        out = where.prepare(to_dict(c), c.resume, normalise=typed_config_dict(spec.config_cls), restart=c.restart)

        def load(path: Path) -> QuerySearch[Any]:
            s = spec.search_cls.from_state(path, loaded.pool, oracle)
            log.info("resumed %s at step %d", spec.search_cls.label, len(s.trace))
            return s

        search = resume_or_start(out, c, started, load, lambda: spec.build(c, loaded.pool, oracle))

        def on_step(row: Mapping[str, Any]) -> None:
            log.info("step %d %s arch %d value %.3f cost %.1f", row["step"], row["kind"], row["arch_index"],
                     row["value"], row["cumulative_cost"])
            if progress_callback is not None:
                progress_callback(search.queries, search.budget)

        space = str(loaded.config.get("space", DEFAULT_SPACE))
        start_progress(progress_callback, search, oracle)
        result = run_with_executor(search, c, space, on_step, out.state_path)  # state saved after every tell
        arch_of = dict(zip(loaded.wide.column("arch_index").to_pylist(), loaded.wide.column("arch").to_pylist()))
        result["arch"] = arch_of.get(result["arch_index"])
        result["metrics"] = list(c.metrics)
        result["space"] = space
        result["pool"] = loaded.summary()
        answer = benchmark_answer(space, result["arch_index"])
        result["benchmark"] = answer.as_dict() if answer is not None else None
        result["trace"] = search.trace
        out.write_result(dict(result))
        return result
