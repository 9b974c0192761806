"""scripts/bench_bo_step.py: argument parsing, the measuring loop on a fake pool, and the side-by-side table."""

from __future__ import annotations

import pytest

from raynas.search.hnas import HNAS
from raynas.testing import FakeOracle, hnas_pool_table
from raynas_tests.scripts import load_script

FAST = {"num_restarts": 2, "raw_samples": 32}
#: HNAS's cache-repeat mode (a re-proposed queried arch is a free observation), which these tests pin; the
#: default since issue 19 is exclude_queried=True
REPEATS = {"exclude_queried": False}


@pytest.fixture(scope="module")
def bench():
    return load_script("bench_bo_step")


def test_arguments(bench):
    a = bench.build_parser().parse_args([])
    assert (a.pool_size, a.budgets, a.robot_patience, a.rounds) == (40, [20, 100, 1000], 10, 1)
    a = bench.build_parser().parse_args(["--budgets", "5,9", "--robot-patience", "none"])
    assert (a.budgets, a.robot_patience) == ([5, 9], None)
    for bad in (["--budgets", "0"], ["--budgets", "x"], ["--robot-patience", "0"]):
        with pytest.raises(SystemExit):
            bench.build_parser().parse_args(bad)
    with pytest.raises(SystemExit):
        bench.main(["--methods", "tpe"])


def test_measure_counts_gp_steps_and_the_table_gives_ratios(bench):
    table, acc = hnas_pool_table(12, 0, "target", "ntk_trace")
    pool = HNAS.pool_from_table(table, "ntk_trace")
    fits = bench.FitCounter()
    try:
        rows = []
        for T in (4, 1000):
            oracle = FakeOracle(table["arch_index"], acc)
            r = bench.measure(HNAS(pool, oracle, budget=T, seed=0, patience=3, **REPEATS, **FAST), oracle, 600.0, fits)
            rows.append({"method": "hnas", "pool": 12, "budget": T, **r})
    finally:
        fits.close()
    small, big = rows[0], rows[1]
    assert (small["steps"], small["queries"], small["gp_fits"], small["stop"]) == (4, 4, 1, "budget")
    assert big["stop"] == "patience" and big["gp_fits"] == big["steps"] - 3  # n_init = 3 Sobol steps fit nothing
    assert big["mean_step_s"] > 0 and big["max_step_s"] >= big["mean_step_s"]
    lines = bench.table(rows).splitlines()
    assert len(lines) == 4 and lines[2].endswith("| x1.00 / x1.00 |") and "| patience |" in lines[3]
    cut = bench.measure(HNAS(pool, FakeOracle(table["arch_index"], acc), budget=5, seed=0, **REPEATS), None, -1.0, fits)
    assert (cut["stop"], cut["steps"]) == ("cut", 0)


def test_gp_size_table(bench):
    assert bench.build_parser().parse_args(["--gp-sizes", "64,1024"]).gp_sizes == [64, 1024]
    lines = bench.gp_table([{"n": 1024, "all": 30.0, "window": 2.0}]).splitlines()
    assert lines[2] == "| 1024 | 30.00 s | 2.00 s | x15.00 |"
