"""``raynas score --space tnb101_* --task NAME`` end to end (in-process, no Ray): the done-when command of issue 31
at a small size, every task of both spaces with a metric of each requirement, ``raynas export`` carrying
TransNAS-Bench-101's architecture strings, and the refusals (a space without tasks, a dataset without the task's
targets)."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from raynas.cli.main import main
from raynas.metrics import resolve_metric_names
from raynas.metrics.registry import get_metric
from raynas.spaces.tnb101 import TASKS

#: small networks: C=4 (the micro cell's smallest width that keeps two stem channels), 64x64 inputs (every
#: decoder restores 64), in-process
SMALL = ["--C", "4", "--image-size", "64", "--workers", "0", "--no-progress"]
ARCH = {"tnb101_micro": re.compile(r"^64-41414-[0-3]_[0-3]{2}_[0-3]{3}$"),
        "tnb101_macro": re.compile(r"^64-[1-4]{4,6}-basic$")}


def _rows(run: Path) -> list[dict]:
    return pq.read_table(run / "scores").to_pylist()


@pytest.mark.timeout(600)
def test_done_when_room_layout_all_metrics(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """``--metrics all --sample 3 --data noise`` on room_layout: exit 0, every row ok or not_applicable; the
    not-applicable ones are exactly the label-needing metrics, each with its reason; the rows and the export carry
    TransNAS-Bench-101's strings. Batch 12: AZ-NAS's channel covariances of the last cells (32 channels at 2x2)
    need more than 32 observations to have a spectrum without negative round-off (else its terms are NaN, as in
    the reference)."""
    run = tmp_path / "R"
    rc = main(["score", "--space", "tnb101_micro", "--task", "room_layout", "--metrics", "all", "--sample", "3",
               "--data", "noise", "--out", str(run), "--batch-size", "12", *SMALL])
    out = capsys.readouterr().out
    assert rc == 0 and "outcome: ok" in out
    rows = _rows(run)
    metrics = resolve_metric_names("all")
    assert len(rows) == 3 * len(metrics)
    assert {r["status"] for r in rows} <= {"ok", "not_applicable"}
    na = {r["metric"] for r in rows if r["status"] == "not_applicable"}
    assert na == {m for m in metrics if get_metric(m).requirement == "labels"} and na
    assert all("room_layout" in r["error"] for r in rows if r["status"] == "not_applicable")
    archs = {r["arch"] for r in rows}
    assert len(archs) == 3 and all(ARCH["tnb101_micro"].match(a) for a in archs)
    config = json.loads((run / "config.json").read_text())
    assert config["identity"]["space_kwargs"]["task"] == "room_layout"  # a resume cannot change the task

    csv_path = tmp_path / "wide.csv"
    assert main(["export", str(run), "--format", "csv", "--out", str(csv_path)]) == 0
    with csv_path.open() as f:
        exported = list(csv.DictReader(f))
    assert {r["arch"] for r in exported} == archs and len(exported) == 3


@pytest.mark.parametrize("space", ["tnb101_micro", "tnb101_macro"])
@pytest.mark.parametrize("task", list(TASKS))
def test_every_task_scores_with_its_loss(tmp_path: Path, capsys: pytest.CaptureFixture, space: str,
                                         task: str) -> None:
    """naswot (label-free), grad_norm (the task's loss), epe_nas (class labels: jigsaw only) on one arch."""
    run = tmp_path / "r"
    rc = main(["score", "--space", space, "--task", task, "--metrics", "naswot,grad_norm,epe_nas", "--sample", "1",
               "--data", "noise", "--batch-size", "3", "--out", str(run), *SMALL])
    capsys.readouterr()
    assert rc == 0
    status = {r["metric"]: r["status"] for r in _rows(run)}
    assert status == {"naswot": "ok", "grad_norm": "ok",
                      "epe_nas": "ok" if task == "jigsaw" else "not_applicable"}
    (arch,) = {r["arch"] for r in _rows(run)}
    assert ARCH[space].match(arch)


def test_the_task_changes_the_loss_and_the_network(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """The same arch and seed on two tasks: different networks and losses give different grad_norm values, while
    naswot (the encoder's activation codes before the head) is the same."""
    values = {}
    for task in ("room_layout", "class_object"):
        run = tmp_path / task
        assert main(["score", "--space", "tnb101_micro", "--task", task, "--metrics", "naswot,grad_norm",
                     "--ids", "4095", "--data", "noise", "--batch-size", "3", "--out", str(run), *SMALL]) == 0
        values[task] = {r["metric"]: r["value"] for r in _rows(run)}
    capsys.readouterr()
    assert values["room_layout"]["grad_norm"] != values["class_object"]["grad_norm"]
    # same seed, same encoder weights and inputs: only the head (no ReLU) and the loss differ
    assert values["room_layout"]["naswot"] == values["class_object"]["naswot"]


def test_a_space_without_tasks_refuses_task(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    rc = main(["score", "--space", "nb201", "--task", "room_layout", "--metrics", "params", "--sample", "1",
               "--out", str(tmp_path / "r"), "--C", "4", "--N", "1", "--image-size", "8", "--workers", "0",
               "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and "unknown option(s) ['task']" in err
    assert not (tmp_path / "r").exists()


def test_a_dataset_of_class_labels_refuses_another_task(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    rc = main(["score", "--space", "tnb101_micro", "--task", "segmentsemantic", "--metrics", "params", "--sample",
               "1", "--data", "digits", "--out", str(tmp_path / "r"), *SMALL])
    err = capsys.readouterr().err
    assert rc == 2 and "--data noise" in err and "taskonomy:PATH" in err and "segmentsemantic" in err
    assert not (tmp_path / "r").exists()
    # an image size the decoders cannot restore is refused before any work too
    rc = main(["score", "--space", "tnb101_macro", "--task", "normal", "--metrics", "params", "--sample", "1",
               "--data", "noise", "--out", str(tmp_path / "r"), "--C", "4", "--image-size", "32", "--workers", "0",
               "--no-progress"])
    assert rc == 2 and "multiple of 64" in capsys.readouterr().err


@pytest.mark.parametrize("space", ["nb201", "nb101", "darts_cifar"])
def test_spaces_without_tasks_draw_the_batch_they_always_drew(tmp_path: Path, space: str) -> None:
    """No task for a classification-only space: the run's batch is ``create_batch`` without one (same tensors,
    same name), and a config without ``--task`` has no ``task`` key to change its identity."""
    import torch

    from raynas.data import create_batch
    from raynas.parallel.config import ScoreConfig
    from raynas.parallel.run import _space_task
    from raynas.spaces import create_space

    cfg = ScoreConfig(out=str(tmp_path / "r"), space=space, data="digits", batch_size=8, image_size=8, sample=1)
    assert _space_task(create_space(space), cfg) is None
    assert "task" not in cfg.identity().get("space_kwargs", {})
    assert "task_loss" not in cfg.identity()  # classification's loss is fixed: the identity stays as it was
    a = create_batch("digits", 8, 0, 8, task=_space_task(create_space(space), cfg))
    b = create_batch("digits", 8, 0, 8)
    assert a.name == b.name and torch.equal(a.inputs, b.inputs) and torch.equal(a.labels, b.labels)


def test_the_run_records_its_task_loss_and_a_run_without_it_does_not_resume(tmp_path: Path,
                                                                           capsys: pytest.CaptureFixture) -> None:
    """class_scene scores with the benchmark's ``softmax_ce_eps`` and the run's identity says so. A run written
    before the identity held the loss (then: the exact soft cross-entropy) still reads (export), but neither a
    resume nor a forced one may add rows to it: they would be scored with another loss than the stored ones."""
    run = tmp_path / "r"
    assert main(["score", "--space", "tnb101_micro", "--task", "class_scene", "--metrics", "naswot", "--ids", "0,1",
                 "--data", "noise", "--batch-size", "3", "--out", str(run), *SMALL]) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["identity"]["task_loss"] == "softmax_ce_eps"
    assert main(["score", "--resume", str(run), "--no-progress"]) == 0  # a run of today resumes
    del config["identity"]["task_loss"]  # as a run written before
    (run / "config.json").write_text(json.dumps(config))
    capsys.readouterr()
    for extra in ([], ["--metrics", "naswot,params", "--force"]):
        assert main(["score", "--resume", str(run), "--no-progress", *extra]) == 2
        assert "task_loss: stored (absent)" in capsys.readouterr().err
    assert main(["export", str(run), "--format", "csv", "--out", str(tmp_path / "w.csv")]) == 0
    assert {r["metric"] for r in _rows(run)} == {"naswot"}


def test_a_run_none_of_whose_metrics_applies_to_the_task_is_refused_before_any_work(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    # every row would be not_applicable: exit 2 with each reason, and no run directory is made
    run = tmp_path / "r"
    assert main(["score", "--space", "tnb101_micro", "--task", "room_layout", "--metrics", "ntk_cond,vkdnw",
                 "--sample", "1", "--data", "noise", "--out", str(run), *SMALL]) == 2
    err = capsys.readouterr().err
    assert "none of the metrics applies to task 'room_layout': ntk_cond needs per-sample class labels" in err
    assert "vkdnw needs" in err and not run.exists()
    # one that applies is enough: the others are stored as not_applicable
    assert main(["score", "--space", "tnb101_micro", "--task", "room_layout", "--metrics", "ntk_cond,params",
                 "--sample", "1", "--data", "noise", "--out", str(run), *SMALL]) == 0
    assert {(r["metric"], r["status"]) for r in _rows(run)} == {("ntk_cond", "not_applicable"), ("params", "ok")}


def test_a_tnb101_run_reads_back_complete_with_its_recorded_task_loss(tmp_path: Path) -> None:
    # the stored identity holds the derived task_loss; reading the config back into a plan must not choke on it
    from raynas.parallel.planner import open_run

    run = tmp_path / "r"
    assert main(["score", "--space", "tnb101_micro", "--task", "room_layout", "--metrics", "params", "--sample", "2",
                 "--data", "noise", "--out", str(run), *SMALL]) == 0
    assert json.loads((run / "config.json").read_text())["identity"]["task_loss"] == "mse"
    check = open_run(run).completeness()
    assert check.complete, check.problems()
