"""The pipeline (raynas.pipeline): typed stage configs built once from the resolved PipelineConfig, the scored
space's own network sizes, and no space named in the code."""

from __future__ import annotations

import pytest

from raynas.errors import ConfigError
from raynas.pipeline import PipelineConfig, hnas_config, resolve_config, robot_config, scoring_config


def test_pipeline_passes_the_scored_spaces_own_sizes(monkeypatch, tmp_path):
    """The pipeline scores with the space's sizes (DARTS: C only) without naming any space."""
    import raynas.parallel
    import raynas.report
    import raynas.search.runner as runner
    from raynas.pipeline import run_pipeline

    seen: list = []
    monkeypatch.setattr(raynas.parallel, "run_scoring", lambda cfg, progress_callback=None: seen.append(cfg) or {})
    monkeypatch.setattr(runner, "run_robot_search", lambda cfg, progress_callback=None: seen.append(cfg) or {
        "arch_index": 3, "arch": "a", "value": 1.0, "queries": 1, "cost": 1.0})
    monkeypatch.setattr(raynas.report, "write_report", lambda out: [])
    for space, want in (("darts_cifar", {"C": 4}), ("nb201", {"C": 4, "N": 2})):
        out = run_pipeline({"out": str(tmp_path / space), "overrides": {"scoring": {"space": space, "C": 4, "N": 2}}})
        score_cfg, robot_cfg = seen[-2:]
        assert score_cfg.space_kwargs == want and score_cfg.space == space
        assert robot_cfg.scores == str(tmp_path / space) and robot_cfg.out == str(tmp_path / space / "robot")
        assert out["message"].startswith("chosen architecture a (index 3): ")
    # the typed config directly, with the run directory beside it
    run_pipeline(resolve_config(None, {"scoring": {"C": 4}}), out=tmp_path / "typed")
    assert seen[-2].out == str(tmp_path / "typed")
    with pytest.raises(ConfigError, match="output directory"):
        run_pipeline(PipelineConfig())


def test_stage_configs_keep_metrics_a_tuple_and_add_what_hnas_needs(tmp_path):
    pc = resolve_config(None, {"scoring": {"metrics": ["snip", "params", "synflow"]}, "search": {"hnas": True}})
    sc = scoring_config(pc, tmp_path, resume=False)
    assert sc.metrics == ("snip", "params", "synflow", "ntk_trace", "ntk_cond")  # HNAS's M and kappa added once
    rc = robot_config(pc, tmp_path, sc.metrics)
    assert rc.metrics == ("snip", "synflow", "ntk_trace", "ntk_cond")  # params is the report's baseline only
    assert rc.oracle == "train" and rc.resume is False and rc.oracle_options["train_cfg"]["seed"] == pc.seed
    hc = hnas_config(pc, tmp_path)
    assert (hc.metric, hc.out, hc.budget) == ("ntk_trace", str(tmp_path / "hnas"), pc.search.budget)


def test_the_answer_is_the_better_search_and_says_which(monkeypatch, tmp_path):
    """With HNAS on, the pipeline's answer is the better of the two searches' best queries (the same training
    oracle answers both), and the message names the search that found it (it used to call RoBoT's pick the
    chosen architecture whatever HNAS found)."""
    import raynas.parallel
    import raynas.report
    import raynas.search.hnas_run as hnas_run
    import raynas.search.runner as runner
    from raynas.pipeline import pick_answer, run_pipeline

    robot = {"arch_index": 3, "arch": "a", "value": 90.0, "queries": 4, "cost": 10.0}
    hnas = {"arch_index": 7, "arch": "b", "value": 92.5, "queries": 4, "cost": 12.0}
    monkeypatch.setattr(raynas.parallel, "run_scoring", lambda cfg, progress_callback=None: {})
    monkeypatch.setattr(runner, "run_robot_search", lambda cfg, progress_callback=None: robot)
    monkeypatch.setattr(hnas_run, "run_hnas_search", lambda cfg, progress_callback=None: hnas)
    monkeypatch.setattr(raynas.report, "write_report", lambda out: [])
    out = run_pipeline({"out": str(tmp_path / "p"), "overrides": {"search": {"hnas": True}}})
    assert out["answer"]["search"] == "hnas" and out["answer"]["arch_index"] == 7
    assert out["message"].startswith("chosen architecture b (index 7): 92.50% validation accuracy")
    assert "found by HNAS" in out["message"] and "RoBoT's: arch 3, 90.00%" in out["message"]
    assert "(8 architectures trained, 22 s)" in out["message"]
    assert pick_answer(robot, {**hnas, "value": 90.0})[0] == "robot"  # a tie keeps RoBoT's, the first run
    assert pick_answer(robot, None) == ("robot", robot, "")
