"""The main job: score a sample of a space with Ray actors, search with RoBoT (and HNAS) using real short
training as the oracle, and write a report. Everything lands in one run directory of Arrow files:

    RUN/config.json, RUN/scores/shard-*.parquet     the scored sample (resumable `raynas score` run)
    RUN/robot/{search.json,state.parquet,result.json}   RoBoT with the training oracle
    RUN/hnas/...                                    HNAS (when enabled)
    RUN/report/report.md + *.png                    `raynas report RUN`
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from raynas.config import from_dict, load_yaml, to_dict
from raynas.errors import ConfigError
from raynas.spaces import DEFAULT_SPACE, create_space
from raynas.store import RunLayout

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScoringSection:
    """What to score: a seeded sample of the space on the embedded digits data, on Ray actors."""

    space: str = DEFAULT_SPACE
    sample: int = 48
    metrics: tuple[str, ...] = ("grad_norm", "snip", "grasp", "fisher", "synflow", "jacob_cov", "naswot", "params")
    data: str = "digits"
    batch_size: int = 32
    C: int = 16
    N: int = 5
    workers: int = 2
    address: str | None = None


@dataclass(frozen=True)
class OracleSection:
    """Real short training on digits (a reduced-width proxy network so a query takes seconds on a CPU)."""

    dataset: str = "digits"
    epochs: int = 3
    batch_size: int = 64
    lr: float = 0.1
    C: int = 8
    N: int = 1
    input_size: int = 16
    device: str = "auto"


@dataclass(frozen=True)
class SearchSection:
    budget: int = 8
    bo_iters: int | None = None
    transform: str = "none"  # as bench_robot: raw min-max ranked better than log scaling on the NAS-Bench-201 pool
    hnas: bool = False
    hnas_metric: str = "ntk_trace"
    #: search the scored sample even if scoring left failed or corrupt shards (the result lists them)
    allow_incomplete: bool = False


@dataclass(frozen=True)
class PipelineConfig:
    seed: int = 0
    scoring: ScoringSection = field(default_factory=ScoringSection)
    oracle: OracleSection = field(default_factory=OracleSection)
    search: SearchSection = field(default_factory=SearchSection)
    resume: bool = False


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def resolve_config(config: str | None, overrides: dict[str, Any] | None) -> PipelineConfig:
    """Defaults <- YAML file <- overrides, validated strictly (unknown keys are errors)."""
    data = to_dict(PipelineConfig())
    if config:
        data = _merge(data, load_yaml(config))
    data = _merge(data, overrides or {})
    return from_dict(PipelineConfig, data)


def run_pipeline(cfg: dict[str, Any], progress_callback: Callable[..., None] | None = None) -> dict[str, Any]:
    """``cfg = {"config": yaml path | None, "overrides": {...}, "out": run dir}``; returns the summary."""
    from raynas.parallel import run_scoring_from_dict
    from raynas.report import write_report
    from raynas.search.runner import RobotSearchConfig, run_robot_search, searched_metrics

    if "out" not in cfg:
        raise ConfigError("pipeline needs an output directory (--out)")
    pc = resolve_config(cfg.get("config"), cfg.get("overrides"))
    out = Path(cfg["out"])
    sc = pc.scoring
    if pc.search.hnas:  # HNAS needs its measure M and the NTK condition number in the scored pool
        need = tuple(m for m in (pc.search.hnas_metric, "ntk_cond") if m not in sc.metrics)
        sc = dataclasses.replace(sc, metrics=sc.metrics + need)
    resume = pc.resume or RunLayout(out).resumable()
    log.info("scoring %d %s archs with %s on %s", sc.sample, sc.space, ",".join(sc.metrics), sc.data)
    score_summary = run_scoring_from_dict(
        {
            "space": sc.space,
            "metrics": ",".join(sc.metrics),
            "sample": sc.sample,
            "seed": pc.seed,
            "data": sc.data,
            "batch_size": sc.batch_size,
            "out": str(out),
            "workers": sc.workers,
            "address": sc.address,
            "resume": resume,
            "space_kwargs": create_space(sc.space).size_kwargs(C=sc.C, N=sc.N),
        },
        progress_callback=progress_callback,
    )
    oc = pc.oracle
    oracle_options = {
        "dataset": oc.dataset,
        "device": oc.device,
        "input_size": oc.input_size,
        "space_kwargs": {"C": oc.C, "N": oc.N},
        "train_cfg": {"epochs": oc.epochs, "batch_size": oc.batch_size, "lr": oc.lr, "seed": pc.seed},
    }
    robot = run_robot_search(
        RobotSearchConfig(
            scores=str(out),
            out=str(RunLayout(out).search("robot").path),
            oracle="train",
            budget=pc.search.budget,
            metrics=searched_metrics(sc.metrics),
            seed=pc.seed,
            bo_iters=pc.search.bo_iters,
            transform=pc.search.transform,
            resume=RunLayout(out).search("robot").resumable(),
            oracle_options=oracle_options,
            allow_incomplete=pc.search.allow_incomplete,
        ),
        progress_callback=progress_callback,
    )
    summary: dict[str, Any] = {
        "run_dir": str(out),
        "scored": score_summary,
        "robot": {k: robot.get(k) for k in ("arch_index", "arch", "value", "queries", "cost", "weights", "budget",
                                            "budget_requested", "pool", "benchmark")},
    }
    lines = [robot["benchmark"]["line"]] if robot.get("benchmark") else []
    if pc.search.hnas:
        from raynas.search.hnas_run import HNASSearchConfig, run_hnas_search

        hnas = run_hnas_search(
            HNASSearchConfig(
                scores=str(out),
                out=str(RunLayout(out).search("hnas").path),
                oracle="train",
                budget=pc.search.budget,
                metric=pc.search.hnas_metric,
                seed=pc.seed,
                resume=RunLayout(out).search("hnas").resumable(),
                oracle_options=oracle_options,
                allow_incomplete=pc.search.allow_incomplete,
            ),
            progress_callback=progress_callback,
        )
        summary["hnas"] = {k: hnas.get(k) for k in ("arch_index", "arch", "value", "queries", "cost", "benchmark")}
        if hnas.get("benchmark"):
            lines.append(f"HNAS: {hnas['benchmark']['line']}")
    #: one line per search: the chosen arch's benchmark answer (e.g. its final accuracy and rank in the table)
    summary["benchmark_lines"] = lines
    summary["report"] = [str(p) for p in write_report(out)]
    summary["message"] = (
        f"chosen architecture {robot['arch']} (index {robot['arch_index']}): "
        f"{robot['value']:.2f}% validation accuracy on {oc.dataset} after {oc.epochs} epochs of real training "
        f"({robot['queries']} architectures trained, {robot['cost']:.0f} s); results in {out}"
    )
    log.info(summary["message"])
    for line in lines:
        log.info(line)
    return summary
