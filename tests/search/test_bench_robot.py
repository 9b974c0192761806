"""scripts/bench_robot.py: argument parsing and the pure summary helpers (no scored run exists in tests)."""

from __future__ import annotations

import numpy as np
import pytest

from raynas.testing import FakeOracle
from raynas_tests.scripts import load_script


@pytest.fixture(scope="module")
def bench():
    return load_script("bench_robot")


def test_defaults(bench):
    a = bench.parse_args(["--scores", "runs/x"])
    assert a.scores == "runs/x" and a.budget == 20 and a.seeds == list(range(10, 20))
    assert a.metrics == ["grad_norm", "snip", "grasp", "fisher", "synflow", "jacob_cov"]
    assert a.target == 94.3 and a.transform == "none" and a.bo_iters is None and a.acquisition == "ucb"


def test_options(bench):
    a = bench.parse_args(["--scores", "r", "--seeds", "1,3", "--budget", "5", "--metrics", "snip, synflow",
                          "--transform", "signed_log", "--bo-iters", "7", "--truth", "t.parquet"])
    assert (a.seeds, a.budget, a.metrics, a.transform, a.bo_iters) == ([1, 3], 5, ["snip", "synflow"], "signed_log", 7)
    assert bench.parse_args(["--scores", "r", "--seeds", "0-2"]).seeds == [0, 1, 2]
    a = bench.parse_args(["--scores", "r", "--metrics", "snip", "--pick-metric", "snip", "--pick-sample", "10"])
    assert (a.pick_metric, a.pick_sample) == ("snip", 10)


@pytest.mark.parametrize("argv", [
    [],  # --scores is required
    ["--scores", "r", "--budget", "0"],
    ["--scores", "r", "--seeds", "a-b"],
    ["--scores", "r", "--seeds", ","],
    ["--scores", "r", "--metrics", " , "],
    ["--scores", "r", "--transform", "log"],
    ["--scores", "r", "--synthetic-from-table"],  # scores are never faked
    ["--scores", "r", "--metrics", "snip,grasp"],  # the sample-pick-best metric (synflow) is not among them
])
def test_rejected(bench, argv, capsys):
    with pytest.raises(SystemExit) as e:
        bench.parse_args(argv)
    assert e.value.code == 2


def test_queries_to_target_and_summary(bench):
    o = FakeOracle([1, 2, 3], [50.0, 70.0, 60.0], costs=[10.0, 20.0, 30.0], finals=[90.0, 94.5, 93.0])
    r = {"queried": [3, 1, 2], "values": [60.0, 50.0, 70.0], "final": 94.5, "cost": 60.0}
    # chosen-so-far: 3 (93.0), 3 (93.0), 2 (94.5)
    assert bench.queries_to_target(r, o, 94.3) == 3
    assert bench.queries_to_target(r, o, 93.0) == 1
    assert bench.queries_to_target(r, o, 95.0) is None
    r2 = {"queried": [1], "values": [50.0], "final": 90.0, "cost": 10.0}
    s = bench.summarize("m", [r, r2], o, 94.3, pool_best=94.5)
    assert s["final_mean"] == pytest.approx(92.25) and s["final_std"] == pytest.approx(2.25)
    assert s["cost_mean"] == 35.0 and s["regret_mean"] == pytest.approx(2.25)
    assert (s["reached"], s["queries_to_target_median"]) == (1, 3.0)
    assert s["regret_attainable_mean"] == s["regret_mean"]  # no attainable given: against the pool optimum
    s2 = bench.summarize("m", [r, r2], o, 94.3, pool_best=94.5, attainable=93.0)
    assert s2["regret_attainable_mean"] == pytest.approx(0.75)
    text = bench.format_rows([s], 94.3)
    assert "92.250 ± 2.250" in text and "1/2 runs" in text
    assert np.isfinite(s["cost_std"])


def test_zero_shot_row_answers_the_rules_top_arch_without_queries(bench):
    from raynas.search import CandidatePool

    o = FakeOracle([1, 2, 3], [50.0, 70.0, 60.0], costs=[10.0, 20.0, 30.0], finals=[90.0, 94.5, 93.0])
    pool = CandidatePool.from_table({"arch_index": np.array([1, 2, 3]), "a": np.array([0.1, 0.3, 0.2]),
                                     "b": np.array([3.0, 1.0, 2.0])}, ["a", "b"])
    row, result = bench.zero_shot_row(pool, o, "rank_sum", [True, False], 4, 94.3, 94.5, 94.5)
    assert result["arch_index"] == 2 and result["cost"] == 0.0 and result["queried"] == []
    assert row["method"] == "zero-shot (rank_sum)" and row["final_mean"] == 94.5 and row["runs"] == 4
    assert (row["reached"], row["queries_to_target_median"]) == (4, 0.0)
    row, result = bench.zero_shot_row(pool, o, "rank_sum", [False, True], 4, 94.3, 94.5, 94.5)
    assert result["arch_index"] == 1 and row["reached"] == 0
    assert bench.parse_args(["--scores", "r"]).zero_shot_rules == ["az", "rank_sum"]
    a = bench.parse_args(["--scores", "r", "--zero-shot-rules", "az,vkdnw:default", "--swap-reg", "50,1e3"])
    assert a.zero_shot_rules == ["az", "vkdnw:default"] and a.swap_reg == {"mu": 50.0, "sigma": 1000.0}
    with pytest.raises(SystemExit):
        bench.parse_args(["--scores", "r", "--zero-shot-rules", "vkdnw:mine"])


def test_swap_reg_zero_shot_row_takes_its_options(bench):
    from raynas.search import CandidatePool

    o = FakeOracle([1, 2, 3], [50.0, 70.0, 60.0], costs=[10.0, 20.0, 30.0], finals=[90.0, 94.5, 93.0])
    pool = CandidatePool.from_table({"arch_index": np.array([1, 2, 3]), "swap": np.array([100.0, 90.0, 80.0]),
                                     "params": np.array([9000.0, 2000.0, 5000.0])}, ["swap", "params"])
    row, result = bench.zero_shot_row(pool, o, "swap_reg", [True, True], 2, 94.3, 94.5, 94.5,
                                      {"mu": 2.0, "sigma": 1.0})
    assert result["arch_index"] == 2 and row["method"] == "zero-shot (swap_reg)"  # params 2 K: the factor's centre
    _, result = bench.zero_shot_row(pool, o, "swap_reg", [True, True], 2, 94.3, 94.5, 94.5, {"mu": 9.0, "sigma": 1.0})
    assert result["arch_index"] == 1
