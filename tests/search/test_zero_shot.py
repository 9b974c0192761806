"""Zero-shot search: the rules (AZ-NAS's, rank sum, Revisit's), orientation and failed scores, the search dir and
result, the CLI and the registry."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import rankdata

from raynas.cli.main import main
from raynas.errors import ConfigError, SearchError, UnknownNameError
from raynas.search.pool import CandidatePool
from raynas.search.registry import get_search
from raynas.search.zero_shot import (AZ_METRICS, RULES, ZeroShotConfig, ordinal_ranks, oriented_scores, rank_pool,
                                     run_zero_shot_search)
from raynas.testing.runs import planned_score_run

IDS = list(range(10, 22))


def _values(a: int) -> dict[str, float]:
    rng = np.random.default_rng(a)
    v = {m: float(rng.normal()) for m in AZ_METRICS}
    v["params"] = float(a)
    return v


@pytest.fixture
def scores(tmp_path):
    return planned_score_run(tmp_path / "run", IDS, _values)


def _pool(cols: dict[str, list[float]]) -> CandidatePool:
    n = len(next(iter(cols.values())))
    return CandidatePool.from_table({"arch_index": np.arange(n), **{k: np.array(v) for k, v in cols.items()}},
                                    list(cols))


def test_az_rule_is_the_sum_of_log_relative_ranks():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 4))
    x[3, 1] = x[4, 1]  # a tie: average ranks
    pool = _pool({f"m{k}": list(x[:, k]) for k in range(4)})
    agg, order = rank_pool(pool, "az", [True] * 4)
    expected = sum(np.log(rankdata(x[:, k]) / 30) for k in range(4))
    np.testing.assert_allclose(agg, expected, rtol=1e-12)
    assert order[0] == int(np.argmax(expected))


def test_rank_sum_and_direction():
    pool = _pool({"a": [1.0, 2.0, 3.0], "b": [3.0, 2.0, 1.0]})
    agg, _ = rank_pool(pool, "rank_sum", [True, True])
    assert agg.tolist() == [4.0, 4.0, 4.0]
    agg, order = rank_pool(pool, "rank_sum", [True, False])  # b lower-is-better: both prefer the last arch
    assert agg.tolist() == [2.0, 4.0, 6.0] and order.tolist() == [2, 1, 0]


def test_revisit_rule_is_the_files_nested_ordinal_sum():
    rng = np.random.default_rng(1)
    angle, loss, params = rng.normal(size=20), rng.normal(size=20), rng.normal(size=20)
    pool = _pool({"lwt_angle": list(angle), "lwt_loss": list(loss), "params": list(params)})
    # evaluate_anglefc.py: rank_ens = ord(params) + ord(ord(angle) + ord(-loss)) (its loss score is negated)
    o = lambda v: np.argsort(np.argsort(v, kind="stable"), kind="stable")  # noqa: E731
    expected = o(params) + o(o(angle) + o(-loss))
    agg, order = rank_pool(pool, "revisit", [True, False, True])
    assert agg.tolist() == expected.astype(float).tolist() and order[0] == int(np.argmax(expected))
    assert ordinal_ranks(np.array([2.0, 1.0, 2.0])).tolist() == [1, 0, 2]  # ties in position order


def test_failed_scores_rank_below_every_finite_one():
    pool = _pool({"a": [np.nan, 1.0, 0.0], "b": [5.0, 1.0, 0.0]})
    assert oriented_scores(pool, [True, True])[0, 0] == -np.inf
    _, order = rank_pool(pool, "az", [True, True])
    assert order[0] == 1  # arch 0's failed term ranks it last on a, as AZ-NAS's -inf does


def test_unknown_rule_and_bad_config():
    with pytest.raises(UnknownNameError, match="zero-shot rule"):
        ZeroShotConfig("s", "o", rule="azz")
    with pytest.raises(ConfigError, match="top"):
        ZeroShotConfig("s", "o", top=0)
    assert ZeroShotConfig("s", "o", metrics=" a, b ,").metrics == ("a", "b")
    assert ZeroShotConfig("s", "o").resolved_metrics() == AZ_METRICS
    assert RULES.names() == ["az", "rank_sum", "revisit"]


def test_search_writes_its_dir_and_answers_the_top_arch(tmp_path, scores):
    out = tmp_path / "zs"
    r = run_zero_shot_search({"scores": str(scores), "out": str(out), "top": 3})
    x = np.array([[_values(a)[m] for m in AZ_METRICS] for a in IDS])
    expected = sum(np.log(rankdata(x[:, k]) / len(IDS)) for k in range(4))
    assert r["arch_index"] == IDS[int(np.argmax(expected))] and r["arch"] == f"arch{r['arch_index']}"
    assert r["score"] == pytest.approx(expected.max()) and r["queries"] == 0
    assert [e["rank"] for e in r["ranking"]] == [1, 2, 3] and r["ranking"][0]["arch_index"] == r["arch_index"]
    assert r["pool"]["size"] == len(IDS) and r["pool"]["complete"] and r["space"] == "nb201"
    assert r["metrics"] == list(AZ_METRICS) and r["higher_is_better"] == [True] * 4
    assert json.loads((out / "result.json").read_text())["arch_index"] == r["arch_index"]
    assert json.loads((out / "search.json").read_text())["rule"] == "az"
    with pytest.raises(Exception, match="already holds a search"):
        run_zero_shot_search({"scores": str(scores), "out": str(out)})
    again = run_zero_shot_search({"scores": str(scores), "out": str(out), "top": 3, "resume": True})
    assert again["arch_index"] == r["arch_index"]


def test_params_rank_sum_picks_the_largest_and_missing_metric_is_refused(tmp_path, scores):
    r = run_zero_shot_search(ZeroShotConfig(str(scores), str(tmp_path / "p"), rule="rank_sum", metrics="params"))
    assert r["arch_index"] == max(IDS)
    with pytest.raises(SearchError, match="lack metric"):
        run_zero_shot_search(ZeroShotConfig(str(scores), str(tmp_path / "q"), rule="revisit"))


def test_registry_and_cli(tmp_path, scores, capsys):
    entry = get_search("zero-shot")
    assert entry.config_class() is ZeroShotConfig and entry.run_function() is run_zero_shot_search
    out = tmp_path / "cli"
    assert main(["search", "zero-shot", "--scores", str(scores), "--out", str(out), "--rule", "rank_sum",
                 "--metrics", "params,az_nas_trainability", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert '"rule": "rank_sum"' in printed and "pool: 12 archs searched" in printed
    assert main(["search", "zero-shot", "--scores", str(scores), "--out", str(tmp_path / "x"), "--rule", "nope",
                 "--no-progress"]) == 2
