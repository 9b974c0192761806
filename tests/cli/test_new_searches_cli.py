"""Issue #30 items 3-4: ``raynas search random`` and ``raynas search robot-reference`` run through the generic
session and the CLI, on a published pool (``--scores nbsz:...``, no scoring), resume, and appear in reports."""

from __future__ import annotations

import json

import pytest
from raynas_tests.nbsz_tables import write_nb301

from raynas.cli.main import main
from raynas.report import write_report

INDICES = (0, 5, 77, 123456789, 10**15, 10**18)


@pytest.fixture()
def nb301(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    root = tmp_path / "data"
    write_nb301(root, INDICES)  # val_accuracy 90 + row: the last arch is the best
    monkeypatch.setenv("RAYNAS_DATA", str(root))
    return tmp_path


def _json(out: str) -> dict:
    start = out.index("{\n")
    end = out.rindex("\n}") + 2
    return json.loads(out[start:end])


@pytest.mark.parametrize("method,extra", [("random", ["--seed", "4"]), ("robot-reference", ["--seed", "10"]),
                                          ("linucb", [])])
def test_a_search_runs_on_a_published_pool_and_resumes_to_the_same_result(nb301, method, extra, capsys):
    pytest.importorskip("bayes_opt") if method == "robot-reference" else None
    out = nb301 / method
    args = ["search", method, "--scores", "nbsz:nb301:cifar10", "--out", str(out), "--budget", "6", "--no-progress",
            *extra]
    assert main(args) == 0
    first = _json(capsys.readouterr().out)
    assert first["arch_index"] == INDICES[-1] and first["value"] == pytest.approx(95.0)  # all 6 queried: the best
    assert first["space"] == "darts_cifar" and first["pool"]["size"] == len(INDICES)
    assert first["benchmark"] is not None and "nb301" in first["benchmark"]["line"].lower()
    trace = json.loads((out / "result.json").read_text())["trace"]
    assert len({r["arch_index"] for r in trace}) == len(INDICES)
    assert main([*args, "--resume"]) == 0  # a finished search resumes to the same answer
    again = _json(capsys.readouterr().out)
    assert again["arch_index"] == first["arch_index"] and again["queries"] == first["queries"]
    assert json.loads((out / "result.json").read_text())["trace"] == trace
    report = write_report(out, out / "report")
    assert any(p.suffix == ".md" for p in report)
    text = next(p for p in report if p.suffix == ".md").read_text()
    assert method in text and f"arch {INDICES[-1]}" in text
    # the weights plot is labelled with what the search's weights are (random has none)
    assert ("Weights of each query" in text) == (method != "random")
    if method == "linucb":
        assert "intercept" in text


def test_random_with_a_smaller_budget_queries_its_seeded_draw(nb301, capsys):
    args = ["search", "random", "--scores", "nbsz:nb301:cifar10", "--budget", "2", "--no-progress"]
    assert main([*args, "--seed", "1", "--out", str(nb301 / "a")]) == 0
    a = _json(capsys.readouterr().out)
    assert main([*args, "--seed", "1", "--out", str(nb301 / "b"), "--q", "2"]) == 0
    b = _json(capsys.readouterr().out)
    assert a["queries"] == b["queries"] == 2
    arch = [sorted(r["arch_index"] for r in json.loads((nb301 / d / "result.json").read_text())["trace"])
            for d in ("a", "b")]
    assert arch[0] == arch[1]


def test_robot_reference_refuses_q_above_1_before_any_work(nb301, capsys):
    rc = main(["search", "robot-reference", "--scores", "nbsz:nb301:cifar10", "--out", str(nb301 / "r"), "--q", "2",
               "--no-progress"])
    assert rc == 2 and "sequential" in capsys.readouterr().err
    assert not (nb301 / "r").exists()
