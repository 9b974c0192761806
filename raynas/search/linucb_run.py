"""``raynas search linucb``: LinUCB (:mod:`raynas.search.linucb`) over a scored pool, through the query-search
session (:func:`raynas.search.session.run_query_session`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from raynas.errors import ConfigError
from raynas.oracles.base import Oracle
from raynas.search.linucb import LinUCB, LinUCBConfig
from raynas.search.pool import CandidatePool
from raynas.search.session import DEFAULT_SEARCH_METRICS, QuerySearchConfig, SearchSpec, normalise_metrics


#: the guards of :class:`LinUCBSearchConfig` (``none``: the pre-registered search as issue 33 defined it)
GUARDS = ("none", "size")
#: the model-size proxy the ``size`` guard adds
SIZE_PROXY = "params"


@dataclass(frozen=True)
class LinUCBSearchConfig(QuerySearchConfig):
    """``raynas search linucb``: the pool (``scores``, runs joined with ``:``), the search directory ``out``, the
    oracle (None: the scored space's benchmark table; ``train``: real short training, ``oracle_options``), the
    proxies (``metrics``, default RoBoT's six; a comma string is normalised to a tuple), and LinUCB's settings,
    whose defaults (``ridge`` 10, ``noise`` 1, ``beta`` 1) were fixed before it was evaluated (issue 33;
    docs/benchmarks.md, "LinUCB"). ``seed`` is kept for the searches' common calling convention and a
    training oracle's seed: LinUCB itself is deterministic."""

    metrics: tuple[str, ...] | str = field(default=DEFAULT_SEARCH_METRICS, metadata={
        "help": "the proxies, comma-separated"})
    ridge: float = field(default=LinUCBConfig.ridge, metadata={"help": "prior precision lambda of the weights"})
    noise: float = field(default=LinUCBConfig.noise, metadata={
        "help": "noise variance sigma^2 of the standardised values"})
    beta: float = field(default=LinUCBConfig.beta, metadata={"help": "weight of the confidence width"})
    #: the guard against one proxy's blind spot (issue 33; docs/benchmarks.md, "LinUCB"): "size" adds the pool's
    #: model-size proxy (``params``) to the features, so a pool whose proxies miss what size predicts still finds it
    guard: str = field(default="none", metadata={
        "help": "size: add the model-size proxy (params) to the features (guards against the blind spot of a "
                "missing or mis-scaled proxy; needs params in the scores)", "choices": GUARDS})

    def __post_init__(self) -> None:
        super().__post_init__()
        normalise_metrics(self, "linucb")
        if self.guard not in GUARDS:
            raise ConfigError(f"linucb: guard must be one of {', '.join(GUARDS)}, got {self.guard!r}")
        self.search_config()  # the search's own checks, before any score is read

    def features(self) -> tuple[str, ...]:
        """The pool's columns: ``metrics``, plus ``params`` with ``guard="size"`` (once)."""
        extra = (SIZE_PROXY,) if self.guard == "size" and SIZE_PROXY not in self.metrics else ()
        return (*self.metrics, *extra)

    def search_config(self) -> LinUCBConfig:
        return LinUCBConfig(budget=self.budget, ridge=self.ridge, noise=self.noise, beta=self.beta, q=self.q,
                            seed=self.seed)


def _build(c: LinUCBSearchConfig, pool: CandidatePool, oracle: Oracle) -> LinUCB:
    s = c.search_config()
    return LinUCB(pool, oracle, budget=s.budget, ridge=s.ridge, noise=s.noise, beta=s.beta, q=s.q, seed=s.seed)


SPEC = SearchSpec(LinUCBSearchConfig, LinUCB, _build, metrics=lambda c: c.features())


def run_linucb_search(cfg: LinUCBSearchConfig | Mapping[str, Any],
                      progress_callback: Callable[..., None] | None = None) -> dict[str, Any]:
    """Run (or resume) LinUCB over the pool scored in ``cfg.scores``; the result as
    :func:`raynas.search.session.run_query_session` returns it (``weights``: the posterior mean of the
    standardised values over the proxies then the intercept)."""
    return SPEC.run(cfg, progress_callback)
