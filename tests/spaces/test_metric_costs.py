"""Every space ships measured metric costs (issue 29 item 4: cost before commitment on every space, not only
NAS-Bench-201): the tables beside the space packages, one per (space, task), their loading, and the estimate a
TransNAS-Bench-101 run prints before its first arch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from raynas.cli.main import main
from raynas.errors import ConfigError, RaynasError
from raynas.metrics import resolve_metric_names
from raynas.spaces import create_space, list_spaces
from raynas.spaces import costs as costs_mod
from raynas.spaces.costs import EXPONENTS, load_metric_costs_file, metric_costs, metric_costs_file
from raynas_tests.score_events import record_score_events


def _space_tasks() -> list[tuple[str, str | None]]:
    """(space, task) of every space raynas ships (a space a test registers from its own module has no table)."""
    out: list[tuple[str, str | None]] = []
    for name in list_spaces():
        space = create_space(name)
        if not type(space).__module__.startswith("raynas.spaces."):
            continue
        tasks = tuple(space.task_names())
        out += [(name, None)] if tasks == ("classification",) else [(name, t) for t in tasks]
    return out


def _smallest_image_size(space: str, task: str | None) -> int:
    """32, the default, where the task's network takes it; else 64 (TransNAS-Bench-101's macro decoders)."""
    if task is not None:
        try:
            create_space(space).task(task, image_size=32)
        except RaynasError:
            return 64
    return 32


@pytest.mark.parametrize(("space", "task"), _space_tasks())
def test_every_space_and_task_ships_the_cost_of_every_metric(space: str, task: str | None) -> None:
    table = metric_costs(space, task)
    assert table is not None, f"{space} {task}: no measured costs (run scripts/measure_metric_costs.py)"
    assert (table.space, table.task) == (space, task)
    assert set(resolve_metric_names("all,diagnostic")) <= set(table.seconds)
    assert "CPU seconds of one thread" in table.source
    # measured at the defaults of `raynas score` and the space's own network
    macro = dict(getattr(create_space(space), "macro", {}))
    assert table.reference["batch_size"] == 64
    assert table.reference["image_size"] == _smallest_image_size(space, task)
    assert {k: v for k, v in table.reference.items() if k in macro} == {
        k: v for k, v in macro.items() if k in EXPONENTS and isinstance(v, int)}
    assert all(table.exponents[k] == EXPONENTS[k] for k in table.reference)


def test_tables_live_in_the_package_of_their_space() -> None:
    assert metric_costs_file(create_space("tnb101_macro")) == metric_costs_file(create_space("tnb101_micro"))
    assert metric_costs_file(create_space("darts_cifar")).parent.name == "darts"
    for space, _task in _space_tasks():
        assert metric_costs_file(create_space(space)).exists()


def test_a_space_measured_per_task_answers_its_first_task_when_none_is_named() -> None:
    first = sorted(create_space("tnb101_micro").task_names())[0]
    default = metric_costs("tnb101_micro")
    assert default is not None and default.task == first
    assert metric_costs("no_such_space") is None


def test_a_written_file_loads_back_and_a_broken_one_is_a_config_error(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(costs_mod, "_COSTS", {})
    entry = {"space": "s", "task": "t", "seconds": {"a": 1.5}, "reference": {"C": 4}, "exponents": {"C": 2},
             "source": "here"}
    path = tmp_path / "metric_costs.json"
    path.write_text(json.dumps([entry]))
    (table,) = load_metric_costs_file(path)
    assert metric_costs("s", "t") is table and table.seconds == {"a": 1.5}
    assert metric_costs("s", "other") is None  # a task that was not measured is not guessed from another one
    assert load_metric_costs_file(tmp_path / "missing.json") == []
    path.write_text(json.dumps([{**entry, "seconds": {"a": -1}}]))
    with pytest.raises(ConfigError, match="seconds must be >= 0"):
        load_metric_costs_file(path)
    path.write_text(json.dumps({"space": "s"}))
    with pytest.raises(ConfigError, match="expected a list"):
        load_metric_costs_file(path)
    path.write_text(json.dumps([{"space": "s"}]))
    with pytest.raises(ConfigError, match="not a metric-cost table"):
        load_metric_costs_file(path)


@pytest.mark.parametrize(("space", "task"), [("tnb101_micro", "room_layout"), ("tnb101_macro", "segmentsemantic")])
def test_a_tnb101_run_prints_its_estimate_before_the_first_arch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                space: str, task: str) -> None:
    events = record_score_events(monkeypatch)
    rc = main(["score", "--space", space, "--task", task, "--metrics", "params,naswot", "--sample", "2",
               "--data", "noise", "--C", "4", "--image-size", "64", "--workers", "0", "--no-progress",
               "--out", str(tmp_path / "r")])
    assert rc == 0
    first = events.index(next(e for e in events if e[0] == "score"))
    (prior,) = [text for kind, text in events[:first] if kind == "line" and text.startswith("estimated ")]
    # the task's own table, scaled to the small network
    assert f"(from {space}/{task}: CPU seconds of one thread" in prior and "scaled x" in prior
    assert "x 2 archs / 1 worker" in prior and "not counted" not in prior
