"""A search's query log (raynas.search.queries): distinct queries, free repeats, the common result dict."""

from __future__ import annotations

import pytest

from raynas.errors import OracleError
from raynas.search.queries import QueryLog
from raynas.testing import FakeOracle


def test_query_log_caches_and_summarises():
    o = FakeOracle([10, 20, 30], [1.0, 3.0, 3.0], costs=[5.0, 6.0, 7.0], finals=[11.0, 33.0, 44.0])
    q = QueryLog()
    assert q.query(o, 20) == (3.0, 6.0, True)
    assert q.query(o, 20) == (3.0, 0.0, False)  # repeat: cache, no cost
    assert q.query(o, 30) == (3.0, 7.0, True)
    assert q.query(o, 10) == (1.0, 5.0, True)
    assert o.calls == [20, 30, 10]
    r = q.result("x", o)
    # tie on value 3.0: the earliest query (20) wins
    assert (r["arch_index"], r["value"], r["final"], r["queries"], r["cost"]) == (20, 3.0, 33.0, 3, 18.0)
    assert r["queried"] == [20, 30, 10]
    with pytest.raises(OracleError):
        q.record(20, 1.0, 1.0)
    with pytest.raises(OracleError):
        QueryLog().best()
