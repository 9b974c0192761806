"""The registry of searches: the names the CLI and :func:`raynas.api.search` accept, typed configs built once at
the edge, lookups resolved at call time, and a registry cheap enough that ``raynas --help`` imports no BoTorch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import raynas.api
import raynas.pruning.run as tenas_run
import raynas.search.hnas_run as hnas_run
import raynas.search.linucb_run as linucb_run
import raynas.search.runner as runner
from raynas.cli.main import main
from raynas.errors import ConfigError, UnknownNameError
from raynas.search.registry import SEARCHES, SearchEntry, get_search

REPO = Path(__file__).resolve().parents[2]


def test_names_and_entries():
    assert SEARCHES.names() == ["hnas", "linucb", "random", "robot", "robot-reference", "tenas", "zero-shot"]
    for name, cls, run in (("robot", runner.RobotSearchConfig, runner.run_robot_search),
                           ("linucb", linucb_run.LinUCBSearchConfig, linucb_run.run_linucb_search),
                           ("hnas", hnas_run.HNASSearchConfig, hnas_run.run_hnas_search),
                           ("tenas", tenas_run.TenasConfig, tenas_run.run_tenas_search)):
        entry = get_search(name)
        assert isinstance(entry, SearchEntry) and entry.doc
        assert entry.config_class() is cls and entry.run_function() is run


def test_unknown_name_lists_close_matches():
    with pytest.raises(UnknownNameError, match="did you mean 'robot'") as e:
        get_search("robto")
    assert e.value.known == ["hnas", "linucb", "random", "robot", "robot-reference", "tenas", "zero-shot"]
    with pytest.raises(UnknownNameError, match="search method"):
        raynas.api.search("bogus", "out")


def test_make_config_is_strict_and_normalises_metrics():
    entry = get_search("robot")
    c = entry.make_config({"scores": "s", "out": "o", "metrics": " snip, synflow ,"})
    assert isinstance(c, runner.RobotSearchConfig) and c.metrics == ("snip", "synflow")
    assert entry.make_config(c) is c
    assert entry.make_config({"scores": "s", "out": "o", "metrics": ["snip"]}).metrics == ("snip",)
    assert runner.RobotSearchConfig("s", "o").metrics == runner.ROBOT_METRICS
    with pytest.raises(ConfigError, match="unknown config key"):
        entry.make_config({"scores": "s", "out": "o", "metrix": "snip"})
    with pytest.raises(ConfigError, match="at least one metric"):
        entry.make_config({"scores": "s", "out": "o", "metrics": " , "})
    with pytest.raises(UnknownNameError, match="HNAS measure"):
        get_search("hnas").make_config({"scores": "s", "out": "o", "metric": "grad_nrom"})


def test_searched_metrics_leaves_out_params_only():
    assert runner.searched_metrics(("snip", "params", "naswot")) == ("snip", "naswot")
    assert runner.searched_metrics(()) == ()


def _fake(seen):  # type: ignore[no-untyped-def]
    def run(cfg, progress_callback=None):  # type: ignore[no-untyped-def]
        seen.append(cfg)
        if progress_callback is not None:
            progress_callback(1, 1)
        return {"method": "robot", "arch_index": 3, "budget": 2, "budget_requested": 2, "bo_iters": 2,
                "benchmark": {"line": "NB201 index 3: fake"},
                "trace": [{"step": 0, "kind": "bo", "arch_index": 3, "value": 50.0, "cumulative_cost": 1.0,
                           "weights": [0.5, -0.25]}]}

    return run


def test_api_search_hands_the_run_function_a_typed_config(monkeypatch):
    seen: list = []
    monkeypatch.setattr(runner, "run_robot_search", _fake(seen))  # looked up when called, not when registered
    progress: list = []
    r = raynas.api.search("robot", "out", scores=["a", "b"], budget=2, metrics=["snip", "synflow"],
                          progress=lambda *a: progress.append(a))
    assert r["arch_index"] == 3 and progress == [(1, 1)]
    (c,) = seen
    assert isinstance(c, runner.RobotSearchConfig)
    assert (c.metrics, c.budget, c.out, c.scores.split(":")) == (("snip", "synflow"), 2, "out", ["a", "b"])


def test_cli_looks_the_method_up_in_the_registry(monkeypatch, capsys):
    seen: list = []
    monkeypatch.setattr(runner, "run_robot_search", _fake(seen))
    assert main(["search", "robot", "--scores", "s", "--out", "o", "--metrics", "snip,synflow", "--budget", "2",
                 "--no-progress"]) == 0
    (c,) = seen
    assert isinstance(c, runner.RobotSearchConfig) and c.metrics == ("snip", "synflow")
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["step", "kind", "arch", "value", "cum.", "cost", "weights"]
    assert out[1].split() == ["0", "bo", "3", "50.000", "1.0", "+0.50", "-0.25"]
    assert out[-2:] == ["budget: 2 distinct queries, BO iterations at most 2", "NB201 index 3: fake"]
    assert json.loads("\n".join(out[2:-2]))["arch_index"] == 3  # the trace is printed as a table, not as JSON


def test_cli_refuses_unknown_keys_before_running(monkeypatch, capsys):
    seen: list = []
    monkeypatch.setattr(runner, "run_robot_search", _fake(seen))
    assert main(["search", "robot", "--scores", "s", "--out", "o", "--metrics", ",", "--no-progress"]) == 2
    assert seen == [] and "at least one metric" in capsys.readouterr().err


def test_help_and_the_registry_import_no_botorch():
    code = ("import sys\n"
            "import raynas.search.registry as r\n"
            "assert r.SEARCHES.names()\n"
            "from raynas.cli.main import main\n"
            "try:\n"
            "    main(['--help'])\n"
            "except SystemExit:\n"
            "    pass\n"
            "heavy = sorted(m for m in ('botorch', 'gpytorch', 'torch') if m in sys.modules)\n"
            "print('HEAVY', heavy, file=sys.stderr)\n")
    p = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert "HEAVY []" in p.stderr
