"""``raynas score`` says what a run will cost before it scores anything (issue 29 item 4): the estimate line comes
before the first arch, a run projected past an hour gets a warning saying how to cut it (and still runs: no
prompt), and the progress bar names the metric being computed inside an arch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from raynas.cli.main import main
from raynas.cli.score_cmd import ScoreReporter, metric_label
from raynas.parallel.run import CostEstimate
from raynas.spaces import costs as costs_mod
from raynas.spaces.costs import MetricCosts
from raynas_tests.score_events import record_score_events

TINY = ["--space", "nb201", "--C", "4", "--N", "1", "--batch-size", "8", "--image-size", "8", "--workers", "0",
        "--no-progress"]
REF = {"C": 16, "N": 5, "batch_size": 64, "image_size": 32}
EXP = {"C": 2, "N": 1, "batch_size": 1, "image_size": 2}


def test_estimate_is_printed_before_the_first_arch_is_scored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    events = record_score_events(monkeypatch)
    rc = main(["score", *TINY, "--metrics", "params,naswot", "--sample", "3", "--out", str(tmp_path / "r")])
    assert rc == 0
    first = events.index(next(e for e in events if e[0] == "score"))
    lines = [text for kind, text in events[:first] if kind == "line"]
    (prior,) = [ln for ln in lines if ln.startswith("estimated ")]
    # from nb201's shipped table, scaled to the tiny network
    assert " per arch x 3 archs / 1 worker = ~" in prior and "(from " in prior and "scaled x" in prior
    assert "slowest: " in prior and "naswot" in prior
    assert not any(text.startswith("raynas: warning") for _kind, text in events)  # seconds, not hours


def test_a_run_projected_past_an_hour_warns_how_to_cut_it_and_goes_on(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    # a table in which params costs 200 s per arch at the tiny run's size: 40 archs on one worker is 2.2 h
    tiny = {"C": 4, "N": 1, "batch_size": 8, "image_size": 8}
    monkeypatch.setitem(costs_mod._COSTS, ("nb201", None), MetricCosts("nb201", {"params": 200.0}, tiny, EXP, "a test table"))
    events = record_score_events(monkeypatch)
    rc = main(["score", *TINY, "--metrics", "params", "--sample", "40", "--out", str(tmp_path / "r")])
    assert rc == 0  # not blocked: every arch scored
    assert sum(1 for kind, _ in events if kind == "score") == 40
    first = events.index(next(e for e in events if e[0] == "score"))
    before = [text for kind, text in events[:first] if kind == "line"]
    assert before[0] == ("estimated 200 s per arch x 40 archs / 1 worker = ~2.22 h (from a test table, measured at "
                         "C=4 N=1 batch_size=8 image_size=8); slowest: params 3.33 min")
    assert before[1].startswith("raynas: warning: this run is projected to take ~2.22 h")
    assert "a smaller --sample" in before[1] and "--workers N" in before[1]
    # warned once, not again when the measured estimate comes after the first arch
    assert sum(1 for _kind, text in events if text.startswith("raynas: warning: this run")) == 1


def test_metric_label() -> None:
    assert metric_label(("vkdnw",), 11, 40) == "vkdnw 12/40"
    assert metric_label(("ntk_cond", "ntk_trace", "a", "b", "c", "d"), 12, 40) == "ntk_cond+5 18/40"


def test_reporter_shows_the_metric_with_the_last_arch_progress() -> None:
    updates: list[Any] = []
    rep = ScoreReporter(lambda text: None, lambda *a, **kw: updates.append((a, kw)))
    rep.metric(("params",), 0, 2)  # before any arch progress: nothing to attach it to
    rep.progress(0, 3, None, None)
    rep.metric(("params",), 0, 2)
    rep.progress(1, 3, 0.5, 4.0)
    rep.metric(("grad_norm",), 1, 2)
    assert updates == [((0, 3, None, None), {}), ((0, 3, None, None), {"metric": "params 1/2"}),
                       ((1, 3, 0.5, 4.0), {}), ((1, 3, 0.5, 4.0), {"metric": "grad_norm 2/2"})]


def test_reporter_warns_once() -> None:
    lines: list[str] = []
    rep = ScoreReporter(lines.append)
    long = CostEstimate({"a": 7200.0}, 2, 1, source="t")
    rep.estimate(long)
    rep.estimate(CostEstimate({"a": 7000.0}, 1, 1))  # measured, still long: no second warning
    assert [ln.startswith("raynas: warning: ") for ln in lines] == [False, True, False]


def test_progress_bar_shows_the_metric(capsys: pytest.CaptureFixture) -> None:
    from raynas.cli.progress import progress_bar

    with progress_bar("scoring") as update:
        update(0, 3)
        update(0, 3, metric="vkdnw 12/40")
    assert "metric=vkdnw 12/40" in capsys.readouterr().err
