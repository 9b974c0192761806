"""The main job: score a sample of a space with Ray actors, search with RoBoT (and HNAS) using real short
training as the oracle, and write a report. Everything lands in one run directory of Arrow files:

    RUN/config.json, RUN/scores/shard-*.parquet     the scored sample (resumable `raynas score` run)
    RUN/robot/{search.json,state.parquet,result.json}   RoBoT with the training oracle
    RUN/hnas/...                                    HNAS (when enabled)
    RUN/report/report.md + *.png                    `raynas report RUN`

On a cluster (``scoring.address``, ``raynas search pipeline --address auto``, or
``ray submit docker/cluster.yaml scripts/ray_submit_search.py -- pipeline ...``) every stage uses it: scoring
actors, each training query of the searches as a Ray task (``search.q`` of them in flight, ``search.gpus_per_query``
GPUs each) and HNAS's ASHA trials. Each stage saves its state in RUN and a rerun resumes it, so a driver killed
at any point continues with the same command.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from raynas.config import from_dict, load_yaml, to_dict
from raynas.errors import ConfigError
from raynas.spaces import DEFAULT_SPACE, create_space
from raynas.store import RunLayout

if TYPE_CHECKING:
    from raynas.parallel import ScoreConfig
    from raynas.search.hnas_run import HNASSearchConfig
    from raynas.search.runner import RobotSearchConfig

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
    """Real short training on digits (a reduced proxy network so a query takes seconds on a CPU).

    The network is the scoring space's small-training network (:meth:`SearchSpace.training_kwargs`: NAS-Bench-201
    C=8, N=1; NAS-Bench-101 C=16, N=1; DARTS C=8, layers=3); ``C``, ``N`` and ``layers`` replace its sizes
    (:class:`raynas.training.NetworkSize`), and one the space's network does not have is refused before scoring."""

    dataset: str = "digits"
    epochs: int = 3
    batch_size: int = 64
    lr: float = 0.1
    C: int | None = None
    N: int | None = None
    layers: int | None = None
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
    #: training queries in flight at once (q-batch BO; 1: sequential)
    q: int = 1
    #: where the training queries run: "local" or "ray"; None: "ray" when scoring.address names a cluster
    query_backend: str | None = None
    gpus_per_query: float = 0.0
    cpus_per_query: float = 1.0


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


def scoring_config(pc: PipelineConfig, out: str | Path, resume: bool) -> "ScoreConfig":
    """The scoring stage's typed config: the sample, the space's own network sizes (a space names which of C
    and N it takes) and, with HNAS on, the two metrics HNAS needs (its measure M and the NTK condition number)."""
    from raynas.parallel import ScoreConfig

    sc = pc.scoring
    metrics = sc.metrics
    if pc.search.hnas:
        metrics += tuple(m for m in (pc.search.hnas_metric, "ntk_cond") if m not in metrics)
    return ScoreConfig(out=str(out), space=sc.space, metrics=metrics, sample=sc.sample, seed=pc.seed, data=sc.data,
                       batch_size=sc.batch_size, workers=sc.workers, address=sc.address, resume=resume,
                       space_kwargs=create_space(sc.space).size_kwargs(C=sc.C, N=sc.N))


def oracle_options(pc: PipelineConfig) -> dict[str, Any]:
    """Options of the real-training oracle both searches query: the scoring space's small-training network
    (:meth:`SearchSpace.training_kwargs`) with the sizes ``oracle.C`` / ``N`` / ``layers`` set, on the oracle data."""
    from raynas.training import NetworkSize

    oc = pc.oracle
    sizes = NetworkSize(C=oc.C, N=oc.N, layers=oc.layers).kwargs()
    return {
        "dataset": oc.dataset,
        "device": oc.device,
        "input_size": oc.input_size,
        "space_kwargs": {**create_space(pc.scoring.space).training_kwargs(), **sizes},
        "train_cfg": {"epochs": oc.epochs, "batch_size": oc.batch_size, "lr": oc.lr, "seed": pc.seed},
    }


def pick_answer(robot: Mapping[str, Any], hnas: Mapping[str, Any] | None) -> tuple[str, Mapping[str, Any], str]:
    """``(search, its result, why)``: the pipeline's answer. Both searches query the same training oracle (same
    data, epochs, network and seed), so their best query values compare: the answer is the better one (a tie
    keeps RoBoT's, the first run); ``why`` says which search found it, against the other's, when HNAS ran."""
    if hnas is None:
        return "robot", robot, ""
    if float(hnas["value"]) > float(robot["value"]):
        return "hnas", hnas, (f", found by HNAS: the better of the two searches' best queries (RoBoT's: arch "
                              f"{robot['arch_index']}, {robot['value']:.2f}%)")
    return "robot", robot, (f", found by RoBoT: the better of the two searches' best queries (HNAS's: arch "
                            f"{hnas['arch_index']}, {hnas['value']:.2f}%)")


def query_placement(pc: PipelineConfig) -> dict[str, Any]:
    """Where both searches' training queries run: on the cluster of ``scoring.address`` (Ray tasks) when it is
    set, else in this process, unless ``search.query_backend`` says otherwise."""
    backend = pc.search.query_backend or ("ray" if pc.scoring.address else "local")
    return {"q": pc.search.q, "query_backend": backend, "address": pc.scoring.address,
            "gpus_per_query": pc.search.gpus_per_query, "cpus_per_query": pc.search.cpus_per_query}


def robot_config(pc: PipelineConfig, out: str | Path, scored: Sequence[str]) -> "RobotSearchConfig":
    """The RoBoT stage's typed config: every scored metric RoBoT searches (:func:`searched_metrics`), the
    training oracle, resumed when its search directory holds a search."""
    from raynas.search.runner import RobotSearchConfig, searched_metrics

    where = RunLayout(Path(out)).search("robot")
    return RobotSearchConfig(scores=str(out), out=str(where.path), oracle="train", budget=pc.search.budget,
                             metrics=searched_metrics(scored), seed=pc.seed, bo_iters=pc.search.bo_iters,
                             transform=pc.search.transform, resume=where.resumable(),
                             oracle_options=oracle_options(pc), allow_incomplete=pc.search.allow_incomplete,
                             **query_placement(pc))


def hnas_config(pc: PipelineConfig, out: str | Path) -> "HNASSearchConfig":
    """The HNAS stage's typed config (same budget, seed and oracle as RoBoT)."""
    from raynas.search.hnas_run import HNASSearchConfig

    where = RunLayout(Path(out)).search("hnas")
    return HNASSearchConfig(scores=str(out), out=str(where.path), oracle="train", budget=pc.search.budget,
                            metric=pc.search.hnas_metric, seed=pc.seed, resume=where.resumable(),
                            oracle_options=oracle_options(pc), allow_incomplete=pc.search.allow_incomplete,
                            **query_placement(pc))


#: how the pipeline's query tasks ask for resources (``raynas search pipeline --set ...``)
QUERY_FLAGS = {"GPU": "--set search.gpus_per_query={}", "CPU": "--set search.cpus_per_query={}"}


def check_resources(pc: PipelineConfig, robot_cfg: "RobotSearchConfig") -> None:
    """Refuse, before scoring, training queries no node can run (the cluster of ``scoring.address``, attached by
    :func:`run_pipeline`, or the local Ray a search would start); the scoring actors are checked by the scoring
    driver and the ASHA trials by HNAS, each before its first task."""
    if robot_cfg.query_backend == "ray":
        from raynas.parallel.queries import require_query_resources

        require_query_resources(robot_cfg.cpus_per_query, robot_cfg.gpus_per_query, pc.scoring.address,
                                flags=QUERY_FLAGS)


def run_pipeline(cfg: PipelineConfig | Mapping[str, Any], progress_callback: Callable[..., None] | None = None, *,
                 out: str | Path | None = None) -> dict[str, Any]:
    """Score, search (RoBoT, and HNAS when enabled), report; returns the summary.

    ``cfg`` is a :class:`PipelineConfig` with ``out`` the run directory, or the CLI's
    ``{"config": yaml path | None, "overrides": {...}, "out": run dir}`` (resolved once, here, by
    :func:`resolve_config`). Each stage gets its typed config (:func:`scoring_config`, :func:`robot_config`,
    :func:`hnas_config`); each stage saves it beside its results and compares it on resume.
    """
    from raynas.parallel import run_scoring
    from raynas.report import write_report
    from raynas.search.registry import get_search
    from raynas.search.runner import training_oracle_factory

    if isinstance(cfg, PipelineConfig):
        pc = cfg
    else:
        pc = resolve_config(cfg.get("config"), cfg.get("overrides"))
        out = cfg.get("out", out)
    if out is None:
        raise ConfigError("pipeline needs an output directory (--out)")
    out = Path(out)
    # Every stage's config is built, and so checked, before any work: a bad search setting (budget=0) is refused
    # before 48 archs are scored, not after. 'all' metrics are the names the scoring run stores.
    score_cfg = scoring_config(pc, out, resume=pc.resume or RunLayout(out).resumable())
    robot_cfg = robot_config(pc, out, score_cfg.metric_names())
    hnas_cfg = hnas_config(pc, out) if pc.search.hnas else None
    # the oracle options and the network sizes the space takes (cheap: no data)
    training_oracle_factory(pc.scoring.space, pc.seed, oracle_options(pc))().check_network()
    if pc.scoring.address:
        import os

        # every stage attaches to that cluster: scoring and the query tasks by address, Tune (ASHA) through the
        # variable Ray's own init reads
        os.environ.setdefault("RAY_ADDRESS", pc.scoring.address)
    from raynas.parallel import session

    # on a cluster, one connection for every stage, made now, so what no node can run is refused before scoring
    started = session.attach(pc.scoring.address) if pc.scoring.address else False
    try:
        check_resources(pc, robot_cfg)
        log.info("scoring %d %s archs with %s on %s", score_cfg.sample, score_cfg.space,
                 ",".join(score_cfg.metrics), score_cfg.data)
        score_summary = run_scoring(score_cfg, progress_callback=progress_callback)
        robot = get_search("robot")(robot_cfg, progress_callback=progress_callback)  # through the registry
        hnas = None
        if hnas_cfg is not None:
            hnas = get_search("hnas")(hnas_cfg, progress_callback=progress_callback)
    finally:
        if started:
            session.shutdown()
    summary: dict[str, Any] = {
        "run_dir": str(out),
        "scored": score_summary,
        "robot": {k: robot.get(k) for k in ("arch_index", "arch", "value", "queries", "cost", "weights", "budget",
                                            "budget_requested", "pool", "benchmark")},
    }
    lines = [robot["benchmark"]["line"]] if robot.get("benchmark") else []
    if hnas is not None:
        summary["hnas"] = {k: hnas.get(k) for k in ("arch_index", "arch", "value", "queries", "cost", "benchmark")}
        if hnas.get("benchmark"):
            lines.append(f"HNAS: {hnas['benchmark']['line']}")
    #: one line per search: the chosen arch's benchmark answer (e.g. its final accuracy and rank in the table)
    summary["benchmark_lines"] = lines
    summary["report"] = [str(p) for p in write_report(out)]
    oc = pc.oracle
    name, best, why = pick_answer(robot, hnas)
    summary["answer"] = {"search": name, **{k: best.get(k) for k in ("arch_index", "arch", "value", "benchmark")}}
    trained = robot["queries"] + (hnas["queries"] if hnas is not None else 0)
    cost = robot["cost"] + (hnas["cost"] if hnas is not None else 0.0)
    summary["message"] = (
        f"chosen architecture {best['arch']} (index {best['arch_index']}): "
        f"{best['value']:.2f}% validation accuracy on {oc.dataset} after {oc.epochs} epochs of real training "
        f"({trained} architectures trained, {cost:.0f} s){why}; results in {out}"
    )
    log.info(summary["message"])
    for line in lines:
        log.info(line)
    return summary
