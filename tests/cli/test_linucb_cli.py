"""``raynas search linucb`` through the CLI and the query-search session: result, resume, refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest

from raynas.cli.main import main
from raynas.search.registry import SEARCHES
from raynas.testing import planned_score_run

IDS = list(range(0, 15625, 521))[:30]


@pytest.fixture()
def pool(tmp_path, nb201_table_path):  # noqa: ARG001 - the NB201 table answers the queries
    rng = np.random.default_rng(0)
    proxies = {a: {"synflow": float(rng.normal()), "snip": float(rng.normal())} for a in IDS}
    return planned_score_run(tmp_path / "pool", IDS, lambda a: proxies[a])


def test_linucb_answers_the_best_queried_arch_and_resumes(tmp_path, pool, capsys):
    out = tmp_path / "lin"
    argv = ["search", "linucb", "--scores", str(pool), "--metrics", "synflow,snip", "--budget", "6", "--out",
            str(out), "--no-progress"]
    assert main(argv) == 0
    result = json.loads((out / "result.json").read_text())
    assert result["method"] == "linucb" and result["queries"] == 6 and result["metrics"] == ["synflow", "snip"]
    kinds = [r["kind"] for r in result["trace"]]
    assert kinds == ["start", "start", "ucb", "ucb", "ucb", "ucb"]
    best = max(result["trace"], key=lambda r: (r["value"], -r["arch_index"]))
    assert result["arch_index"] == best["arch_index"] and result["benchmark"] is not None
    assert json.loads((out / "search.json").read_text())["ridge"] == 10.0  # the fixed defaults, recorded
    capsys.readouterr()
    assert main([*argv, "--resume"]) == 0  # a finished search resumes to the same result
    assert json.loads((out / "result.json").read_text())["trace"] == result["trace"]
    other = [a if a != "6" else "7" for a in argv]  # --budget 7
    assert main([*other, "--resume"]) == 2  # another config is refused
    assert "budget" in capsys.readouterr().err


@pytest.mark.parametrize("bad, message", [(["--ridge", "0"], "ridge must be"), (["--beta", "-1"], "beta must be"),
                                          (["--q", "0"], "q must be"), (["--metrics", "nope"], "nope")])
def test_bad_settings_exit_2_before_any_work(tmp_path, pool, capsys, bad, message):
    out = tmp_path / "lin"
    assert main(["search", "linucb", "--scores", str(pool), "--out", str(out), "--no-progress",
                 "--metrics", "synflow,snip", *bad]) == 2
    assert message in capsys.readouterr().err and not out.exists()


def test_linucb_is_a_registered_search():
    assert "linucb" in SEARCHES.names() and "linear bandit" in SEARCHES.get("linucb").doc


def test_a_linucb_search_appears_in_the_report(tmp_path, pool):
    out = tmp_path / "lin"
    assert main(["search", "linucb", "--scores", str(pool), "--metrics", "synflow,snip", "--budget", "4", "--out",
                 str(out), "--no-progress"]) == 0
    assert main(["report", str(out), "--out", str(tmp_path / "rep")]) == 0
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "(linucb)" in md and "4 distinct queries" in md and "**Result**: arch" in md
