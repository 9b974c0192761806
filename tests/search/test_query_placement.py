"""Where a search's queries run: the config keys (checked, volatile on resume), the CLI options, the pipeline's
cluster mode, and the cluster entry point's ``pipeline`` form."""

from __future__ import annotations

import argparse
from pathlib import Path

import pyarrow as pa
import pytest

from raynas.errors import ConfigError
from raynas.search.hnas_run import HNASSearchConfig
from raynas.search.runner import QueryPlacement, RobotSearchConfig
from raynas_tests.scripts import load_script

REPO = Path(__file__).resolve().parents[2]


def test_config_checks_q_and_placement():
    c = RobotSearchConfig(scores="s", out="o", q=4, query_backend="ray", gpus_per_query=0.5)
    assert QueryPlacement.of(c) == QueryPlacement("ray", None, 0.5, 1.0, 2)
    assert HNASSearchConfig(scores="s", out="o", q=3).search_kwargs()["q"] == 3
    for bad in ({"q": 0}, {"query_backend": "slurm"}, {"gpus_per_query": -1.0}, {"q": 2.5}):
        with pytest.raises(ConfigError):
            RobotSearchConfig(scores="s", out="o", **bad)
        with pytest.raises(ConfigError):
            HNASSearchConfig(scores="s", out="o", **bad)


def test_resume_may_move_the_queries_but_not_change_q(tmp_path, monkeypatch):
    import raynas.search.runner as runner
    import raynas.search.session as session
    from raynas.errors import StoreError
    from raynas.search.pool import CandidatePool
    from raynas.testing import FakeOracle, synthetic_pool_table

    table, acc = synthetic_pool_table(40, 0)
    wide = pa.table({**table, "arch": [f"a{i}" for i in table["arch_index"]]})
    monkeypatch.setattr(session, "load_checked_pool",
                        lambda s, m, t="none", *, allow_incomplete=False, optional=():
                        runner.LoadedPool(CandidatePool.from_table(wide, m, t), wide, {"space": "toy"}, ()))
    monkeypatch.setattr(session, "make_oracle", lambda *a, **k: FakeOracle(table["arch_index"], acc))
    base = {"scores": "s", "out": str(tmp_path / "s"), "metrics": "good,bad", "budget": 5, "q": 2}
    first = runner.run_robot_search(base)
    assert first["q"] == 2 and first["queries"] == 5
    # the table oracle answers in this process whatever the backend: a resume may name another placement
    again = runner.run_robot_search({**base, "resume": True, "query_backend": "ray", "address": "auto",
                                     "gpus_per_query": 1.0})
    assert again["trace"] == first["trace"]
    with pytest.raises(StoreError, match=r"config differs in \['q'\]"):
        runner.run_robot_search({**base, "resume": True, "q": 3})


def test_cli_options_reach_the_config():
    from raynas.cli import search_cmd

    parser = argparse.ArgumentParser()
    search_cmd.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["search", "robot", "--scores", "s", "--out", "o", "--oracle", "train", "--q", "4",
                              "--query-backend", "ray", "--address", "auto", "--gpus-per-query", "1",
                              "--query-retries", "3"])
    cfg = search_cmd._config("robot", args)
    assert (cfg["q"], cfg["query_backend"], cfg["address"], cfg["gpus_per_query"], cfg["query_retries"]) == \
        (4, "ray", "auto", 1.0, 3)
    RobotSearchConfig(**cfg)  # every key is one of the config's
    args = parser.parse_args(["search", "pipeline", "--out", "r", "--address", "auto", "--set", "search.q=2"])
    assert search_cmd._config("pipeline", args)["overrides"] == {"search": {"q": 2}, "scoring": {"address": "auto"}}


def test_pipeline_puts_queries_on_the_cluster_it_scores_on(tmp_path):
    from raynas.pipeline import hnas_config, query_placement, resolve_config, robot_config

    local = resolve_config(None, {"search": {"q": 2}})
    assert query_placement(local)["query_backend"] == "local"
    pc = resolve_config(None, {"scoring": {"address": "auto"}, "search": {"q": 4, "gpus_per_query": 1}})
    rc, hc = robot_config(pc, tmp_path, ("synflow", "params")), hnas_config(pc, tmp_path)
    for c in (rc, hc):
        assert (c.q, c.query_backend, c.address, c.gpus_per_query) == (4, "ray", "auto", 1.0)
    forced = resolve_config(None, {"scoring": {"address": "auto"}, "search": {"query_backend": "local"}})
    assert robot_config(forced, tmp_path, ("synflow",)).query_backend == "local"


def test_submit_script_pipeline_form_attaches_to_the_cluster():
    mod = load_script("ray_submit_search")
    got = mod.parse_pipeline(["--out", "r", "--set", "search.q=4"])
    assert got == {"config": None, "overrides": {"search": {"q": 4}, "scoring": {"address": "auto"}}, "out": "r"}
    assert mod.parse_pipeline(["--out", "r", "--address", "10.0.0.1:6379"])["overrides"]["scoring"]["address"] == \
        "10.0.0.1:6379"
