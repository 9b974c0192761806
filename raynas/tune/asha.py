"""ASHA over a fixed set of architectures with Ray Tune: partial training where it pays off.

One Tune trial per architecture string (a grid), each running :func:`raynas.tune.trainable.train_arch` for up to
``max_epochs`` epochs. ``ASHAScheduler(time_attr="training_iteration")`` (one iteration = one epoch) stops a
trial at rung ``grace_period * reduction_factor^k`` when its ``val_acc`` is below the top ``1/reduction_factor``
of the trials recorded at that rung, so poor architectures get few epochs and good ones the full schedule.

A trial that raises is recorded as ``failed`` with its error and the run goes on. The per-trial summary
(:class:`TrialResult`) is written as a Parquet table (``results_path``, default
``<storage_path>/<name>_trials.parquet``). ``resume=True`` continues an interrupted experiment with
``Tuner.restore`` (unfinished trials restart from their last checkpoint).

Ray is attached, started and stopped by :mod:`raynas.parallel.session` with the rules of every other Ray user of
raynas (``address``, ``"auto"`` or ``RAY_ADDRESS``; a local Ray otherwise, stopped afterwards), and one trial's
request is refused there before any trial is submitted when no node could ever run it (Tune would queue it
forever). Tune's log records go to a log file beside the experiment (``log_path``, default
``<storage_path>/<name>.log``); its advice about its own bookkeeping (:data:`QUIET_TUNE_LOGGERS`, e.g. "experiment
state snapshotting has been triggered multiple times") stays off the terminal unless it is an error.
"""

from __future__ import annotations

import contextlib
import functools
import dataclasses
import json
import logging
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

from raynas.config import from_dict, to_dict
from raynas.errors import ConfigError, SearchError, StoreError, one_line
from raynas.spaces import DEFAULT_SPACE
from raynas.store.search_dir import read_trials as read_trial_rows, write_trials as write_trial_rows
from raynas.training import TrainConfig

log = logging.getLogger(__name__)


def train_arch(config: dict[str, Any]) -> None:
    """The Ray Tune function trainable: :func:`raynas.tune.trainable.run_trial` bound to Tune's report/checkpoint."""
    from ray import tune

    from raynas.tune.trainable import run_trial

    run_trial(config, lambda m, d: tune.report(m, checkpoint=tune.Checkpoint.from_directory(d)),
              tune.get_checkpoint())


def make_trainable(cpus: float = 1.0, gpus: float = 0.0) -> Any:
    """:func:`train_arch` with its per-trial resources declared for Tune's scheduler.

    A fresh wrapper per call: ``tune.with_resources`` stores the request on the function object itself.
    """
    from ray import tune

    @functools.wraps(train_arch)
    def trial(config: dict[str, Any]) -> None:
        train_arch(config)

    return tune.with_resources(trial, {"cpu": cpus, "gpu": gpus})


#: how one trial's resources are set (:func:`run_asha`'s arguments), named when a request is refused
TRIAL_FLAGS = {"GPU": "gpus_per_trial={}", "CPU": "cpus_per_trial={}"}

#: Ray Tune loggers whose warnings are advice about Tune's own bookkeeping, printed on every short-epoch run
#: (raynas keeps ``num_to_keep=2`` checkpoints per trial on purpose, so each checkpoint forces a state snapshot):
#: below ERROR they go to the log file only (:func:`tune_log`)
QUIET_TUNE_LOGGERS = ("ray.tune.execution.experiment_state",)

#: the loggers whose records :func:`tune_log` writes to its file (Tune's, and Ray Train's under it)
TUNE_LOGGERS = ("ray.tune", "ray.train")


def require_trials(cpus_per_trial: float, gpus_per_trial: float, address: str | None = None,
                   flags: Mapping[str, str] | None = None) -> bool:
    """Refuse ASHA trials no node can run (:func:`raynas.parallel.session.require` of one trial's request).

    Args:
        cpus_per_trial: CPUs of one trial.
        gpus_per_trial: GPUs of one trial (fractional allowed).
        address: the cluster named (only for the message, and for the check before Ray is attached).
        flags: how the caller's user sets each resource (default :data:`TRIAL_FLAGS`).

    Returns:
        False when nothing could be checked yet (a cluster named and Ray not attached), else True.

    Raises:
        ResourceRequestError: (a :class:`~raynas.errors.ConfigError`) no node can ever run one trial.
    """
    from raynas.parallel import session

    return session.require({"CPU": cpus_per_trial, "GPU": gpus_per_trial}, who="an ASHA trial",
                           flags=dict(flags or TRIAL_FLAGS), address=address)


class _OffTerminal(logging.Filter):
    """Drops, on the handler it is added to, the records of :data:`QUIET_TUNE_LOGGERS` below ERROR."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR:
            return True
        return not any(record.name == n or record.name.startswith(n + ".") for n in QUIET_TUNE_LOGGERS)


def _terminal_handlers() -> list[logging.Handler]:
    """The handlers a Tune record reaches after the Tune loggers: those of Ray's ``ray`` logger (Ray's own
    stderr handler) and, while a logger on the way propagates, those of its ancestors (root's, e.g. the CLI's)."""
    handlers: list[logging.Handler] = []
    logger: logging.Logger | None = logging.getLogger("ray")
    while logger is not None:
        handlers.extend(logger.handlers)
        logger = logger.parent if logger.propagate else None
    return handlers


@contextlib.contextmanager
def tune_log(path: str | Path) -> Iterator[Path]:
    """Within the block, every record of :data:`TUNE_LOGGERS` (at the level Ray's logger lets through) is
    appended to the file ``path`` (created with its folder on the first record, never empty), and the records of
    :data:`QUIET_TUNE_LOGGERS` below ERROR are kept off every other handler (the terminal).

    Args:
        path: the log file (appended to: a resumed experiment adds to it).

    Returns:
        (yields) ``path`` as a :class:`~pathlib.Path`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    to_file = logging.FileHandler(path, encoding="utf-8", delay=True)
    to_file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    sources = [logging.getLogger(n) for n in TUNE_LOGGERS]
    for logger in sources:
        logger.addHandler(to_file)
    quiet = _OffTerminal()
    terminal = [h for h in _terminal_handlers() if h is not to_file]
    for h in terminal:
        h.addFilter(quiet)
    try:
        yield path
    finally:
        for h in terminal:
            h.removeFilter(quiet)
        for logger in sources:
            logger.removeHandler(to_file)
        to_file.close()


@dataclass(frozen=True)
class TrialResult:
    """One architecture's ASHA trial. ``val_acc``: best validation accuracy (%) over its epochs (None if it never
    reported). ``status``: ``completed`` (ran ``max_epochs``), ``stopped`` (ASHA stopped it early) or ``failed``."""

    arch: str
    val_acc: float | None
    epochs: int
    stopped_early: bool
    checkpoint: str | None
    status: str
    error: str | None = None
    trial_id: str = ""

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def best_trial(trials: Sequence[TrialResult]) -> TrialResult:
    """The trial with the best ``val_acc`` (ties: more epochs, then input order)."""
    ok = [t for t in trials if t.val_acc is not None and math.isfinite(t.val_acc)]
    if not ok:
        raise SearchError("no ASHA trial reported a validation accuracy")
    return max(ok, key=lambda t: (t.val_acc, t.epochs))


def _arch_of(result: Any) -> str | None:
    """The trial's arch; a restored trial that failed before reporting has no config, only ``params.json``."""
    if result.config:
        return result.config.get("arch")
    params = Path(result.path) / "params.json" if result.path else None
    if params is not None and params.is_file():
        try:
            return json.loads(params.read_text()).get("arch")
        except (OSError, ValueError):
            return None
    return None


def _summarise(result: Any, max_epochs: int, arch: str) -> TrialResult:
    df = result.metrics_dataframe
    has = df is not None and len(df) > 0 and "val_acc" in df
    acc = float(df["val_acc"].max()) if has else None
    epochs = int(df["epoch"].max()) if has and "epoch" in df else 0
    best = None
    if has:
        ckpt = result.get_best_checkpoint("val_acc", "max") or result.checkpoint
        best = ckpt.path if ckpt is not None else None
    failed = result.error is not None
    status = "failed" if failed else ("completed" if epochs >= max_epochs else "stopped")
    trial_id = str((result.metrics or {}).get("trial_id") or (Path(result.path).name if result.path else ""))
    return TrialResult(arch, acc, epochs, status == "stopped", best, status,
                       one_line(result.error, remote=True) if failed else None, trial_id)


def write_trials(path: str | Path, trials: Sequence[TrialResult]) -> None:
    """Atomically write the per-trial table as Parquet (:func:`raynas.store.search_dir.write_trials`)."""
    write_trial_rows(path, [t.as_dict() for t in trials])


def read_trials(path: str | Path) -> list[TrialResult]:
    """The trials :func:`write_trials` wrote; a missing or damaged table is a :class:`StoreError`."""
    return [TrialResult(**r) for r in read_trial_rows(path)]


def run_asha(arch_strs: Sequence[str], space: str = DEFAULT_SPACE, dataset: str = "digits",
             train_cfg: TrainConfig | Mapping[str, Any] | None = None, max_epochs: int = 4, grace_period: int = 1,
             reduction_factor: int = 2, gpus_per_trial: float = 0.0, storage_path: str | Path = "ray_results",
             name: str = "asha", resume: bool = False, *, cpus_per_trial: float = 1.0,
             space_kwargs: Mapping[str, Any] | None = None, input_size: int = 32, max_train: int | None = None,
             max_val: int | None = None, device: str = "auto", max_concurrent_trials: int | None = None,
             results_path: str | Path | None = None,
             check_resources: Callable[[], Any] | None = None, address: str | None = None,
             log_path: str | Path | None = None) -> list[TrialResult]:
    """ASHA over ``arch_strs`` (see module docstring); one :class:`TrialResult` per distinct arch, input order.

    ``train_cfg.epochs`` is replaced by ``max_epochs`` (the cosine schedule spans the longest trial). Ray: an
    initialised one is used as it is; else ``address`` (``"auto"``, or None and ``RAY_ADDRESS``) is joined, or a
    local Ray is started, and left or stopped afterwards (:func:`raynas.parallel.session.attached`).
    ``check_resources()`` is called once Ray is up, before any trial, in place of :func:`require_trials` (it raises
    to refuse trials no node can run: Tune would queue them forever). Tune's log records go to ``log_path``
    (default ``<storage_path>/<name>.log``, :func:`tune_log`).

    Raises:
        ResourceRequestError: no node of the Ray used can run one trial (before any trial starts).
        ConfigError: bad ASHA settings, or a new experiment whose directory exists.
        SearchError: no architecture.
        RaynasError: the cluster named cannot be reached.
    """
    from ray import tune  # Ray is imported on use: results can be read back (read_trials) without it
    from ray.tune.schedulers import ASHAScheduler

    from raynas.parallel import session

    archs = list(dict.fromkeys(arch_strs))
    if not archs:
        raise SearchError("ASHA needs at least one architecture")
    if max_epochs < 1 or not 1 <= grace_period <= max_epochs or reduction_factor < 2:
        raise ConfigError(f"need max_epochs >= 1, 1 <= grace_period <= max_epochs and reduction_factor >= 2, got "
                          f"{max_epochs}, {grace_period}, {reduction_factor}")
    if train_cfg is None:
        train_cfg = TrainConfig()
    elif isinstance(train_cfg, Mapping):
        train_cfg = from_dict(TrainConfig, train_cfg)
    train_cfg = dataclasses.replace(train_cfg, epochs=max_epochs)
    storage = Path(storage_path).resolve()  # Tune needs an absolute storage path
    exp_path = storage / name
    param_space = {"arch": tune.grid_search(archs), "space": space, "space_kwargs": dict(space_kwargs or {}),
                   "dataset": dataset, "input_size": input_size, "max_train": max_train, "max_val": max_val,
                   "train": to_dict(train_cfg), "device": device}
    trainable = make_trainable(cpus_per_trial, gpus_per_trial)
    with session.attached(address):
        if check_resources is not None:
            check_resources()
        else:
            require_trials(cpus_per_trial, gpus_per_trial, address)
        if resume and tune.Tuner.can_restore(str(exp_path)):
            log.info("resuming ASHA experiment %s", exp_path)
            tuner = tune.Tuner.restore(str(exp_path), trainable, resume_unfinished=True, resume_errored=False)
        else:
            if exp_path.exists() and not resume:
                raise ConfigError(f"ASHA experiment {exp_path} exists; resume it or choose another name")
            scheduler = ASHAScheduler(metric="val_acc", mode="max", time_attr="training_iteration",
                                      max_t=max_epochs, grace_period=grace_period, reduction_factor=reduction_factor)
            tuner = tune.Tuner(
                trainable, param_space=param_space,
                # reusing actors saves a worker start (torch import) per trial and keeps the per-worker data cache
                tune_config=tune.TuneConfig(scheduler=scheduler, max_concurrent_trials=max_concurrent_trials,
                                            reuse_actors=True),
                run_config=tune.RunConfig(
                    name=name, storage_path=str(storage), verbose=0,
                    failure_config=tune.FailureConfig(max_failures=0, fail_fast=False),
                    checkpoint_config=tune.CheckpointConfig(num_to_keep=2, checkpoint_score_attribute="val_acc",
                                                            checkpoint_score_order="max")))
        # Tune prints its experiment banner and trial errors to stdout whatever the verbosity; stdout belongs to
        # the caller (the CLI prints its JSON result there), so send them to stderr
        with tune_log(log_path if log_path is not None else storage / f"{name}.log") as tune_file, \
                contextlib.redirect_stdout(sys.stderr):
            grid = tuner.fit()
    if tune_file.is_file():
        log.info("Ray Tune's log: %s", tune_file)
    by_arch = {}
    for i in range(len(grid)):
        arch = _arch_of(grid[i])
        if arch is None:
            log.warning("ASHA trial at %s has no recorded arch; left out", grid[i].path)
            continue
        by_arch[arch] = _summarise(grid[i], max_epochs, arch)
    missing = [a for a in archs if a not in by_arch]
    if missing:
        raise StoreError(f"ASHA experiment {exp_path} has no trial for {missing} (restored a different run?)")
    trials = [by_arch[a] for a in archs]
    for t in trials:
        log.info("ASHA %s: %s after %d epochs, val acc %s", t.arch, t.status, t.epochs, t.val_acc)
    write_trials(results_path if results_path is not None else storage / f"{name}_trials.parquet", trials)
    return trials
