"""The pipeline (raynas.pipeline) asks the scored space which network sizes it takes and names no space."""

from __future__ import annotations


def test_pipeline_passes_the_scored_spaces_own_sizes(monkeypatch, tmp_path):
    """The pipeline scores with the space's sizes (DARTS: C only) without naming any space."""
    import raynas.parallel
    import raynas.report
    import raynas.search.runner as runner
    from raynas.pipeline import run_pipeline

    seen: list[dict] = []
    monkeypatch.setattr(raynas.parallel, "run_scoring_from_dict",
                        lambda cfg, progress_callback=None: seen.append(cfg) or {})
    monkeypatch.setattr(runner, "run_robot_search", lambda cfg, progress_callback=None: {
        "arch_index": 3, "arch": "a", "value": 1.0, "queries": 1, "cost": 1.0})
    monkeypatch.setattr(raynas.report, "write_report", lambda out: [])
    for space, want in (("darts_cifar", {"C": 4}), ("nb201", {"C": 4, "N": 2})):
        out = run_pipeline({"out": str(tmp_path / space), "overrides": {"scoring": {"space": space, "C": 4, "N": 2}}})
        assert seen[-1]["space_kwargs"] == want and seen[-1]["space"] == space
        assert out["message"].startswith("chosen architecture a (index 3): ")
