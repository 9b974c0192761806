"""Zero-shot search: the rules (AZ-NAS's, rank sum, Revisit's), orientation and failed scores, the search dir and
result, the CLI and the registry."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import rankdata

from raynas.cli.main import main
from raynas.errors import ConfigError, SearchError, UnknownNameError
from raynas.search.pool import CandidatePool
from raynas.search.registry import get_search
from raynas.search.zero_shot import (
    AZ_METRICS,
    RULES,
    SWAP_REG_METRICS,
    VKDNW_METRICS,
    ZeroShotConfig,
    ordinal_ranks,
    oriented_scores,
    rank_pool,
    rule_aggregate,
    run_zero_shot_search,
    swap_regular_factor,
)
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
    assert RULES.names() == ["az", "rank_sum", "revisit", "swap_reg", "vkdnw"]


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


#: VKDNW's population ranking run by its own code on a synthetic pool (scripts/make_parity_proxies_b.py --rule-out)
VKDNW_REFERENCE = json.loads((Path(__file__).parent / "data" / "zero_shot_vkdnw.json").read_text())


def _vkdnw_pool() -> tuple[CandidatePool, np.ndarray]:
    cols = {m: [np.nan if v is None else v for v in VKDNW_REFERENCE["pool"][m]] for m in VKDNW_METRICS}
    return _pool(cols), np.array(VKDNW_REFERENCE["aggregate"])


def test_vkdnw_rule_equals_the_authors_ranking_loop():
    assert [m for _, m in VKDNW_REFERENCE["terms"]] == list(VKDNW_METRICS)  # their order of the five terms
    pool, expected = _vkdnw_pool()
    assert np.isnan(pool.raw).any() and len(np.unique(pool.raw[:, 0])) < len(pool)  # failed terms and ties
    agg, order = rank_pool(pool, "vkdnw", [True] * 5)
    # same ranks, same order of the float additions; numpy's log may differ by an ulp between SIMD kernels and
    # versions (the reference ran elsewhere), so five log terms agree to ~1e-15 relative: 1e-12 leaves room
    # for that and none for a different rank (log(r/P) steps by >= 1/P)
    np.testing.assert_allclose(agg, expected, rtol=1e-12, atol=0)
    assert order[0] == int(np.argmax(expected))
    assert RULES.get("vkdnw").default_metrics == VKDNW_METRICS


def test_swap_reg_rule_and_its_options():
    x = np.array([[100.0, 50_000.0], [80.0, 20_000.0], [-np.inf, 20_000.0], [90.0, -np.inf]])
    agg = rule_aggregate("swap_reg", x, {"mu": 20.0, "sigma": 100.0})
    assert agg[1] == 80.0 and agg[0] == pytest.approx(100.0 * np.exp(-9.0))  # Theta in thousands
    assert agg[2] == -np.inf and agg[3] == -np.inf
    assert swap_regular_factor(np.array([1500.0]), 1.5, 2.0)[0] == 1.0
    with pytest.raises(ConfigError, match="needs sigma"):
        rule_aggregate("swap_reg", x, {"mu": 1.0})
    with pytest.raises(ConfigError, match="positive"):
        rule_aggregate("swap_reg", x, {"mu": 1.0, "sigma": 0.0})
    with pytest.raises(ConfigError, match="takes no option mu"):
        rule_aggregate("az", x, {"mu": 1.0})
    with pytest.raises(ConfigError, match="2 metric columns"):
        rule_aggregate("swap_reg", x[:, :1], {"mu": 1.0, "sigma": 1.0})
    with pytest.raises(ConfigError, match="needs mu, sigma"):
        ZeroShotConfig("s", "o", rule="swap_reg")
    with pytest.raises(ConfigError, match="takes 2 metrics"):
        ZeroShotConfig("s", "o", rule="swap_reg", metrics="swap", mu=1.0, sigma=1.0)
    with pytest.raises(ConfigError, match="takes no option"):
        ZeroShotConfig("s", "o", rule="az", sigma=2.0)
    assert ZeroShotConfig("s", "o", rule="swap_reg", mu=1, sigma=2).resolved_metrics() == SWAP_REG_METRICS


def test_cli_zero_shot_vkdnw_and_swap_reg_end_to_end(tmp_path, capsys):
    pool, expected = _vkdnw_pool()
    ids = list(range(100, 100 + len(pool)))
    raw = {m: VKDNW_REFERENCE["pool"][m] for m in VKDNW_METRICS}

    def values(a: int) -> dict[str, float]:
        v = {m: 0.0 if raw[m][a - 100] is None else raw[m][a - 100] for m in VKDNW_METRICS}
        return {**v, "swap": float(1000 + 7 * (a % 5)), "params": float(1000 * (a - 90))}

    def status(a: int) -> dict[str, str]:  # the reference's -inf terms are failed rows
        return {m: "nan" for m in VKDNW_METRICS if raw[m][a - 100] is None}

    run = planned_score_run(tmp_path / "run", ids, values, status=status)
    out = tmp_path / "vk"
    assert main(["search", "zero-shot", "--scores", str(run), "--out", str(out), "--rule", "vkdnw", "--top", "3",
                 "--no-progress"]) == 0
    result = json.loads((out / "result.json").read_text())
    assert result["rule"] == "vkdnw" and result["metrics"] == list(VKDNW_METRICS)
    assert result["arch_index"] == ids[int(np.argmax(expected))] and result["score"] == pytest.approx(expected.max(), rel=1e-12)
    assert '"rule": "vkdnw"' in capsys.readouterr().out
    out = tmp_path / "sr"
    assert main(["search", "zero-shot", "--scores", str(run), "--out", str(out), "--rule", "swap_reg", "--mu", "25",
                 "--sigma", "2", "--no-progress"]) == 0
    result = json.loads((out / "result.json").read_text())
    swap = np.array([values(a)["swap"] for a in ids])
    theta = np.array([values(a)["params"] for a in ids]) / 1e3
    reg = swap * np.exp(-((theta - 25.0) ** 2) / 2.0)
    assert result["arch_index"] == ids[int(np.argmax(reg))] == 115  # params 25 K: the factor's centre
    assert result["options"] == {"mu": 25.0, "sigma": 2.0} and result["score"] == pytest.approx(reg.max())
    assert main(["search", "zero-shot", "--scores", str(run), "--out", str(tmp_path / "bad"), "--rule", "swap_reg",
                 "--no-progress"]) == 2  # no mu, sigma: a config error
