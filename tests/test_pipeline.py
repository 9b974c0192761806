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
