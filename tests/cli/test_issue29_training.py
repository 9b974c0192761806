"""Issue 29 items 3 and 8: the pipeline runs on every space it accepts (each space owns its small-training
network), and a real-training search from the CLI sets the training's size by flags, shows each query's epochs
and true rates."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from raynas.cli.main import main

#: a pipeline of seconds: 4 archs scored in process on two cheap metrics, 2 one-epoch trainings on 8 px digits
TINY_PIPELINE = ["--no-progress", "--set", "scoring.sample=4", "--set", "scoring.workers=0",
                 "--set", "scoring.metrics=[synflow,params]", "--set", "scoring.batch_size=8",
                 "--set", "scoring.C=4", "--set", "scoring.N=1", "--set", "search.budget=2",
                 "--set", "oracle.epochs=1", "--set", "oracle.input_size=8", "--set", "oracle.device=cpu"]


@pytest.mark.parametrize("space", ["nb201", "nb101", "darts_cifar"])
def test_pipeline_runs_on_every_space(tmp_path: Path, capsys: pytest.CaptureFixture, space: str) -> None:
    """Before: darts_cifar failed after scoring with ``darts_cifar.to_module: unknown option(s) ['N']`` (the
    oracle section's N was passed to every space)."""
    out = tmp_path / space
    rc = main(["search", "pipeline", "--out", str(out), "--set", f"scoring.space={space}", *TINY_PIPELINE])
    captured = capsys.readouterr()
    assert rc == 0, captured.err[-3000:]
    assert "% validation accuracy on digits after 1 epochs" in captured.out
    stored = json.loads((out / "robot" / "search.json").read_text())
    from raynas.spaces import create_space

    # the space's own small-training network, not another space's sizes
    assert stored["oracle_options"]["space_kwargs"] == create_space(space).training_kwargs()
    assert (out / "report" / "report.md").exists()


def test_pipeline_sizes_replace_the_spaces_and_a_size_it_lacks_is_refused_before_scoring(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from raynas.pipeline import oracle_options, resolve_config

    pc = resolve_config(None, {"scoring": {"space": "darts_cifar"}, "oracle": {"layers": 4}})
    assert oracle_options(pc)["space_kwargs"] == {"C": 8, "layers": 4}
    pc = resolve_config(None, {"oracle": {"C": 4}})  # nb201: the integration test's setting, N stays 1
    assert oracle_options(pc)["space_kwargs"] == {"C": 4, "N": 1}
    rc = main(["search", "pipeline", "--out", str(tmp_path / "p"), "--set", "scoring.space=darts_cifar",
               "--set", "oracle.N=2", "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and "darts_cifar's network has no option(s) ['N']" in err, err
    assert not (tmp_path / "p" / "scores").exists()  # refused before any arch was scored


@pytest.fixture(scope="module")
def scored(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("pool") / "run"
    rc = main(["score", "--space", "nb201", "--sample", "5", "--metrics", "synflow,params", "--workers", "0",
               "--C", "4", "--N", "1", "--batch-size", "8", "--image-size", "8", "--out", str(run), "--no-progress"])
    assert rc == 0
    return run


def test_search_robot_sets_the_training_by_flags_and_shows_each_epoch(
        scored: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """Before: no flag set the training (``--epochs`` was an unknown argument) and the bar read ``5096 step/s``."""
    out = tmp_path / "robot"
    rc = main(["search", "robot", "--scores", str(scored), "--out", str(out), "--oracle", "train", "--budget", "2",
               "--metrics", "synflow", "--epochs", "2", "--C", "4", "--N", "1", "--input-size", "8",
               "--max-train", "64", "--max-val", "32", "--lr", "0.05", "--no-nesterov", "--threads", "1"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err[-3000:]
    stored = json.loads((out / "search.json").read_text())["oracle_options"]
    assert stored == {"input_size": 8, "max_train": 64, "max_val": 32, "threads": 1,
                      "space_kwargs": {"C": 4, "N": 1}, "train_cfg": {"epochs": 2, "lr": 0.05, "nesterov": False}}
    result = json.loads((out / "result.json").read_text())
    assert result["queries"] == 2
    bar = captured.err.replace("\r", "\n")
    assert re.search(r"query=arch \d+ epoch 1/2, val acc [\d.]+%", bar), bar[-2000:]
    assert re.search(r"query=arch \d+ epoch 2/2", bar), bar[-2000:]
    # the rate itself is checked without a clock in test_progress_rate_counts_only_the_phase (a bound on a
    # measured rate here would hold on some machines only)


def test_training_flags_need_the_training_oracle(scored: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture) -> None:
    rc = main(["search", "robot", "--scores", str(scored), "--out", str(tmp_path / "r"), "--epochs", "1",
               "--C", "4", "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and "--C, --epochs: settings of the training oracle; they need --oracle train" in err, err
    assert not (tmp_path / "r").exists()


def test_hnas_refuses_an_option_its_asha_stage_cannot_use_before_any_query(tmp_path: Path,
                                                                           capsys: pytest.CaptureFixture) -> None:
    rc = main(["search", "hnas", "--scores", str(tmp_path / "none"), "--out", str(tmp_path / "h"),
               "--oracle", "train", "--threads", "2", "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and "['threads'] are not supported by the ASHA stage" in err, err


def test_a_space_refuses_a_training_size_its_network_lacks(scored: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture) -> None:
    from raynas.errors import ConfigError
    from raynas.oracles.training import TrainingOracle

    with pytest.raises(ConfigError, match=r"darts_cifar's network has no option\(s\) \['N'\]"):
        TrainingOracle("darts_cifar", space_kwargs={"C": 8, "N": 1}).check_network()
    TrainingOracle("darts_cifar", space_kwargs={"C": 8, "layers": 3}).check_network()  # its own sizes are fine
    # from the CLI: refused before any query, the search directory left unmade
    rc = main(["search", "robot", "--scores", str(scored), "--out", str(tmp_path / "r"), "--oracle", "train",
               "--metrics", "synflow", "--layers", "3", "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and "nb201's network has no option(s) ['layers']" in err, err
    assert not (tmp_path / "r").exists()


def test_progress_rate_counts_only_the_phase(capsys: pytest.CaptureFixture) -> None:
    """A phase first heard of with its first step done (a search's first answer after minutes of training) reads
    no rate, not one step over the microseconds since the bar was reset."""
    from raynas.cli.progress import progress_bar

    with progress_bar("robot", unit="step") as update:
        update(1, 5)
        update(1, 5, detail="arch 7 epoch 1/3, val acc 10.0%")
    bar = capsys.readouterr().err.replace("\r", "\n")
    assert "?step/s" in bar and not re.search(r"\d+\.\d+step/s", bar), bar
    assert "query=arch 7 epoch 1/3" in bar
