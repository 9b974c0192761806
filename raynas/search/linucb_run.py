"""``raynas search linucb``: LinUCB (:mod:`raynas.search.linucb`) over a scored pool, through the query-search
session (:func:`raynas.search.session.run_query_session`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

from raynas.errors import ConfigError
from raynas.oracles.base import Oracle
from raynas.search.linucb import LinUCB, LinUCBConfig
from raynas.search.pool import CandidatePool
from raynas.search.runner import ROBOT_METRICS, QueryPlacement, check_q
from raynas.search.session import SearchSpec, run_query_session


@dataclass(frozen=True)
class LinUCBSearchConfig:
    """``raynas search linucb``: the pool (``scores``, runs joined with ``:``), the search directory ``out``, the
    oracle (None: the scored space's benchmark table; ``train``: real short training, ``oracle_options``), the
    proxies (``metrics``, default RoBoT's six; a comma string is normalised to a tuple), and LinUCB's settings,
    whose defaults (``ridge`` 10, ``noise`` 1, ``beta`` 1) were fixed before it was evaluated (issue 33;
    docs/benchmarks.md, "LinUCB"). ``seed`` is kept for the searches' common calling convention and a
    training oracle's seed: LinUCB itself is deterministic."""

    scores: str
    out: str
    oracle: str | None = None
    budget: int = 20
    metrics: tuple[str, ...] | str = ROBOT_METRICS
    seed: int = 0
    ridge: float = LinUCBConfig.ridge
    noise: float = LinUCBConfig.noise
    beta: float = LinUCBConfig.beta
    resume: bool = False
    #: start over in ``out`` whatever is stored there (its config, state and result are replaced)
    restart: bool = False
    oracle_options: dict | None = None
    allow_incomplete: bool = False
    #: proposals in flight at once (1: sequential)
    q: int = 1
    # where the queries run (QueryPlacement)
    query_backend: str = "local"
    address: str | None = None
    gpus_per_query: float = 0.0
    cpus_per_query: float = 1.0
    query_retries: int = 2

    def __post_init__(self) -> None:
        check_q(self.q)
        QueryPlacement.of(self)
        names = self.metrics.split(",") if isinstance(self.metrics, str) else self.metrics
        object.__setattr__(self, "metrics", tuple(m.strip() for m in names if m.strip()))
        if not self.metrics:
            raise ConfigError("linucb: metrics must name at least one metric")
        self.search_config()  # the search's own checks, before any score is read

    def search_config(self) -> LinUCBConfig:
        return LinUCBConfig(budget=self.budget, ridge=self.ridge, noise=self.noise, beta=self.beta, q=self.q,
                            seed=self.seed)


def _build(c: LinUCBSearchConfig, pool: CandidatePool, oracle: Oracle) -> LinUCB:
    s = c.search_config()
    return LinUCB(pool, oracle, budget=s.budget, ridge=s.ridge, noise=s.noise, beta=s.beta, q=s.q, seed=s.seed)


SPEC = SearchSpec(LinUCBSearchConfig, LinUCB, _build)


def run_linucb_search(cfg: LinUCBSearchConfig | Mapping[str, Any],
                      progress_callback: Callable[..., None] | None = None) -> dict[str, Any]:
    """Run (or resume) LinUCB over the pool scored in ``cfg.scores``; the result as
    :func:`raynas.search.session.run_query_session` returns it (``weights``: the posterior mean of the
    standardised values over the proxies then the intercept)."""
    return run_query_session(SPEC, cfg, progress_callback)
