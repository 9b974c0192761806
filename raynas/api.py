"""The Python API of raynas, and the library entry points the CLI calls (one function per command).

For scripts and notebooks (each also importable from the top-level package, e.g. ``raynas.score``):

- :func:`score`: score architectures of a search space into a run directory (``raynas score``);
- :func:`search`: a search over a scored pool, RoBoT / HNAS / TE-NAS (``raynas search METHOD``);
- :func:`score_models`: score your own ``nn.Module`` objects or model factories (no run directory);
- :func:`read_scores`: a run's scores as the wide table (one row per arch, one column per metric);
- :func:`export_scores`: that table written as CSV or Parquet (``raynas export``).

They are thin wrappers over :func:`raynas.parallel.run_scoring`, the search entry points of
:mod:`raynas.search` and :func:`raynas.metrics.engine.compute_metrics`: same configs, same checks, same
typed errors (:class:`~raynas.errors.RaynasError` subclasses).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping, Sequence, Union

if TYPE_CHECKING:
    import pyarrow as pa
    import torch.nn as nn

log = logging.getLogger(__name__)

#: a model :func:`score_models` accepts: a module (scored as it is) or a zero-argument factory returning one
ModelLike = Union["nn.Module", Callable[[], "nn.Module"]]


def describe_registry(what: str) -> Iterator[str]:
    """One line per registered entry of ``what`` (spaces, metrics, datasets, oracles, benchmarks)."""
    if what == "metrics":
        from raynas.metrics import METRICS, list_metrics

        for name in list_metrics():
            s = METRICS.get(name)
            flags = [
                "labels" if s.needs_labels else "no-labels",
                "data" if s.needs_data else "data-free",
                f"bn={s.bn}",
                str(s.dtype).replace("torch.", ""),
                "higher-better" if s.higher_is_better else "lower-better",
            ]
            yield f"{name:18s} {' '.join(flags):60s} {s.reference}"
    elif what == "spaces":
        from raynas.spaces import create_space, list_spaces

        for name in list_spaces():
            yield f"{name:16s} size={create_space(name).size}"
    elif what == "datasets":
        from raynas.data import DATASETS

        for name in DATASETS.names():
            yield name
    elif what == "oracles":
        for name, doc in cli_oracles().items():
            yield f"{name:8s} {doc}"
    elif what == "benchmarks":
        from raynas.spaces import create_benchmark, list_benchmarks

        for name in list_benchmarks():
            b = create_benchmark(name)
            finals = ", ".join(f"{ds}: {b.label(col)}" for ds, col in b.finals.items())
            yield (f"{name:8s} space={b.space} query: {b.label(b.query_column)}; cost: {b.label(b.cost_column)}; "
                   f"final ({finals}); table {b.default_path()} ({b.availability()})")


def cli_oracles() -> dict[str, str]:
    """The oracles ``--oracle NAME`` accepts, name -> the first paragraph of its docstring.

    ``raynas search`` builds an oracle by name alone (:func:`raynas.search.runner.make_oracle`), so only a
    registered oracle whose factory needs no argument can be named; ``callable`` wraps a Python function and
    exists for the Python API only. ``train`` registers itself when its module is imported, hence the import.
    """
    import inspect

    import raynas.oracles.training  # noqa: F401 - registers "train" in ORACLES
    from raynas.oracles.base import ORACLES

    out: dict[str, str] = {}
    for name in ORACLES.names():
        factory = ORACLES.get(name)
        try:
            params = inspect.signature(factory).parameters.values()
        except (TypeError, ValueError):  # no introspectable signature: cannot tell, so list it
            params = []  # type: ignore[assignment]
        required = [p for p in params if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD,
                                                                             p.KEYWORD_ONLY)]
        if required:
            continue
        first_paragraph = (inspect.getdoc(factory) or "").strip().split("\n\n")[0]
        out[name] = " ".join(first_paragraph.replace("``", "").split())
    return out


def score(
    out: str | Path,
    *,
    space: str | None = None,
    metrics: str | Sequence[str] = "all",
    sample: int | None = None,
    all: bool = False,  # noqa: A002 - the ScoreConfig / `raynas score --all` name
    ids: Sequence[int] | None = None,
    seed: int = 0,
    data: str = "digits",
    batch_size: int = 64,
    image_size: int = 32,
    space_kwargs: Mapping[str, Any] | None = None,
    shard_size: int | None = None,
    workers: int = 1,
    gpus_per_worker: float = 0.0,
    cpus_per_worker: float = 1.0,
    address: str | None = None,
    resume: bool = False,
    force: bool = False,
    max_retries: int = 3,
    shard_timeout_s: float | None = None,
    progress: Callable[[int, int, float | None, float | None], None] | None = None,
    arch_batch: int | None = None,
    channels_last: bool | None = None,
) -> dict[str, Any]:
    """Score architectures of ``space`` with training-free metrics into the run directory ``out``.

    The same run as ``raynas score`` (:class:`raynas.parallel.ScoreConfig` documents every key): one Parquet
    shard per ``shard_size`` archs, written atomically; ``resume=True`` continues a killed run.

    Args:
        out: the run directory (``out/config.json``, ``out/scores/shard-*.parquet``).
        space: search space name (``raynas list spaces``; None: ``raynas.spaces.DEFAULT_SPACE``).
        metrics: ``"all"``, a comma-separated string or a sequence of metric names.
        sample, all, ids: exactly one selects the archs: ``sample`` archs drawn by ``seed``, the whole space,
            or these indices.
        seed: seeds the sample, the batch and every metric.
        data: dataset spec: ``digits``, ``noise``, ``cifar10:PATH``, ``folder:PATH``.
        batch_size, image_size: the fixed scoring batch.
        space_kwargs: network options (NAS-Bench-201: ``{"C": 16, "N": 5}``).
        shard_size: archs per shard file (None: the default, 25).
        workers: Ray scoring actors; ``0`` scores in this process without starting Ray.
        gpus_per_worker, cpus_per_worker, address: Ray resources and cluster (None: a local Ray).
        resume, force: continue a run (``force``: even if the stored config differs).
        max_retries, shard_timeout_s: retries of a shard whose actor died; per-shard deadline in seconds.
        progress: called ``(archs_done, archs_total, archs_per_s, eta_s)`` as shards finish.
        arch_batch: archs scored together in one stacked network (the batched engine; same values as 1; None:
            the config's default).
        channels_last: the per-arch engine runs each network and batch in ``channels_last`` memory format
            (values equal within float32 rounding; None: the config's default, off, or the stored run's).
    Returns:
        the run summary (``archs``, ``scored``, ``error_rows``, ``corrupt_shards``, ``seconds``, ...).
    Raises:
        ConfigError: bad settings (unknown metric, no/several selections). StoreError: ``out`` already holds
            a run (without ``resume``), a different one, or cannot be written.
    """
    from raynas.parallel import ScoreConfig, run_scoring

    if space is None:
        from raynas.spaces import DEFAULT_SPACE

        space = DEFAULT_SPACE
    cfg: dict[str, Any] = {
        "out": str(out), "space": space, "metrics": metrics if isinstance(metrics, str) else tuple(metrics),
        "sample": sample, "all": all, "ids": tuple(int(i) for i in ids) if ids is not None else None, "seed": seed,
        "data": data, "batch_size": batch_size, "image_size": image_size, "space_kwargs": dict(space_kwargs or {}),
        "workers": workers, "gpus_per_worker": gpus_per_worker, "cpus_per_worker": cpus_per_worker,
        "address": address, "resume": resume, "force": force, "max_retries": max_retries,
        "shard_timeout_s": shard_timeout_s,
    }
    if shard_size is not None:
        cfg["shard_size"] = shard_size
    if arch_batch is not None:
        cfg["arch_batch"] = arch_batch
    if channels_last is not None:
        cfg["channels_last"] = channels_last
    return run_scoring(ScoreConfig.from_dict(cfg), progress)


def search(
    method: str,
    out: str | Path,
    *,
    scores: str | Path | Sequence[str | Path] | None = None,
    oracle: str | None = None,
    budget: int | None = None,
    seed: int = 0,
    resume: bool = False,
    progress: Callable[..., None] | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Run (or resume) a search, as ``raynas search METHOD``; returns its result dict.

    Args:
        method: a name of :data:`raynas.search.registry.SEARCHES`: ``"robot"``
            (:class:`raynas.search.runner.RobotSearchConfig`), ``"hnas"``
            (:class:`raynas.search.hnas_run.HNASSearchConfig`) or ``"tenas"``
            (:class:`raynas.pruning.run.TenasConfig`; it needs no scores, oracle or budget).
        out: the search directory (``search.json``, ``state.parquet``, ``result.json``).
        scores: the scored pool: a run directory written by :func:`score`, or several (a sequence, or joined
            with ``os.pathsep``) whose common archs form the pool.
        oracle: a benchmark's name (its table, ``raynas list benchmarks``) or ``"train"`` (real short training;
            shape it with ``oracle_options``, e.g. ``{"train_cfg": {"epochs": 1}, "max_train": 256}``); None: the
            method's default (the scored space's benchmark table).
        budget: distinct architectures queried (None: the method's default).
        seed: the search's seed.
        resume: continue a killed search in ``out`` exactly where it stopped.
        progress: called ``(queries_done, budget)`` after each step.
        options: any further key of the method's config (e.g. ``metrics`` for RoBoT, a sequence or a
            comma-separated string; ``metric`` for HNAS; ``data`` for TE-NAS). Unknown keys are a ConfigError.
            RoBoT and HNAS take ``q`` (proposals in flight at once, q-batch BO) and, for ``oracle="train"``,
            ``query_backend="ray"`` with ``address``, ``gpus_per_query``, ``cpus_per_query``, ``query_retries``
            (each query a Ray task, :class:`raynas.search.runner.QueryPlacement`).
    Returns:
        the method's result dict: ``arch_index``, ``arch``, ``value``, ``final``, ``queries``, ``cost``, ...
    Raises:
        ConfigError: unknown method or option. SearchError / StoreError / OracleError: as the method raises.
    """
    from raynas.search.registry import SEARCHES

    entry = SEARCHES.get(method)  # unknown: UnknownNameError with the close matches
    cfg: dict[str, Any] = {"out": str(out), "seed": seed, "resume": resume, **options}
    if scores is not None:
        cfg["scores"] = str(scores) if isinstance(scores, (str, Path)) else os.pathsep.join(str(s) for s in scores)
    if oracle is not None:
        cfg["oracle"] = oracle
    if budget is not None:
        cfg["budget"] = budget
    if "metrics" in cfg and not isinstance(cfg["metrics"], str):  # any sequence of names: the config's tuple
        cfg["metrics"] = tuple(cfg["metrics"])
    return entry(cfg, progress_callback=progress)  # the typed config is built (strictly) here, once


def score_models(
    models: Sequence[ModelLike] | Mapping[str, ModelLike],
    *,
    metrics: str | Sequence[str],
    data: str = "digits",
    batch_size: int = 64,
    image_size: int = 32,
    seed: int = 0,
    device: str = "cpu",
    fused: bool = True,
) -> "pa.Table":
    """Score your own networks with the training-free metrics (no search space, nothing written to disk).

    Args:
        models: networks as a sequence (named ``"0"``, ``"1"``, ...) or a name -> network mapping. Each is an
            ``nn.Module`` (scored with its current weights; the engine works on copies, the module is not
            changed) or a zero-argument callable returning a fresh module (called under ``seed``). A network
            takes ``[B, 3, image_size, image_size]`` inputs and returns ``[B, num_classes]`` logits (10 for
            ``digits``; ``noise`` takes ``noise:K``).
        metrics: metric names (a sequence or a comma-separated string; ``"all"`` for every metric).
        data, batch_size, image_size, seed: the fixed scoring batch (:func:`raynas.data.create_batch`) and
            the seed of every metric.
        device: ``"cpu"`` or ``"cuda"``.
        fused: share forward/backward passes between metrics (same values, faster; as ``raynas score``).
    Returns:
        the rows in the store's long schema (:data:`raynas.store.SCHEMA`): ``space="custom"``,
        ``arch_index`` = position, ``arch`` = name, one row per (model, metric) with its ``value``,
        ``status`` (``ok``, ``nan``, ``error``, ``oom``) and ``error`` text. :func:`raynas.store.to_wide`
        pivots it to one row per model.
    Raises:
        ConfigError: an entry is neither a module nor a callable, or an unknown metric name.
    """
    import copy
    import socket

    import pyarrow as pa
    import torch.nn as nn

    from raynas.data import create_batch
    from raynas.errors import ConfigError, UnknownNameError
    from raynas.metrics import resolve_metric_names
    from raynas.metrics.engine import compute_metrics
    from raynas.parallel.scoring import error_results
    from raynas.store.schema import empty_table, results_to_table

    items = list(models.items()) if isinstance(models, Mapping) else [(str(i), m) for i, m in enumerate(models)]
    factories = []
    for name, m in items:
        if isinstance(m, nn.Module):
            factories.append(lambda m=m: copy.deepcopy(m))
        elif callable(m):
            factories.append(m)
        else:
            raise ConfigError(f"model {name!r} must be an nn.Module or a callable returning one, "
                              f"got {type(m).__name__}")
    names = resolve_metric_names(metrics if isinstance(metrics, str) else list(metrics))
    batch = create_batch(data, batch_size=batch_size, seed=seed, size=image_size)
    host = socket.gethostname()
    tables = []
    for i, ((name, _), factory) in enumerate(zip(items, factories)):
        try:
            results = compute_metrics(factory, batch, names, device=device, seed=seed, fused=fused)
        except UnknownNameError:
            raise
        except Exception as exc:  # noqa: BLE001 - a factory that fails becomes error rows, the others are scored
            log.warning("model %s cannot be built (%s: %s)", name, type(exc).__name__, exc)
            results = error_results(names, f"build failed: {type(exc).__name__}: {exc}", str(device))
        tables.append(results_to_table("custom", i, str(name), seed, batch.name, results, host))
    return pa.concat_tables(tables) if tables else empty_table()


def read_scores(run_dir: str | Path) -> "pa.Table":
    """A run's scores as the wide table: one row per ``(space, arch_index, arch, seed)``, one float64 column
    per metric (null where the metric did not succeed). See :func:`raynas.store.to_wide`.

    Raises:
        StoreError: ``run_dir`` holds no score shards.
    """
    from raynas.errors import StoreError
    from raynas.store import open_store

    store = open_store(run_dir)
    if not store.shard_ids():
        raise StoreError(f"{run_dir} is not a score run (no scores/shard-*.parquet)")
    return store.read_wide()


def export_scores(run_dir: str | Path, fmt: str | None = None, out: str | Path | None = None) -> Path:
    """Write :func:`read_scores` atomically as CSV or Parquet; returns the written path (``raynas export``).

    Args:
        run_dir: a score run directory.
        fmt: ``"csv"`` or ``"parquet"``; None: from ``out``'s suffix, else ``"csv"``.
        out: the output file (default ``RUN_DIR/scores_wide.<fmt>``).
    Raises:
        ConfigError: unknown format, ``out``'s suffix names none and ``fmt`` is not given, or ``out``'s suffix
            names the other format than ``fmt``.
        StoreError: not a score run, or ``out`` cannot be written.
    An incomplete run (missing, corrupt, failed shards) is exported with a logged warning naming the problems.
    """
    from raynas.errors import ConfigError
    from raynas.parallel import open_run
    from raynas.store import EXPORT_FORMATS

    if fmt is None:
        suffix = Path(out).suffix.lstrip(".").lower() if out is not None else "csv"
        if suffix not in EXPORT_FORMATS:
            raise ConfigError(f"cannot tell the export format from {out!r}; give --format "
                              f"({' or '.join(EXPORT_FORMATS)}) or an --out ending in .csv or .parquet")
        fmt = suffix
    elif out is not None and Path(out).suffix.lstrip(".").lower() in EXPORT_FORMATS \
            and Path(out).suffix.lstrip(".").lower() != str(fmt).lower():
        # ``--format csv --out x.parquet`` would write CSV bytes under a Parquet name: a reader fails later
        raise ConfigError(f"--format {fmt} contradicts --out {str(out)!r} (a .{Path(out).suffix.lstrip('.')} "
                          f"file); give one of them, or an --out ending in .{fmt}")
    store = open_run(run_dir)
    path = store.export_wide(fmt, out)
    c = store.completeness()
    if not c.complete:
        log.warning("%s: exported an incomplete run (%s): %s", run_dir, c.summary(), "; ".join(c.problems()))
    return path


def show_run(run_dir: str | Path) -> Iterator[str]:
    """Status lines of a score run: config, completeness (shards planned / done / missing / corrupt / with
    failed rows, archs of the planned total), rows by metric and status (NaN values stored as ``ok`` count
    as ``nan``, see :meth:`raynas.store.ScoreStore.read`)."""
    import json

    from raynas.errors import StoreError
    from raynas.parallel import open_run

    run = Path(run_dir)
    if not run.exists():
        raise StoreError(f"{run} does not exist")
    if not run.is_dir():
        raise StoreError(f"{run} is not a directory (a score run is a directory with scores/ and config.json)")
    store = open_run(run)
    if not store.exists():
        raise StoreError(f"{run} is not a score run directory (no scores/ and no config.json)")
    full_cfg = store.load_config() or {}
    cfg = full_cfg.get("identity", full_cfg)
    c = store.completeness()
    table = store.read(["arch_index", "metric", "status"])
    yield f"run: {run}"
    if cfg:
        shown = {k: cfg.get(k) for k in ("space", "metrics", "sample", "all", "seed", "data", "batch_size") if k in cfg}
        yield f"config: {json.dumps(shown, default=str)}"
    yield f"shards: {len(c.present_shards)} done" + (
        f", {len(c.missing_shards)} missing" if c.planned_shards is not None else "") + (
        f", {len(c.corrupt_shards)} corrupt" if c.corrupt_shards else "") + (
        f", {len(c.failed_shards)} with failed rows" if c.failed_shards else "")
    yield f"completeness: {c.summary()}"
    for problem in c.problems():
        yield f"  {problem}"
    if table.num_rows:
        yield f"archs scored: {c.archs_present}"
        df = table.select(["metric", "status"]).to_pandas()
        counts = df.groupby(["metric", "status"]).size().unstack(fill_value=0)
        yield "rows by metric and status:"
        for line in counts.to_string().splitlines():
            yield f"  {line}"
        failed = counts.drop(columns=["ok"], errors="ignore").sum().sum()
        yield f"failed rows: {int(failed)}"
    else:
        yield "archs scored: 0"
