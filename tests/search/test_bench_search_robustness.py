"""scripts/bench_search_robustness.py: argument parsing, pools, the authors' loops' pure steps and the summaries."""

from __future__ import annotations

import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from raynas.testing import FakeOracle
from raynas_tests.scripts import load_script


@pytest.fixture(scope="module")
def bench():
    yield load_script("bench_search_robustness")
    sys.modules.pop("bench_search_robustness", None)


def test_defaults_and_settings(bench):
    a = bench.parse_args([])
    assert a.budget == 20 and a.seeds == list(range(10, 20)) and a.subpools == 6 and a.subpool_sizes == (200, 725)
    assert a.zero_shot_rules == ["az", "rank_sum"] and not a.no_authors
    assert [s.name for s in a.robot_settings] == bench.DEFAULT_ROBOT_SETTINGS.split(",")
    s = bench.RobotSetting.parse("signed_log/matern_iso/logei/1")
    assert (s.transform, s.kernel, s.acquisition, s.n_init, s.tie_break) == ("signed_log", "matern_iso", "logei", 1,
                                                                            "earliest")
    late = bench.RobotSetting.parse("none/rbf_ard/ucb/3/latest")
    assert late.tie_break == "latest" and late.name == "none/rbf_ard/ucb/3/latest"
    assert bench.RobotSetting.parse("none/rbf_ard/ucb/3/earliest").name == "none/rbf_ard/ucb/3"
    h = bench.HnasSetting.parse("logei/median/1/5")
    assert (h.acquisition, h.scale, h.exclude_queried, h.n_init) == ("logei", "median", True, 5)
    a = bench.parse_args(["--robot-settings", "none/rbf_ard/ucb/3", "--subpool-sizes", "50-60", "--seeds", "1,2"])
    assert len(a.robot_settings) == 1 and a.subpool_sizes == (50, 60) and a.seeds == [1, 2]


@pytest.mark.parametrize("argv", [["--robot-settings", "none/rbf/ucb/3"], ["--robot-settings", "none/rbf_ard/ucb"],
                                  ["--robot-settings", "none/rbf_ard/ucb/3/first"],
                                  ["--hnas-settings", "ucb/max/2/3"], ["--subpool-sizes", "9-3"],
                                  ["--subpools", "-1"], ["--subpool-first", "-1"]])
def test_rejected(bench, argv):
    with pytest.raises(SystemExit):
        bench.parse_args(argv)


def test_library_setting_is_the_search_default(bench):
    from raynas.search.robot import RoBoTConfig
    from raynas.search.runner import RobotSearchConfig

    s = bench.library_robot_setting()
    assert s.n_init == RoBoTConfig().n_init and s.kernel == RobotSearchConfig("-", "-").kernel
    assert s.tie_break == RoBoTConfig().tie_break == RobotSearchConfig("-", "-").tie_break
    assert bench.library_hnas_setting().scale == "max"


def test_subpools_are_seeded_unique_and_in_range(bench):
    sizes = bench.subpool_sizes(5, 200, 725, 725)
    assert sizes == bench.subpool_sizes(5, 200, 725, 725) and all(200 <= n <= 725 for n in sizes)
    assert len(set(sizes)) > 1
    assert bench.subpool_sizes(3, 200, 725, 150) == [150, 150, 150]  # capped at the table
    assert bench.subpool_sizes(2, 200, 725, 725, first=3) == sizes[3:5]  # a later pass continues the seeds
    t = {"arch_index": np.arange(100, 400), "m": np.arange(300, dtype=float)}
    a, b = bench.subpool(t, 120, 0), bench.subpool(t, 120, 1)
    assert len(set(a["arch_index"])) == 120 and np.all(np.diff(a["arch_index"]) > 0)
    assert np.array_equal(a["m"] + 100, a["arch_index"])  # rows stay together
    assert np.array_equal(a["arch_index"], bench.subpool(t, 120, 0)["arch_index"])
    assert not np.array_equal(a["arch_index"], b["arch_index"])
    with pytest.raises(ValueError):
        bench.subpool(t, 301, 0)


def test_nbsz_table_uses_raynas_names(bench, tmp_path):
    p = tmp_path / "nb.parquet"
    pq.write_table(pa.table({"arch_index": pa.array([5, 3], pa.int32()), "naslib_key": ["a", "b"],
                             "arch_str": ["x", "y"], "jacov": [1.0, 2.0], "jacov_seconds": [0.1, 0.2],
                             "nwot": [3.0, None], "synflow": [4.0, 5.0], "val_accuracy": [90.0, 91.0]}), p)
    t = bench.read_nbsz_table(p)
    assert sorted(t) == ["arch_index", "jacob_cov", "naswot", "synflow"]
    assert t["arch_index"].tolist() == [5, 3] and np.isnan(t["naswot"][1]) and t["jacob_cov"].tolist() == [1.0, 2.0]


def test_attainable_is_the_top_query_archs_final(bench):
    o = FakeOracle([1, 2, 3], [50.0, 70.0, 70.0], finals=[95.0, 93.0, 94.0])
    assert bench.attainable([3, 1, 2], o) == (2, 93.0, 95.0)  # equal query values: the smaller index


def test_authors_top_normalize_and_exploit(bench):
    raw = np.array([[1.0, 10.0], [3.0, np.nan], [3.0, 10.0], [0.0, 10.0]])
    norm = bench.authors_normalize(raw)
    assert norm[:, 0].tolist() == [1 / 3, 1.0, 1.0, 0.0]
    assert np.isnan(norm[1, 1]) and norm[[0, 2, 3], 1].tolist() == [10.0, 10.0, 10.0]  # constant: as is
    # equal scores of positions 1 and 2: the script takes the last of the ascending argsort
    assert bench.authors_top(norm, [1.0, 0.0]) == 2
    assert bench.authors_top(norm, [0.0, 1.0]) == 3  # NaN adds 0; 0, 2, 3 tie at 10 -> the last
    assert bench.authors_exploit(norm, np.array([1.0, 0.0]), [3], 3) == [3, 2, 1]
    assert bench.authors_exploit(norm, np.array([1.0, 0.0]), [3, 0, 1, 2], 3) == [3, 0, 1, 2]


def test_hnas_paper_score_and_candidates(bench):
    F = bench.hnas_paper_score(np.array([2.0, 4.0]), np.array([1.0, 8.0]), 0.5, -1.0, 4.0)
    assert F.tolist() == pytest.approx([0.1 * 0.0 + 1 / (2 + 1e-6), 0.1 * 12.0 + 8 / (4 + 1e-6)])
    rng = np.random.RandomState(0)
    draw = np.random.RandomState(0).choice(10, 30).tolist()
    c = bench.grow_candidates([7], rng, 10, 30, queried=[draw[0]])
    assert c[0] == 7 and len(c) == len(set(c)) and draw[0] not in c
    assert set(c) == (set(draw) | {7}) - {draw[0]}


def test_summarize_and_overall(bench):
    runs = [{"final": 94.0, "t0": 5, "wall": 1.0, "bo_steps": [0.1, 0.3]},
            {"final": 93.0, "t0": 7, "wall": 3.0, "bo_steps": [0.2]}]
    s = bench.summarize("m", runs, 94.0)
    assert s["hit"] == 0.5 and s["regret"] == pytest.approx(0.5) and s["t0"] == 6.0 and s["wall"] == 2.0
    assert s["step_ms"] == pytest.approx(200.0) and s["last_step_ms"] == pytest.approx(250.0)
    z = bench.summarize("z", [{"final": 94.0}] * 2, 94.0)
    assert z["hit"] == 1.0 and z["t0"] is None and z["step_ms"] is None
    pool = bench.Pool("p", "real", {"arch_index": np.arange(3)}, ("a",))
    ref = dict(s, method="ref", regret=0.2)
    text = bench.overall([(pool, {}, [s, ref, z])], "ref")
    row = next(line for line in text.splitlines() if line.startswith("| m |"))
    assert "| 0.50 | 0.50 | 1 |" in row and row.endswith("1 of 1 |")
    assert next(line for line in text.splitlines() if line.startswith("| z |")).endswith("0 of 1 |")
    assert "| p | real | 3 | m | 0.50 |" in bench.format_table([(pool, {}, [s])])


def test_timed_run_times_the_bo_steps(bench):
    from raynas.search import CandidatePool, RoBoT

    rng = np.random.default_rng(0)
    idx = np.arange(30)
    pool = CandidatePool.from_table({"arch_index": idx, "a": rng.normal(size=30), "b": rng.normal(size=30)},
                                    ["a", "b"])
    o = FakeOracle(idx, rng.normal(size=30))
    search = RoBoT(pool, o, budget=5, bo_iters=4, n_init=3, seed=0)
    r = bench.timed_run(search)
    assert len(r["bo_steps"]) == sum(row["kind"] == "bo" for row in search.trace) == 4
    assert all(s >= 0 for s in r["bo_steps"]) and r["wall"] >= sum(r["bo_steps"])


def test_authors_loop_runs_on_bayes_opt(bench):
    pytest.importorskip("bayes_opt")
    rng = np.random.default_rng(1)
    idx = np.arange(40)
    t = {"arch_index": idx, "a": rng.normal(size=40), "b": rng.normal(size=40)}
    o = FakeOracle(idx, rng.normal(size=40))
    r = bench.authors_robot(t, ("a", "b"), o, 6, seed=3)
    assert len(r["queried"]) == 6 == len(set(r["queried"])) and 1 <= r["t0"] <= 6
    assert r["final"] == max(o.values[a] for a in r["queried"]) == o.values[r["arch_index"]]
    assert r == {**bench.authors_robot(t, ("a", "b"), o, 6, seed=3), "wall": r["wall"], "bo_steps": r["bo_steps"]}
    h = bench.hnas_paper({"arch_index": idx, "ntk_trace": rng.uniform(1, 5, 40), "ntk_cond": rng.uniform(1, 9, 40)},
                         "ntk_trace", o, 7, seed=0)
    assert len(h["queried"]) == 7 == len(set(h["queried"]))


def test_a_better_answer_than_the_attainable_one_is_a_hit(bench):
    s = bench.summarize("m", [{"final": 94.4}, {"final": 94.0}, {"final": 93.0}], 94.0)
    assert s["hit"] == pytest.approx(2 / 3) and s["regret"] == pytest.approx((-0.4 + 0 + 1.0) / 3)


def test_merge_recomputes_the_rows_from_the_runs(bench, tmp_path):
    a = {"robot": [{"pool": "p", "source": "real", "size": 3, "metrics": ["a"], "attainable": 94.0,
                    "runs": {"m": [{"final": 94.0}, {"final": 93.0}]}}], "hnas": []}
    b = {"robot": [{"pool": "p", "source": "real", "size": 3, "metrics": ["a"], "attainable": 94.0,
                    "runs": {"authors (bayes_opt)": [{"final": 94.0}, {"final": 94.0}]}}],
         "hnas": [{"pool": "h", "source": "digits", "size": 5, "attainable": 90.0,
                   "runs": {"HNAS x": [{"final": 91.0}]}}]}
    (tmp_path / "a.json").write_text(bench.json.dumps(a))
    (tmp_path / "b.json").write_text(bench.json.dumps(b))
    text = bench.merge([tmp_path / "a.json", tmp_path / "b.json"])
    assert "| p | real | 3 | m | 0.50 | 0.500 |" in text and "| p | real | 3 | authors (bayes_opt) | 1.00 |" in text
    assert "| m | 1 | 0.50 | 0.50 | 1 | 0.500 | 1 of 1 |" in text
    assert "## HNAS" in text and "| h | digits | 5 | HNAS x | 1.00 | -1.000 |" in text


def test_pool_names(bench):
    assert bench.pool_name("d1000=/tmp/a:/tmp/b@x,y") == ("d1000", "/tmp/a:/tmp/b@x,y")
    assert bench.pool_name("/tmp/runs/a:/tmp/b") == ("digits:a", "/tmp/runs/a:/tmp/b")


def test_real_pools_and_only_pools(bench, nb201_table_path):
    nbsz = nb201_table_path.parents[1] / "nbsz" / "nb201_cifar10.parquet"
    if not nbsz.exists():
        pytest.skip(f"NB-Suite-Zero table not found at {nbsz}")
    from raynas.search import BenchmarkTableOracle

    oracle = BenchmarkTableOracle("nb201", nb201_table_path)
    pools = bench.robot_pools(bench.parse_args(["--subpools", "2", "--nbsz", str(nbsz)]), oracle)
    assert [(p.name, p.source, len(p)) for p in pools] == [("nbsz", "real", 725), ("nbsz/sub0", "real", 647),
                                                           ("nbsz/sub1", "real", 448)]
    assert pools[0].metrics == bench.ROBOT_METRICS and all(m in pools[0].table for m in bench.ROBOT_METRICS)
    only = bench.robot_pools(bench.parse_args(["--subpools", "2", "--nbsz", str(nbsz), "--only-pools",
                                               "nbsz/sub1"]), oracle)
    assert [p.name for p in only] == ["nbsz/sub1"]
    with pytest.raises(SystemExit, match="no pool named"):
        bench.robot_pools(bench.parse_args(["--subpools", "0", "--nbsz", str(nbsz), "--only-pools", "x"]), oracle)
