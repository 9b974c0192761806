"""``raynas search METHOD|pipeline``: the registered searches (flags generated from their typed configs), and the
end-to-end main job."""

from __future__ import annotations

import argparse
import json
from typing import Any

from raynas.cli.argtypes import positive_int
from raynas.cli.progress import progress_bar
from raynas.errors import ConfigError

def interrupted(args: argparse.Namespace) -> str:
    """The last line of an interrupted ``raynas search``: what the search (or pipeline run) directory keeps."""
    from raynas.cli.progress import interrupted_line

    return interrupted_line(getattr(args, "out", None),
                            "the same command" if args.method == "pipeline" else "--resume")


#: the sections of a query search's config, in the order ``--help`` lists them (the rest: the search's own)
_SHARED = ("scores", "out", "oracle", "budget", "seed", "resume", "restart", "allow_incomplete", "q")


def add_parser(sub: argparse._SubParsersAction) -> None:
    """``raynas search METHOD`` for every registered search, and ``raynas search pipeline``.

    A method's flags are generated from its typed config (:mod:`raynas.cli.config_flags`) when that method is run
    (:func:`method_parser`): building them imports the search's module (torch, BoTorch), which ``raynas --help`` and
    the other commands must not pay for. So the method's subparser only collects its arguments."""
    from raynas.search.registry import SEARCHES

    p = sub.add_parser("search", help="run a search (" + ", ".join(SEARCHES.names()) + ") or the end-to-end pipeline",
                       description="`raynas search METHOD --help` lists every setting of METHOD.")
    p.set_defaults(interrupted=interrupted)
    s = p.add_subparsers(dest="method", metavar="METHOD")
    s.required = True
    for name in SEARCHES.names():
        m = s.add_parser(name, help=SEARCHES.get(name).doc, add_help=False, prefix_chars="\0")
        m.add_argument("argv", nargs=argparse.REMAINDER)  # parsed by method_parser(name) when run
        m.set_defaults(func=_run(name))

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


def method_parser(method: str) -> argparse.ArgumentParser:
    """The parser of ``raynas search METHOD``: one flag per setting of the method's typed config (its field's name,
    type, default and help), grouped as the pool and the search, the method's own settings, where the queries run,
    and the training oracle's settings (each generated from its config)."""
    import dataclasses

    from raynas.cli.config_flags import add_config_flags
    from raynas.search.registry import SEARCHES

    entry = SEARCHES.get(method)
    cls = entry.config_class()
    names = [f.name for f in dataclasses.fields(cls)]
    p = argparse.ArgumentParser(prog=f"raynas search {method}", description=entry.doc,
                                argument_default=argparse.SUPPRESS)
    from raynas.search.session import QueryPlacement, QuerySearchConfig

    if issubclass(cls, QuerySearchConfig):
        placement = [f.name for f in dataclasses.fields(QueryPlacement)]
        add_config_flags(p.add_argument_group("the pool and the search"), cls, _SHARED)
        own = [n for n in names if n not in _SHARED and n not in placement]
        add_config_flags(p.add_argument_group(f"{method} settings"), cls, own)
        add_config_flags(p.add_argument_group("where the queries run"), cls, placement)
    else:
        add_config_flags(p, cls, names)
    if "oracle_options" in names and dataclasses.fields(cls)[names.index("oracle_options")].metadata.get("cli") \
            == "training":
        _training(p)
    p.add_argument("--no-progress", action="store_true", default=False, help="no progress bar")
    return p


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
    if hasattr(args, "argv"):  # the method's own flags, parsed now (generated from its config: method_parser)
        vars(args).update(vars(method_parser(method).parse_args(args.__dict__.pop("argv"))))
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
