"""The human lines of a search result (what ``raynas search METHOD`` prints), formatted by the library."""

from __future__ import annotations

from raynas.search.summary import benchmark_line, summary_lines, trace_lines


def test_trace_lines():
    assert trace_lines(None) == [] and trace_lines([]) == []
    lines = trace_lines([{"step": 0, "kind": "greedy", "arch_index": 12, "value": 71.25, "cumulative_cost": 3.0,
                          "weights": [1.0, -0.5]},
                         {"step": 1, "kind": "bo", "arch_index": 7, "value": 9.0, "cumulative_cost": 3.0}])
    assert lines == ["step kind     arch    value  cum. cost  weights",
                     "   0 greedy     12   71.250        3.0  +1.00 -0.50",
                     "   1 bo          7    9.000        3.0  "]


def test_summary_lines_budget_pool_and_benchmark():
    result = {"budget": 5, "budget_requested": 9, "pool_size": 5, "max_iters": 15,
              "pool": {"size": 5, "complete": False,
                       "runs": [{"run": "runs/a", "summary": "3 of 4 shards", "problems": ["shard-2 missing"]}]},
              "benchmark": {"line": "NB201 index 3: 93.1% test accuracy"}}
    assert summary_lines(result) == [
        "budget: 5 distinct queries (requested 9, capped to the pool size 5), BO iterations at most 15",
        "pool: 5 archs searched, INCOMPLETE score run (--allow-incomplete)",
        "  runs/a: 3 of 4 shards",
        "    shard-2 missing",
        "NB201 index 3: 93.1% test accuracy",
    ]
    assert summary_lines({"budget": 2, "budget_requested": 2}) == ["budget: 2 distinct queries"]


def test_benchmark_line_without_a_stored_answer():
    assert benchmark_line({"space": "darts_cifar", "arch": "g"}) is None  # no benchmark table: nothing claimed


def test_summary_says_why_the_search_ended():
    lines = summary_lines({"budget": 40, "budget_requested": 40, "queries": 9, "stop": "patience"})
    assert lines == ["budget: 40 distinct queries",
                     "ended after 9 distinct queries: the BO kept re-proposing queried archs (patience)"]
    assert summary_lines({"queries": 3, "stop": "budget"}) == ["ended after 3 distinct queries: the budget was spent"]
