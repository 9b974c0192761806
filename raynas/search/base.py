"""``QuerySearch``: the ask/tell machinery shared by the query-based searches (RoBoT, HNAS).

A query search proposes one architecture of a :class:`~raynas.search.pool.CandidatePool` at a time, an oracle
answers it (a query value and a cost), and the answer is told back. This module owns what every such search
does the same way, so the subclasses only say how they propose:

* the budget in distinct queries and the :class:`~raynas.search.queries.QueryLog` that counts them: an arch
  proposed again is answered from the log (no query, no cost) but is still a step of the trace;
* when it is done (:meth:`QuerySearch.stop_reason`, the result's ``stop``): the budget spent, the pool exhausted
  (no arch left that a new query could take, so a budget the pool cannot yield ends instead of spinning), or
  the method's own rule;
* :meth:`QuerySearch.tell` validation (only the pending proposal, finite values and costs);
* the trace rows (:data:`raynas.store.search_state.TRACE_SCHEMA`'s columns), :meth:`~QuerySearch.result`,
  the state config saved with them, and resume (:meth:`~QuerySearch.from_state` replays the saved rows,
  checking that each is what this search would have done, without re-running the BO).

The object is a pure state machine in the style of Ray Tune's ``Searcher``: ``ask``/``tell`` never touch a
file. Persisting is the driver's job: :meth:`QuerySearch.run` with ``state_path`` (or any driver calling
:func:`save_search_state` after each tell) writes the state through :mod:`raynas.store.search_state`, and
since every proposal is a pure function of the told rows and the seed, a search resumed from that file asks
exactly what the uninterrupted one would have asked next.

**Queries in flight (q-batch).** With ``q > 1`` (a ``q`` field of the search's config) up to ``q`` proposals are
pending at once: :meth:`QuerySearch.ask_batch` fills the free slots, each new BO point fantasised jointly with
the in-flight ones (:func:`raynas.search.bo.propose` with ``pending``: qUCB / qLogEI with ``X_pending``). A
proposal whose arch is already queried *or in flight* is ``cached`` (deduplicated: it is never queried, its
value is the other query's). Answers may arrive in any order (:func:`raynas.search.queries.drive` collects them
in completion order and keeps each with :meth:`QuerySearch.record_result`), but they are *told* in proposal
order, and the search asks again after each tell: so every proposal is a pure function of the seed and the
values, whatever the timing, and a resumed search (told rows, in-flight proposals and their completed results,
failed queries: all in the state file) continues exactly. A query that gave no value is told with
:meth:`QuerySearch.tell_failed` (status + reason, recorded, the arch is never proposed again). ``q = 1`` is the
sequential search, unchanged.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar, Generic, Protocol, Sequence, TypeVar

import numpy as np

from raynas.config import from_dict, to_dict
from raynas.errors import ConfigError, SearchError, StoreError
from raynas.oracles.base import Oracle
from raynas.search.queries import QueryLog, drive
from raynas.search.pool import CandidatePool
from raynas.store.search_state import FAILED_STATUSES, load_search_state, save_state

log = logging.getLogger(__name__)


class StateStore(Protocol):
    """Where a running search saves its state after every change (:class:`raynas.store.SearchDir` is one)."""

    def save_state(self, rows: Sequence[dict[str, Any]], config: dict[str, Any], *,
                   in_flight: Sequence[dict[str, Any]] = (), failed: Sequence[dict[str, Any]] = ()) -> None: ...


class QueryProposal(Protocol):
    """What :meth:`QuerySearch.ask` returns: the step, the proposal kind, the point of the search space that
    picked the arch (``weights``), the arch, and whether it was queried before (``cached``)."""

    @property
    def step(self) -> int: ...
    @property
    def kind(self) -> str: ...
    @property
    def weights(self) -> tuple[float, ...]: ...
    @property
    def arch_index(self) -> int: ...
    @property
    def cached(self) -> bool: ...


@dataclass(frozen=True)
class SavedProposal:
    """A proposal rebuilt from a saved state (resume): what the search proposed, read back instead of re-run."""

    step: int
    kind: str
    weights: tuple[float, ...]
    arch_index: int
    cached: bool


P = TypeVar("P", bound=QueryProposal)
S = TypeVar("S", bound="QuerySearch[Any]")


class QuerySearch(Generic[P]):
    """Ask/tell search over ``pool`` answered by ``oracle`` (needed by :meth:`run` and for ``final`` in
    :meth:`result`). Subclasses set ``budget`` (distinct queries, after capping) in ``__init__`` and define
    :meth:`_propose`, :meth:`_next_kind`, :meth:`_replays`, :meth:`_weights_dim` and :meth:`_result_extra`;
    :meth:`_observe` sees every told row (their BO observations), :meth:`_may_ask` says whether another
    proposal may be made while others are in flight, :meth:`fingerprint` / :meth:`_pool_state` say what resume
    checks. A proposal's ``step`` is its position in ask order (:attr:`next_step`)."""

    #: ``method`` of the result and of the saved state (its config is saved under this key too)
    method: ClassVar[str]
    #: the search's own config dataclass (the constructor takes its fields as keyword arguments)
    config_cls: ClassVar[type]
    #: the name in messages ("RoBoT", "HNAS") and its article ("a", "an")
    label: ClassVar[str]
    article: ClassVar[str] = "a"
    #: values for config keys that states saved before the key existed ran with (resume must replay the same)
    legacy_defaults: ClassVar[dict[str, Any]] = {}

    budget: int

    def __init__(self, pool: CandidatePool, oracle: Oracle | None, config: Any):
        if len(pool) == 0:
            raise SearchError("the candidate pool is empty")
        self.pool = pool
        self.oracle = oracle
        self.config = config
        self.trace: list[dict[str, Any]] = []
        self._log = QueryLog()
        self._pending: list[Any] = []  # asked, not told yet, in ask order
        self._asked = 0  # proposals made so far (the next proposal's step)
        self._results: dict[int, tuple[float, float]] = {}  # step -> (value, cost) of a completed in-flight query
        #: failed queries, in tell order (``step, kind, weights, arch_index, new_query, status, reason``)
        self.failed: list[dict[str, Any]] = []
        self._failed_archs: set[int] = set()

    # ------------------------------------------------------------ to define
    def _propose(self) -> P:
        """The next proposal (called once per step, by :meth:`ask`; :attr:`pending` holds those in flight)."""
        raise NotImplementedError

    def _next_kind(self) -> str:
        """The kind of the next proposal (checked against saved rows on resume)."""
        raise NotImplementedError

    def _replays(self, kind: str, weights: np.ndarray, arch: int) -> bool:
        """Whether a saved row ``(kind, weights, arch)`` is what this search would propose next."""
        raise NotImplementedError

    def _weights_dim(self) -> int:
        """Length of a row's ``weights`` (the point the search optimises over; checked on resume)."""
        raise NotImplementedError

    def _observe(self, kind: str, weights: np.ndarray, value: float, new: bool) -> None:
        """Bookkeeping of a told row beyond the query log and the trace (after the log has recorded it)."""

    def _may_ask(self) -> bool:
        """Whether another proposal may be made now, with :attr:`pending` in flight (e.g. not when the
        outcomes in flight decide the next phase). Always true when nothing is pending."""
        return True

    def _result_extra(self) -> dict[str, Any]:
        """The method's own keys of :meth:`result`."""
        return {}

    def fingerprint(self) -> str:
        """A digest of what the search reads from the pool (resume refuses other scores)."""
        return self.pool.fingerprint()

    def _pool_state(self) -> dict[str, Any]:
        """The ``pool`` entry of the state config (its ``fingerprint`` is compared on resume)."""
        return {"size": len(self.pool), "fingerprint": self.fingerprint()}

    def _exhausted(self) -> bool:
        """No arch is left that a new query could take (every one the search can propose was queried or its query
        failed; nothing is in flight when this is asked). A search whose budget exceeds what the pool can yield
        ends here instead of proposing repeats forever."""
        return False

    def _method_stop(self) -> str | None:
        """The method's own reason to end (e.g. an iteration cap or a patience rule), asked only when nothing is
        in flight; None: no reason."""
        return None

    # ---------------------------------------------------------------- budget
    def stop_reason(self) -> str | None:
        """Why the search is done, None while it runs: ``"budget"`` (the requested number of distinct queries was
        made), ``"pool_exhausted"`` (the requested budget exceeded what the pool holds, or some queries failed,
        and every arch the search can propose has been queried), or the method's own (:meth:`_method_stop`)."""
        if len(self._log) >= self.budget:
            return "budget" if self.budget >= int(self.config.budget) else "pool_exhausted"
        if self._pending:
            return None
        if self._exhausted():
            return "pool_exhausted"
        return self._method_stop()

    @property
    def done(self) -> bool:
        return self.stop_reason() is not None

    @property
    def queries(self) -> int:
        """Distinct archs queried so far."""
        return len(self._log)

    @property
    def q(self) -> int:
        """Proposals that may be in flight at once (the config's ``q``; 1: the sequential search)."""
        return int(getattr(self.config, "q", 1))

    @property
    def next_step(self) -> int:
        """The step of the next proposal (proposals made so far)."""
        return self._asked

    @property
    def pending(self) -> tuple[Any, ...]:
        """The proposals asked and not told yet, in ask order (the first is the one :meth:`tell` takes)."""
        return tuple(self._pending)

    def in_flight_archs(self) -> set[int]:
        """Archs of pending proposals that need a query (not cached)."""
        return {int(p.arch_index) for p in self._pending if not p.cached}

    def has_value(self, arch_index: int) -> bool:
        """The arch was queried and told (its value is in the query log)."""
        return int(arch_index) in self._log

    def is_known(self, arch_index: int) -> bool:
        """Queried, in flight or failed: a proposal of it needs no new query (or may not be made)."""
        a = int(arch_index)
        return a in self._log or a in self.in_flight_archs() or a in self._failed_archs

    def unavailable(self) -> set[int]:
        """Archs a proposal that must be a new query cannot take: queried, in flight or failed."""
        return set(self._log.arch) | self.in_flight_archs() | self._failed_archs

    def can_ask(self) -> bool:
        """A new proposal may be made now: not done, a free slot of ``q``, distinct queries told plus in flight
        below the budget, and the search's own rule (:meth:`_may_ask`)."""
        return (not self.done and len(self._pending) < self.q
                and len(self._log) + len(self.in_flight_archs()) < self.budget and self._may_ask())

    # -------------------------------------------------------------- ask/tell
    def ask(self) -> P:
        """A new proposal while :meth:`can_ask`, else the earliest pending one (with ``q = 1``: asking again
        before :meth:`tell` returns the same one)."""
        if self.done:
            raise SearchError("the search is done; call result()")
        if self.can_ask():
            return self._ask_new()
        if self._pending:
            return self._pending[0]
        raise SearchError("no proposal can be made and none is pending")  # a subclass rule that never opens

    def ask_batch(self) -> list[P]:
        """Every new proposal the free slots take now (possibly none), in ask order."""
        new: list[P] = []
        while self.can_ask():
            new.append(self._ask_new())
        return new

    def _ask_new(self) -> P:
        p = self._propose()
        cached = self.is_known(p.arch_index) and int(p.arch_index) not in self._failed_archs
        if int(p.arch_index) in self._failed_archs:
            raise SearchError(f"{type(self).__name__} proposed arch {p.arch_index}, whose query failed")
        if p.step != self._asked or p.cached != cached:
            p = dataclasses.replace(p, step=self._asked, cached=cached)  # type: ignore[type-var]
        self._pending.append(p)
        self._asked += 1
        return p

    def _head(self, proposal: Any) -> Any:
        if not self._pending or proposal != self._pending[0]:
            what = "the earliest pending one" if len(self._pending) > 1 else "the pending one"
            raise SearchError(f"tell() got a proposal that is not {what}: {proposal}")
        return self._pending[0]

    def tell(self, proposal: P, value: float | None = None, cost: float = 0.0) -> dict[str, Any]:
        """Record the answer to ``proposal`` (the earliest pending one); returns the new trace row. For a cached
        proposal ``value`` may be omitted (the cached value is used and the cost is 0). Writes nothing (see
        :func:`save_search_state`)."""
        self._head(proposal)
        if proposal.cached:
            if proposal.arch_index not in self._log:
                raise SearchError(f"arch {proposal.arch_index} has no value (its query failed): use tell_failed()")
            cached = self._log.value_of(proposal.arch_index)
            if value is not None and float(value) != cached:
                log.warning("arch %d was already queried (value %.6g); ignoring the new value %.6g",
                            proposal.arch_index, cached, value)
            value, cost = cached, 0.0
        elif value is None or not math.isfinite(float(value)):
            raise SearchError(f"arch {proposal.arch_index}: the oracle value must be a finite number, got {value!r}; "
                              "map failed trainings to a finite value in the oracle, or use tell_failed()")
        elif not (math.isfinite(float(cost)) and float(cost) >= 0):
            raise SearchError(f"arch {proposal.arch_index}: cost must be finite and >= 0, got {cost!r}")
        row = self._apply(proposal.kind, np.asarray(proposal.weights, dtype=np.float64), proposal.arch_index,
                          float(value), float(cost), not proposal.cached, proposal.step)
        self._pending.pop(0)
        self._results.pop(proposal.step, None)
        return row

    def tell_failed(self, proposal: P, reason: str, status: str = "error") -> dict[str, Any]:
        """Record that ``proposal`` (the earliest pending one) got no value: ``status`` (``"error"``: the query
        raised; ``"worker_lost"``: every retry lost its worker) and ``reason``. The arch is never proposed
        again; a failed query is no trace row, no BO observation and does not count towards the budget.
        Returns the recorded entry."""
        self._head(proposal)
        if status not in FAILED_STATUSES:
            raise SearchError(f"status must be one of {FAILED_STATUSES}, got {status!r}")
        entry = {"step": int(proposal.step), "kind": proposal.kind, "weights": [float(v) for v in proposal.weights],
                 "arch_index": int(proposal.arch_index), "new_query": not proposal.cached, "status": status,
                 "reason": str(reason)}
        self._fail(entry)
        self._pending.pop(0)
        self._results.pop(proposal.step, None)
        log.warning("query of arch %d (step %d) failed (%s): %s", entry["arch_index"], entry["step"], status, reason)
        return entry

    def _fail(self, entry: dict[str, Any]) -> None:
        self.failed.append(dict(entry))
        self._failed_archs.add(int(entry["arch_index"]))

    def record_result(self, step: int, value: float, cost: float) -> None:
        """Keep the answer of the in-flight proposal ``step`` until its turn to be told (saved with the state,
        so a resumed search does not query it again)."""
        if not any(p.step == step for p in self._pending):
            raise SearchError(f"no proposal of step {step} is in flight")
        self._results[int(step)] = (float(value), float(cost))

    def result_of(self, step: int) -> tuple[float, float] | None:
        """The recorded ``(value, cost)`` of the in-flight proposal ``step``, None while it runs."""
        return self._results.get(int(step))

    def _apply(self, kind: str, w: np.ndarray, arch: int, value: float, cost: float, new: bool,
               step: int | None = None) -> dict[str, Any]:
        if new:
            self._log.record(arch, value, cost)
        self._observe(kind, w, value, new)
        prev = self.trace[-1]["cumulative_cost"] if self.trace else 0.0
        row = {"step": len(self.trace) if step is None else int(step), "kind": kind, "weights": [float(v) for v in w],
               "arch_index": int(arch), "value": value, "cost": cost if new else 0.0,
               "cumulative_cost": prev + (cost if new else 0.0), "new_query": new}
        self.trace.append(row)
        return row

    # --------------------------------------------------------------- driving
    def run(self, on_step: Callable[[dict[str, Any]], None] | None = None, *,
            state_path: str | Path | None = None, executor: Any = None, store: StateStore | None = None
            ) -> dict[str, Any]:
        """Ask/query/tell until done with ``self.oracle`` (:func:`raynas.search.queries.drive`; ``executor``
        runs the queries elsewhere, e.g. :class:`raynas.parallel.queries.RayQueryExecutor`). After every tell
        (and every new batch of proposals or completed query) the state is saved through ``store`` (the search
        directory, :class:`raynas.store.SearchDir`, which owns the state file) or to the file ``state_path`` (if
        given, see :func:`save_search_state`); ``on_step(row)`` is called after every tell."""
        if self.oracle is None:
            raise SearchError(f"{type(self).__name__}.run needs an oracle")
        path = Path(state_path) if state_path is not None else None

        def save() -> None:
            if store is not None:
                store.save_state(self.state_rows(), self.state_config(), in_flight=self.in_flight(),
                                 failed=self.failed)
            elif path is not None:
                save_search_state(self, path)

        def step(row: dict[str, Any]) -> None:
            save()
            if on_step is not None:
                on_step(row)

        drive(self, self.oracle, step, executor=executor, on_change=save)
        return self.result()

    def weight_names(self) -> tuple[str, ...]:
        """What each entry of a trace row's ``weights`` is (reports label their plot with it); empty when the
        search's rows carry no weights (random search)."""
        return ()

    def result(self) -> dict[str, Any]:
        """:meth:`QueryLog.result` (best queried arch, its value and ``final``, queries, cost, history) plus the
        method's own keys, ``q``, ``failed_queries`` (the recorded failures), ``stop`` (:meth:`stop_reason`) and
        ``weight_names`` (:meth:`weight_names`)."""
        return self._log.result(self.method, self.oracle, **self._result_extra(), q=self.q,
                                failed_queries=[dict(f) for f in self.failed], stop=self.stop_reason(),
                                weight_names=list(self.weight_names()))

    # ----------------------------------------------------------------- state
    def state_rows(self) -> list[dict[str, Any]]:
        """The trace rows to save (:data:`raynas.store.search_state.TRACE_SCHEMA`), copies."""
        return [dict(r) for r in self.trace]

    def in_flight(self) -> list[dict[str, Any]]:
        """The pending proposals to save, with the ``result`` of those whose query completed."""
        out = []
        for p in self._pending:
            e: dict[str, Any] = {"step": int(p.step), "kind": p.kind, "weights": [float(v) for v in p.weights],
                                 "arch_index": int(p.arch_index), "new_query": not p.cached}
            if p.step in self._results:
                e["result"] = {"value": self._results[p.step][0], "cost": self._results[p.step][1]}
            out.append(e)
        return out

    def state_config(self) -> dict[str, Any]:
        """What is saved with the rows: the method, its requested config, and the pool it searched."""
        return {"method": self.method, self.method: to_dict(self.config), "pool": self._pool_state()}

    @classmethod
    def from_config(cls: type[S], pool: CandidatePool, oracle: Oracle | None, config: Any) -> S:
        """A fresh search configured by an instance of :attr:`config_cls`."""
        return cls(pool, oracle, **{f.name: getattr(config, f.name) for f in dataclasses.fields(config)})

    @classmethod
    def from_state(cls: type[S], path: str | Path, pool: CandidatePool, oracle: Oracle | None = None) -> S:
        """Resume from a state file (:func:`save_search_state`). The pool must be the one the state was saved
        for (same fingerprint), and every row must replay, else :class:`StoreError`."""
        st = load_search_state(path)
        return cls.restore(st.rows, st.config, pool, oracle, where=str(path), in_flight=st.in_flight,
                           failed=st.failed)

    @classmethod
    def restore(cls: type[S], rows: Sequence[dict[str, Any]], cfg: dict[str, Any], pool: CandidatePool,
                oracle: Oracle | None = None, *, where: str = "the search state",
                in_flight: Sequence[dict[str, Any]] = (), failed: Sequence[dict[str, Any]] = ()) -> S:
        """The search after the saved ``rows`` (with the state config ``cfg``, the proposals ``in_flight`` and the
        ``failed`` queries), checked as :meth:`from_state`."""
        if cfg.get("method") != cls.method or not isinstance(cfg.get(cls.method), dict):
            raise StoreError(f"{where} is not {cls.article} {cls.label} state")
        try:
            config = from_dict(cls.config_cls, {**cls.legacy_defaults, **cfg[cls.method]})
        except ConfigError as e:
            raise StoreError(f"{where}: bad {cls.label} config: {e}") from None
        self = cls.from_config(pool, oracle, config)
        saved = cfg.get("pool") if isinstance(cfg.get("pool"), dict) else {}
        if saved.get("fingerprint") != self.fingerprint():
            what = ([f"metrics {saved.get('metrics')}"] if "metrics" in saved else []) + [f"{saved.get('size')} archs"]
            raise StoreError(f"{where} was saved for a different candidate pool ({', '.join(what)})")
        self._replay(rows, where, in_flight, failed)
        return self

    def _replay(self, rows: Sequence[dict[str, Any]], where: str, in_flight: Sequence[dict[str, Any]] = (),
                failed: Sequence[dict[str, Any]] = ()) -> None:
        """Re-apply saved rows without re-running the BO, on the schedule the driver follows (ask while
        :meth:`can_ask`, tell the earliest pending, repeat), checking that each proposal is what this search would
        have made at its turn."""
        told = sorted([(False, dict(r)) for r in rows] + [(True, dict(f)) for f in failed], key=lambda e: e[1]["step"])
        flight = sorted((dict(e) for e in in_flight), key=lambda e: e["step"])
        entries = [e for _, e in told] + flight
        for i, e in enumerate(entries):
            if e["step"] != i:
                raise StoreError(f"{where}: row {i} ({e.get('kind')}, arch {e.get('arch_index')}) is inconsistent "
                                 "with the pool and config (steps are not 0, 1, ...)")
        dim, asked = self._weights_dim(), 0
        for t in range(len(told) + 1):
            while asked < len(entries) and self.can_ask():
                e = entries[asked]
                kind, arch, w = e["kind"], int(e["arch_index"]), np.asarray(e["weights"], dtype=np.float64)
                bad = (kind != self._next_kind() or w.shape != (dim,) or arch not in self.pool
                       or arch in self._failed_archs or bool(e["new_query"]) == self.is_known(arch))
                if bad or not self._replays(kind, w, arch):
                    raise StoreError(f"{where}: row {asked} ({kind}, arch {arch}) is inconsistent with the pool "
                                     "and config")
                self._pending.append(SavedProposal(asked, kind, tuple(float(v) for v in w), arch,
                                                   not bool(e["new_query"])))
                self._asked += 1
                asked += 1
            if t == len(told):
                break
            is_failure, e = told[t]
            if not self._pending:
                raise StoreError(f"{where}: row {t} comes after the search was already done"
                                 if self.done else f"{where}: row {t} was never asked")
            p = self._pending.pop(0)
            if is_failure:
                self._fail({k: e[k] for k in ("step", "kind", "weights", "arch_index", "new_query", "status",
                                               "reason")})
            else:
                if p.cached and p.arch_index not in self._log:
                    raise StoreError(f"{where}: row {t} repeats arch {p.arch_index}, which has no value")
                self._apply(p.kind, np.asarray(p.weights), p.arch_index, float(e["value"]), float(e["cost"]),
                            not p.cached, p.step)
        if asked < len(entries):
            if self.done:
                raise StoreError(f"{where}: row {asked} comes after the search was already done")
            raise StoreError(f"{where}: row {asked} was saved in flight, but the search would not have asked it yet")
        for e in flight:
            res = e.get("result")
            if isinstance(res, dict):
                self._results[int(e["step"])] = (float(res["value"]), float(res["cost"]))


def save_search_state(search: QuerySearch[Any], path: str | Path) -> None:
    """Atomically save ``search``'s trace, state config, in-flight proposals and failed queries to ``path``
    (:func:`raynas.store.search_state.save_state`): what a driver calls after each tell."""
    save_state(path, search.state_rows(), search.state_config(), in_flight=search.in_flight(), failed=search.failed)
