"""``raynas search robot|hnas|tenas|pipeline``: searches over scored pools, and the end-to-end main job."""

from __future__ import annotations

import argparse
import json
from typing import Any

from raynas.cli.argtypes import optional_count, positive_int
from raynas.cli.progress import progress_bar
from raynas.errors import ConfigError

#: a search's flags that were not given are absent from the namespace (as in `raynas score`), so the typed
#: config's default applies and a flag given as ``none`` (None) is told apart from one not given
_UNSET = argparse.SUPPRESS


def _common(p: argparse.ArgumentParser, *, scores: bool = True) -> None:
    if scores:
        p.add_argument("--scores", required=True, help="run directory written by `raynas score` (the pool); several joined with ':' "
                       "pool the archs scored in all of them, e.g. runs/pool:runs/pool_ntk")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="search directory (state, trace, results as Arrow)")
    p.add_argument("--resume", action="store_true", help="continue a killed search exactly where it stopped")
    p.add_argument("--no-progress", action="store_true", default=False)


def _restart(p: argparse.ArgumentParser) -> None:
    p.add_argument("--restart", action="store_true",
                   help="start the search over in --out, replacing what is stored there (its config, state and "
                   "result): the way out when a resume finds the state missing or damaged")


def interrupted(args: argparse.Namespace) -> str:
    """The last line of an interrupted ``raynas search``: what the search (or pipeline run) directory keeps."""
    from raynas.cli.progress import interrupted_line

    return interrupted_line(getattr(args, "out", None),
                            "the same command" if args.method == "pipeline" else "--resume")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("search", help="run a search (robot, linucb, hnas, zero-shot, tenas) or the end-to-end pipeline")
    p.set_defaults(interrupted=interrupted)
    s = p.add_subparsers(dest="method", metavar="METHOD")
    s.required = True

    r = s.add_parser("robot", help="RoBoT: BO over metric-combination weights + greedy exploitation",
                     argument_default=_UNSET)
    _common(r)
    r.add_argument("--oracle", help="a benchmark table (`raynas list benchmarks`; default: the scored "
                   "space's) or train (real short training)")
    r.add_argument("--budget", type=int, default=20, help="T: distinct architectures queried")
    r.add_argument("--metrics", default="grad_norm,snip,grasp,fisher,synflow,jacob_cov")
    r.add_argument("--bo-iters", type=int, help="BO steps before greedy exploitation")
    r.add_argument("--transform", choices=["none", "signed_log"],
                   help="score transform before min-max normalisation")
    r.add_argument("--kernel", choices=["rbf_ard", "matern_iso"], help="GP covariance of the BO")
    r.add_argument("--n-init", type=positive_int, help="Sobol points before the GP (default 3)")
    r.add_argument("--acquisition", choices=["ucb", "logei"], help="BO acquisition (default ucb)")
    r.add_argument("--bo-patience", type=optional_count(1), help="end the BO phase after this many "
                   "proposals in a row of an already-queried arch (default 10; none: only --bo-iters ends it)")
    r.add_argument("--tie-break", choices=["earliest", "latest"], help="w* when several BO points share the best "
                   "value: the earliest (default) or the latest (the reference code's rule)")
    _gp_window(r)
    _allow_incomplete(r)
    _queries(r)
    _training(r)
    _restart(r)
    r.set_defaults(func=_run("robot"))

    u = s.add_parser("linucb", help="LinUCB: a linear bandit over the proxies (regress the query values on each "
                     "arch's proxies, query the best upper confidence bound)", argument_default=_UNSET,
                     description="Start: each proxy's top arch; then Bayesian linear regression of the "
                     "standardised query values on the min-max normalised proxies (+ intercept) and the unqueried "
                     "arch of the best x.mu + beta sqrt(x' Sigma x). Deterministic; the defaults were fixed before "
                     "its evaluation (docs/benchmarks.md, LinUCB).")
    _common(u)
    u.add_argument("--oracle", help="a benchmark table (`raynas list benchmarks`; default: the scored "
                   "space's) or train (real short training)")
    u.add_argument("--budget", type=int, default=20, help="T: distinct architectures queried")
    u.add_argument("--metrics", help="the proxies (default grad_norm,snip,grasp,fisher,synflow,jacob_cov)")
    u.add_argument("--ridge", type=float, help="prior precision lambda of the weights (default 10)")
    u.add_argument("--noise", type=float, help="noise variance sigma^2 of the standardised values (default 1)")
    u.add_argument("--beta", type=float, help="weight of the confidence width (default 1)")
    _allow_incomplete(u)
    _queries(u)
    _training(u)
    _restart(u)
    u.set_defaults(func=_run("linucb"))

    h = s.add_parser("hnas", help="HNAS: BO over the constants of the theory-derived objective",
                     argument_default=_UNSET)
    _common(h)
    h.add_argument("--oracle", help="a benchmark table (`raynas list benchmarks`; default: the scored "
                   "space's) or train (Ray Tune + ASHA)")
    h.add_argument("--budget", type=int, default=20)
    h.add_argument("--metric", default="ntk_trace", help="M: ntk_trace | grad_norm | snip | grasp")
    h.add_argument("--max-iters", type=positive_int, help="BO steps at most (default 3 x budget)")
    h.add_argument("--n-init", type=positive_int, help="Sobol points before the GP (default 3)")
    h.add_argument("--acquisition", choices=["ucb", "logei"], help="BO acquisition (default ucb)")
    h.add_argument("--scale", choices=["max", "median"],
                   help="how the measures are scaled in the objective (default max)")
    h.add_argument("--exclude-queried", action=argparse.BooleanOptionalAction,
                   help="the next query is the best arch not yet queried (default; the HNAS paper's rule); "
                        "--no-exclude-queried: a repeated arch is answered from the cache (searches made "
                        "before this default resume only with it)")
    h.add_argument("--patience", type=optional_count(1), help="end after this many BO steps in a "
                   "row re-proposed a queried arch (default 10; none: never)")
    _gp_window(h)
    _allow_incomplete(h)
    _queries(h)
    _training(h)
    _restart(h)
    h.set_defaults(func=_run("hnas"))

    z = s.add_parser("zero-shot", help="the top arch of a scored pool by a rank-aggregation rule, no queries",
                     argument_default=_UNSET)
    z.add_argument("--scores", required=True, help="run directory written by `raynas score` (the pool); several "
                   "joined with ':'")
    z.add_argument("--out", required=True, help="search directory (search.json, result.json)")
    z.add_argument("--rule", help="az (AZ-NAS: sum of log(rank/P), default) | rank_sum | revisit "
                   "(Revisit's nested ordinal rank sums) | vkdnw (VKDNW's sum of log(rank/P) over FLOPs, AZ-NAS's "
                   "three feature terms and vkdnw) | swap_reg (SWAP-NAS's regularised swap, needs --mu, --sigma)")
    z.add_argument("--metrics", help="comma-separated metric columns (default: the rule's; az and rank_sum: "
                   "the four az_nas_* terms, revisit: lwt_angle,lwt_loss,params, vkdnw: az_nas_complexity,"
                   "az_nas_expressivity,az_nas_progressivity,vkdnw,az_nas_trainability, swap_reg: swap,params)")
    z.add_argument("--mu", type=float, help="swap_reg: the centre of exp(-(params/1e3 - mu)^2 / sigma), "
                   "in thousands of parameters (no published default)")
    z.add_argument("--sigma", type=float, help="swap_reg: the width sigma of that factor, in "
                   "thousands of parameters squared")
    z.add_argument("--top", type=int, help="how many of the ranking the result lists (default 10)")
    z.add_argument("--resume", action="store_true", help="rerun into the same directory with the same config")
    z.add_argument("--no-progress", action="store_true", default=False)
    _allow_incomplete(z)
    z.set_defaults(func=_run("zero-shot"))

    t = s.add_parser("tenas", help="TE-NAS pruning search from the supernet",
                     argument_default=_UNSET)
    _common(t, scores=False)
    t.add_argument("--space", help="a space with TE-NAS supernets (default: raynas.spaces.DEFAULT_SPACE, "
                   "NAS-Bench-201; or darts_cifar)")
    t.add_argument("--data", default="digits")
    t.add_argument("--batch-size", type=int, help="NTK batch (default: the paper's, 72 NAS-Bench-201 / 14 DARTS)")
    t.add_argument("--repeats", type=int, help="NTK repeats averaged per measurement (default 3)")
    t.add_argument("--C", type=int, help="supernet width for the NTK (default: the paper's)")
    t.add_argument("--N", type=int, help="cells per stage of the NTK supernet")
    t.add_argument("--input-size", type=int, help="image side of the NTK batch")
    t.add_argument("--region-inputs", choices=["gaussian", "crops"],
                   help="linear-region inputs: Gaussian 3x3 (default) or 3x3 crops of the data, as the TE-NAS code")
    t.add_argument("--device", help="cpu | cuda | auto")
    t.set_defaults(func=_run("tenas"))

    e = s.add_parser(
        "pipeline",
        help="the main job: score a sample with Ray actors, RoBoT with real short training, report",
        description="End-to-end search on the embedded default (digits, no downloads). Settings come from the "
        "built-in defaults, then --config YAML (strict: unknown keys are errors), then --set KEY=VALUE overrides.",
    )
    e.add_argument("--config", default=None, help="YAML file with pipeline settings")
    e.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override one setting (YAML value)")
    e.add_argument("--out", required=True)
    e.add_argument("--address", default=None, help="run the whole job on the Ray cluster at ADDRESS (auto: the "
                   "running one): scoring actors, searches' training queries as Ray tasks, ASHA trials")
    e.add_argument("--no-progress", action="store_true")
    e.set_defaults(func=_run("pipeline"))


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["a.b=1", "c=x"]`` -> ``{"a": {"b": 1}, "c": "x"}`` with YAML-typed values."""
    import yaml

    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--set expects KEY=VALUE, got {item!r}")
        key, _, raw = item.partition("=")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            value = raw
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {item!r}: {part!r} is already set to a value, not a section")
        node[parts[-1]] = value
    return out


def _allow_incomplete(p: argparse.ArgumentParser) -> None:
    p.add_argument("--allow-incomplete", action="store_true",
                   help="search a score run with a missing config or missing, corrupt or failed shards (the result "
                        "lists them); without it such a run is refused")


def _gp_window(p: argparse.ArgumentParser) -> None:
    p.add_argument("--gp-max-points", type=optional_count(2), help="the most observations one GP "
                   "step is fitted on (default 256; none: all of them, each step slower than the last)")


def _queries(p: argparse.ArgumentParser) -> None:
    p.add_argument("--q", type=int, help="proposals in flight at once (q-batch BO; default 1)")
    p.add_argument("--query-backend", choices=["local", "ray"],
                   help="where --oracle train queries run: this process (local, default) or one Ray task each")
    p.add_argument("--address", help="Ray cluster of the query tasks with --query-backend ray "
                   "(auto: the running one; default: a local Ray)")
    p.add_argument("--gpus-per-query", type=float, help="GPUs of one query task (default 0)")
    p.add_argument("--cpus-per-query", type=float, help="CPUs of one query task (default 1)")
    p.add_argument("--query-retries", type=int, help="re-runs of a query whose worker died (default 2)")


#: the training flags' destinations: ``_TRAIN_DEST.<oracle_options key>.<field>`` (an empty key: top level)
_TRAIN_DEST = "oracle_options"


def _training(p: argparse.ArgumentParser) -> None:
    """The real-training oracle's settings as flags, generated from its typed configs: every field of
    :class:`raynas.training.TrainConfig` (but ``seed``, the search's ``--seed``), :class:`~raynas.training.QueryOptions`
    (the oracle's data and runtime options) and :class:`~raynas.training.NetworkSize` (the trained network's
    sizes, ``space_kwargs``). Only the flags given go into ``oracle_options``, so every other one keeps the
    oracle's default."""
    import dataclasses
    import typing

    from raynas.training import NetworkSize, QueryOptions, TrainConfig

    g = p.add_argument_group(
        "training oracle (--oracle train)",
        "real short training of each queried arch; flags not given keep the oracle's defaults (the full network of "
        "the scored space: C=16, N=5 for NAS-Bench-201). A query of seconds on a CPU: e.g. --epochs 1 --C 8 --N 1 "
        "--max-train 1024 (DARTS: --C 8 --layers 3)")
    for key, cls in (("train_cfg", TrainConfig), ("", QueryOptions), ("space_kwargs", NetworkSize)):
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if f.name == "seed":
                continue
            tp = next((a for a in typing.get_args(hints[f.name]) if a is not type(None)), hints[f.name])
            flag, dest = "--" + f.name.replace("_", "-"), f"{_TRAIN_DEST}.{key}.{f.name}"
            default = "the space's network's" if f.default is None and cls is NetworkSize else \
                "all" if f.default is None else f.default
            text = f"{f.metadata.get('help', f.name)} (default: {default})"
            if tp is bool:
                g.add_argument(flag, dest=dest, action=argparse.BooleanOptionalAction, help=text)
            else:
                g.add_argument(flag, dest=dest, type=positive_int if tp is int else tp, help=text,
                               metavar=f.name.upper())


def _oracle_options(cfg: dict[str, Any]) -> None:
    """Move the training flags given (:func:`_training`) into ``cfg["oracle_options"]``; refused (exit 2) unless
    the oracle is ``train``."""
    given = sorted(k for k in cfg if k.startswith(_TRAIN_DEST + "."))
    if not given:
        return
    if cfg.get("oracle") != "train":
        flags = ", ".join("--" + k.rpartition(".")[2].replace("_", "-") for k in given)
        raise ConfigError(f"{flags}: settings of the training oracle; they need --oracle train")
    opts: dict[str, Any] = {}
    for k in given:
        _, key, name = k.split(".")
        (opts.setdefault(key, {}) if key else opts)[name] = cfg.pop(k)
    cfg["oracle_options"] = opts


def _config(method: str, args: argparse.Namespace) -> dict[str, Any]:
    if method == "pipeline":
        overrides = parse_overrides(args.set)
        if args.address:
            overrides.setdefault("scoring", {})["address"] = args.address
        return {"config": args.config, "overrides": overrides, "out": args.out}
    skip = {"func", "method", "command", "log_level", "no_progress", "interrupted"}
    cfg = {k: v for k, v in vars(args).items() if k not in skip}  # only the flags given (_UNSET)
    _oracle_options(cfg)
    return cfg


def _run(method: str):
    def run(args: argparse.Namespace) -> int:
        cfg = _config(method, args)
        if method == "pipeline":
            from raynas.pipeline import run_pipeline

            call: Any = run_pipeline
        else:
            from raynas.search.registry import SEARCHES

            entry = SEARCHES.get(method)
            call, cfg = entry, entry.make_config(cfg)  # the typed config, built once from the arguments
        if args.no_progress:
            result = call(cfg)
        else:
            with progress_bar(method, unit="step") as update:
                result = call(cfg, progress_callback=update)
        if method == "pipeline":
            print(result["message"])
            for line in result.get("benchmark_lines") or []:
                print(line)
            print("report: " + " ".join(result["report"]))
            return 0
        from raynas.search.summary import summary_lines, trace_lines

        for line in trace_lines(result.pop("trace", None)):
            print(line)
        print(json.dumps(result, indent=2, default=str))
        for line in summary_lines(result):
            print(line)
        return 0

    return run
