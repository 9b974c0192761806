"""Cost before commitment (issue 29 item 4): the estimate made before any arch is scored, from a space's measured
metric costs, as a pure function (no clock, no model), its warning past an hour, and how a run reports it first."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from raynas.errors import ConfigError
from raynas.parallel import run_scoring_from_dict
from raynas.parallel.run import LONG_RUN_S, CostEstimate, format_seconds, prior_estimate
from raynas.spaces import costs as costs_mod
from raynas.spaces.costs import MetricCosts, metric_costs
from raynas.testing.runs import tiny_score_config

REF = {"C": 16, "N": 5, "batch_size": 64, "image_size": 32}
EXP = {"C": 2, "N": 1, "batch_size": 1, "image_size": 2}


def _table(**seconds: float) -> MetricCosts:
    return MetricCosts("nb201", seconds, REF, EXP, "a test table")


def test_projected_seconds_are_per_arch_times_archs_over_workers() -> None:
    est = prior_estimate(_table(vkdnw=53.0, lwt_angle=26.0, params=0.01), ["vkdnw", "lwt_angle", "params"], 3, 2,
                         REF)
    assert est is not None and not est.measured
    assert est.per_metric_s == {"vkdnw": 53.0, "lwt_angle": 26.0, "params": 0.01}
    assert est.s_per_arch == pytest.approx(79.01)
    assert est.projected_s == pytest.approx(79.01 * 3 / 2)
    text = est.describe()
    assert text.startswith("estimated 79 s per arch x 3 archs / 2 workers = ~1.98 min (from a test table, measured at "
                           "C=16 N=5 batch_size=64 image_size=32)")
    assert "slowest: vkdnw 53 s, lwt_angle 26 s, params 0.01 s" in text
    assert est.warning() is None  # 2 min


def test_sizes_scale_the_measured_seconds() -> None:
    sizes = {**REF, "C": 8, "batch_size": 128}  # (8/16)**2 * (128/64) = 0.5
    est = prior_estimate(_table(vkdnw=50.0), ["vkdnw"], 1, 1, sizes)
    assert est is not None and est.per_metric_s == {"vkdnw": 25.0}
    assert "scaled x0.5 to C=8 batch_size=128" in est.describe()
    # keys not given count as the reference; workers 0 (in-process) count as one
    assert prior_estimate(_table(vkdnw=50.0), ["vkdnw"], 2, 0, {}).projected_s == 100.0


def test_metrics_without_a_stored_cost_are_named_and_not_counted() -> None:
    est = prior_estimate(_table(vkdnw=50.0), ["vkdnw", "my_metric"], 1, 1, REF)
    assert est is not None and est.unknown == ("my_metric",) and est.s_per_arch == 50.0
    assert "not counted (no stored cost): my_metric" in est.describe()


def test_nothing_to_estimate_is_none() -> None:
    assert prior_estimate(None, ["vkdnw"], 3, 1, REF) is None  # no table for the space
    assert prior_estimate(_table(vkdnw=1.0), ["vkdnw"], 0, 1, REF) is None  # nothing left to score
    assert prior_estimate(_table(vkdnw=1.0), ["my_metric"], 3, 1, REF) is None  # no metric known


def test_warning_past_an_hour_says_how_to_cut_the_run() -> None:
    # the example: --metrics all --sample 1000 at 431 s/arch on one worker is ~5 days
    est = CostEstimate({"vkdnw": 53.0, "lwt_angle": 52.0, "ntk_cond": 38.0, "rest": 288.0}, 1000, 1,
                       source="a test table")
    assert format_seconds(est.projected_s) == "4.99 days"
    warning = est.warning()
    assert warning is not None
    assert warning.startswith("this run is projected to take ~4.99 days (1000 archs at 7.18 min each on 1 worker)")
    for how in ("fewer metrics (--metrics", "vkdnw 53 s/arch", "a smaller --sample", "--workers N",
                "--gpus-per-worker", "--address"):
        assert how in warning
    # exactly the limit is not past it; the limit can be chosen
    assert CostEstimate({"a": LONG_RUN_S}, 1, 1, source="t").warning() is None
    assert CostEstimate({"a": LONG_RUN_S}, 2, 2, source="t").warning() is None
    assert CostEstimate({"a": LONG_RUN_S}, 3, 2, source="t").warning() is not None
    assert CostEstimate({"a": 10.0}, 1, 1, source="t").warning(limit_s=5.0) is not None


@pytest.mark.parametrize("s, text", [(5400.0, "1.5 h"), (47 * 3600.0, "47 h"), (5 * 86400.0, "5 days")])
def test_long_durations_in_days(s: float, text: str) -> None:
    assert format_seconds(s) == text


def test_a_table_with_a_negative_cost_or_an_unreferenced_exponent_is_refused() -> None:
    with pytest.raises(ConfigError, match="seconds must be >= 0"):
        MetricCosts("x", {"a": -1.0}, REF, EXP, "t")
    with pytest.raises(ConfigError, match=r"exponents for \['D'\] have no reference size"):
        MetricCosts("x", {"a": 1.0}, REF, {"D": 1.0}, "t")


def test_nb201_ships_measured_costs_of_every_registered_metric() -> None:
    from raynas.metrics import resolve_metric_names

    table = metric_costs("nb201")
    assert table is not None and "CPU" in table.source
    assert set(resolve_metric_names("all")) <= set(table.seconds)
    assert table.reference == REF


def test_a_run_reports_the_prior_estimate_before_scoring_any_arch(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(costs_mod._COSTS, ("nb201", None), _table(params=10.0, grad_norm=20.0, naswot=30.0))
    events: list[Any] = []
    run_scoring_from_dict(tiny_score_config(tmp_path, sample=3),
                          progress_callback=lambda done, *a: events.append(("progress", done)),
                          estimate_callback=lambda est: events.append(("estimate", est)),
                          metric_callback=lambda names, done, total: events.append(("metric", names, done, total)))
    kind, prior = events[0]
    assert kind == "estimate" and not prior.measured and prior.archs_left == 3 and prior.workers == 1
    # scaled from the table's reference to the tiny run: (4/16)**2 * (1/5) * (8/64) * (8/32)**2
    factor = (4 / 16) ** 2 * (1 / 5) * (8 / 64) * (8 / 32) ** 2
    assert prior.per_metric_s == pytest.approx({"params": 10 * factor, "grad_norm": 20 * factor,
                                                "naswot": 30 * factor})
    measured = [e for k, e, *_ in events if k == "estimate" and e.measured]
    assert len(measured) == 1 and measured[0].archs_left == 2
    # per-metric progress inside each arch: params on its own, then grad_norm and naswot's shared loss pass
    metric_events = [e[1:] for e in events if e[0] == "metric"]
    assert metric_events == [(("params",), 0, 3), (("grad_norm", "naswot"), 1, 3)] * 3
    first_metric = next(i for i, e in enumerate(events) if e[0] == "metric")
    assert events.index(("progress", 1)) > first_metric


def test_resume_estimates_only_the_archs_left(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(costs_mod._COSTS, ("nb201", None), _table(params=10.0))
    cfg = tiny_score_config(tmp_path, sample=4, metrics=["params"])

    def stop(done: int, *a: Any) -> None:
        if done == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_scoring_from_dict(cfg, progress_callback=stop)
    seen: list[CostEstimate] = []
    run_scoring_from_dict({"out": str(tmp_path), "resume": True}, estimate_callback=seen.append)
    assert [e.archs_left for e in seen if not e.measured] == [3]
