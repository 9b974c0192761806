"""scripts/bench_correlation.py: joined runs and the zero-shot rule rows computed from the stored columns."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from raynas.search.pool import CandidatePool
from raynas.search.zero_shot import AZ_METRICS, VKDNW_METRICS, rank_pool
from raynas.testing.runs import planned_score_run
from raynas_tests.scripts import load_script

IDS = list(range(30, 50))
FIRST = ("params", "swap", *AZ_METRICS)


@pytest.fixture(scope="module")
def bench():
    return load_script("bench_correlation")


def _value(a: int, m: str) -> float:
    return float(np.random.default_rng([a, sum(map(ord, m))]).normal())


@pytest.fixture
def runs(tmp_path):
    first = planned_score_run(tmp_path / "c", IDS, lambda a: {m: _value(a, m) for m in FIRST},
                              status=lambda a: {"az_nas_trainability": "nan"} if a == 33 else {})
    # the second run scores vkdnw, its last shard (the last two archs) not yet written: a run still going
    second = planned_score_run(tmp_path / "v", IDS, lambda a: {"vkdnw": _value(a, "vkdnw")})
    (last,) = sorted((second / "scores").glob("*.parquet"))[-1:]
    last.unlink()
    return first, second


def test_joined_runs_and_rule_columns_equal_the_zero_shot_ranking(bench, runs):
    wide, secs, scored = bench.read_runs(list(runs))
    assert wide["arch_index"].tolist() == IDS and {"vkdnw", *FIRST} <= set(wide.columns)
    assert scored["vkdnw"].tolist() == [True] * (len(IDS) - 2) + [False] * 2
    assert np.isnan(wide.loc[3, "az_nas_trainability"]) and scored.loc[3, "az_nas_trainability"]
    assert secs["vkdnw"] == 0.5
    cols = bench.rule_columns(wide, scored, ["az", "vkdnw", "revisit", "swap_reg"],
                              {"swap_reg": {"mu": 0.0, "sigma": 1.0}})
    assert set(cols) == {"rule:az", "rule:vkdnw", "rule:swap_reg"}  # revisit: lwt_* not stored, no row
    # az over all 20 archs, the failed term ranked last: what the zero-shot search answers on the first run
    pool = CandidatePool.from_table({"arch_index": np.array(IDS), **{m: wide[m].to_numpy() for m in AZ_METRICS}},
                                    list(AZ_METRICS))
    agg, _ = rank_pool(pool, "az", [True] * 4)
    np.testing.assert_array_equal(cols["rule:az"], agg)
    # vkdnw: ranked over the 18 archs that have all five terms, none for the last two
    vk = cols["rule:vkdnw"]
    assert np.isnan(vk[-2:]).all() and np.isfinite(vk[:-2]).all()
    sub = CandidatePool.from_table({"arch_index": np.array(IDS[:-2]),
                                    **{m: wide[m].to_numpy()[:-2] for m in VKDNW_METRICS}}, list(VKDNW_METRICS))
    np.testing.assert_array_equal(vk[:-2], rank_pool(sub, "vkdnw", [True] * 5)[0])


def test_join_refuses_another_sample(bench, runs, tmp_path):
    other = planned_score_run(tmp_path / "o", IDS[:5], lambda a: {"vkdnw": 1.0})  # another plan
    with pytest.raises(SystemExit, match="not a run of the same sample"):
        bench.read_runs([runs[0], other])


def test_main_prints_the_rule_rows(bench, runs, monkeypatch, capsys, nb201_table_path):
    import pandas as pd

    truth = pd.read_parquet(nb201_table_path, columns=["arch_index", "arch_str"]).set_index("arch_index")["arch_str"]
    read = bench.read_runs

    def with_real_archs(outs):  # the planned runs name their archs "arch<i>": the table's strings instead
        wide, secs, scored = read(outs)
        return wide.assign(arch=wide["arch_index"].map(truth)), secs, scored

    monkeypatch.setattr(bench, "read_runs", with_real_archs)
    monkeypatch.setattr(sys, "argv", ["bench_correlation.py", "--out", str(runs[0]), "--join", str(runs[1]),
                                      "--score-only-existing", "--metrics", "params,swap", "--swap-reg", "0,1"])
    assert bench.main() == 0
    out = capsys.readouterr().out
    rows = {line.split("|")[1].strip(): line for line in out.splitlines() if line.startswith("| ")}
    assert {"params", "swap", "rule:az", "rule:rank_sum", "rule:vkdnw", "rule:swap_reg"} <= set(rows)
    assert "rule:revisit" not in rows
    assert rows["rule:vkdnw"].split("|")[2].strip() == str(len(IDS) - 2)  # n: the archs with all five terms
    assert rows["rule:az"].split("|")[-3].strip() == "2.000"  # s/arch: four terms of 0.5 s
