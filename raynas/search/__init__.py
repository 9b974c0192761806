"""Query-based search over a scored candidate pool: RoBoT, baselines, oracles, resumable state."""

from __future__ import annotations

from raynas.search.baselines import metric_order, random_search, sample_pick_best, single_metric_greedy
from raynas.search.bo import propose
from raynas.oracles.base import (
    ORACLES,
    BenchmarkTableOracle,
    CallableOracle,
    Oracle,
    QueryLog,
    QueryResult,
    create_oracle,
)
from raynas.search.pool import CandidatePool
from raynas.search.robot import Proposal, RoBoT, RoBoTConfig
from raynas.store.search_state import load_state, save_state

__all__ = [
    "ORACLES",
    "BenchmarkTableOracle",
    "CallableOracle",
    "CandidatePool",
    "Oracle",
    "Proposal",
    "QueryLog",
    "QueryResult",
    "RoBoT",
    "RoBoTConfig",
    "create_oracle",
    "load_state",
    "metric_order",
    "propose",
    "random_search",
    "sample_pick_best",
    "save_state",
    "single_metric_greedy",
]
