"""The configuration of one scoring run (``raynas score``), strict and frozen.

Keys split in two groups. *Identity* keys decide which rows a run produces (space, metrics, archs, seed, data,
shard plan): a resumed run must repeat them exactly, so they are compared with the stored config. *Volatile*
keys only decide how the work is executed (where, on how many actors, whether resuming): they may change
between a run and its resume.
"""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from raynas.config import from_dict, to_dict
from raynas.errors import ConfigError
from raynas.spaces import DEFAULT_SPACE
from raynas.store import VOLATILE_KEYS  # keys that may differ between a run and its resume (the store's one list)

#: keys of a stored run config that are derived from the fields, not fields themselves (:meth:`ScoreConfig.task_loss`):
#: compared on resume, dropped when a stored config is read back into a :class:`ScoreConfig`
DERIVED_KEYS: tuple[str, ...] = ("task_loss",)

#: identity keys a ``force``d resume may change: more metrics (only new (arch, metric) pairs are scored) and the
#: shard plan. Everything else (space, selection, seed, data, batch, network options) decides the values of rows
#: already stored, so changing it would mix two runs in one directory under one config.
FORCE_MAY_CHANGE: tuple[str, ...] = ("metrics", "shard_size")

#: archs per shard file when not given: small enough that a crash loses little work and progress is smooth,
#: large enough that per-shard overhead (one Parquet file, one Ray round trip) stays negligible.
DEFAULT_SHARD_SIZE = 25

#: archs the batched engine scores in one stacked network when not given (``arch_batch``). 1 (the per-arch fused
#: engine) until ``scripts/bench_throughput.py`` has measured the batched engine on a GPU, where it is meant to
#: pay off (README, Benchmarks). Execution only: equal values at any setting.
DEFAULT_ARCH_BATCH = 1

#: ``--all`` materialises the id list; beyond this the user must sample (DARTS has ~1e18 archs).
MAX_ALL_SIZE = 10_000_000


@dataclass(frozen=True, kw_only=True)
class ScoreConfig:
    """One scoring run.

    Exactly one of ``sample`` (N archs drawn by ``seed``), ``all`` (the whole space) or ``ids`` selects the
    archs. ``metrics`` is ``("all",)``, a tuple of names, or a comma-separated string (normalised to a tuple).
    ``space_kwargs`` go to ``space.to_module`` (for NAS-Bench-201: ``C``, ``N``). ``workers=0`` scores in-process
    without Ray; ``gpus_per_worker`` may be fractional (several actors share one GPU).
    """

    out: str
    space: str = DEFAULT_SPACE
    metrics: tuple[str, ...] | str = ("all",)
    sample: int | None = None
    all: bool = False
    ids: tuple[int, ...] | None = None
    seed: int = 0
    data: str = "digits"
    batch_size: int = 64
    image_size: int = 32
    space_kwargs: dict[str, Any] = field(default_factory=dict)
    shard_size: int = DEFAULT_SHARD_SIZE
    workers: int = 1
    gpus_per_worker: float = 0.0
    cpus_per_worker: float = 1.0
    address: str | None = None
    resume: bool = False
    force: bool = False
    #: resume a run whose ``config.json`` is gone: rebuild it from what the shards hold (space, seed, data, batch
    #: size, image size, metrics, archs; :func:`raynas.parallel.run.adopted_defaults`) and the keys given
    adopt: bool = False
    max_retries: int = 3
    #: seconds a shard may run on an actor before the actor is killed (and restarted) and the shard retried;
    #: ``None``: no deadline. Guards against a hung worker (a deadlocked kernel, a stuck device) blocking a run.
    shard_timeout_s: float | None = None
    #: modules defining metrics registered outside raynas (``@register_metric``): imported before the metric
    #: names are resolved, here and in every scoring actor. Modules of such metrics already imported by the
    #: caller are found on their own (:func:`plugin_modules`) and recorded in the saved config.
    metric_modules: tuple[str, ...] = ()
    #: archs scored together in one stacked network by the batched engine (:mod:`raynas.metrics.batched`);
    #: 1: one arch at a time (the fused engine). Execution only (a volatile key): the values are the same.
    arch_batch: int = DEFAULT_ARCH_BATCH
    #: the per-arch engine puts each network's 4-d weights and the batch's 4-d inputs in ``torch.channels_last``
    #: memory format (``compute_metrics(channels_last=True)``): faster convolutions where the kernels prefer it
    #: (docs/benchmarks.md), values equal within float32 rounding (``tests/metrics/test_memory_format.py``).
    #: Execution only (a volatile key); kept by a resume that does not give it (the stored config is its default).
    #: Not with ``arch_batch > 1`` (the batched engine has no such option).
    channels_last: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.metrics, str):
            names = tuple(s.strip() for s in self.metrics.split(",") if s.strip())
            object.__setattr__(self, "metrics", names)
        if not self.metrics:
            raise ConfigError("metrics: give 'all' or at least one metric name")
        selectors = (("sample", self.sample is not None), ("all", self.all), ("ids", self.ids is not None))
        chosen = [k for k, on in selectors if on]
        if len(chosen) != 1:
            raise ConfigError(
                "choose exactly one of sample=N, all=true, ids=[...] to select architectures"
                + (f" (got {', '.join(chosen)})" if chosen else "")
            )
        if self.sample is not None and self.sample < 1:
            raise ConfigError(f"sample must be >= 1, got {self.sample}")
        if self.ids is not None:
            if not self.ids:
                raise ConfigError("ids must not be empty")
            if any(i < 0 for i in self.ids):
                raise ConfigError(f"ids must be >= 0, got {[i for i in self.ids if i < 0]}")
        _positive("batch_size", self.batch_size)
        _positive("image_size", self.image_size)
        _positive("shard_size", self.shard_size)
        if isinstance(self.arch_batch, bool) or not isinstance(self.arch_batch, int) or self.arch_batch < 1:
            raise ConfigError(f"arch_batch must be an int >= 1, got {self.arch_batch!r}")
        if not isinstance(self.channels_last, bool):
            raise ConfigError(f"channels_last must be true or false, got {self.channels_last!r}")
        if self.channels_last and self.arch_batch > 1:
            raise ConfigError("channels_last is an option of the per-arch engine: not with arch_batch > 1 "
                              f"(got arch_batch={self.arch_batch})")
        if self.workers < 0:
            raise ConfigError(f"workers must be >= 0 (0: in-process), got {self.workers}")
        if self.gpus_per_worker < 0:
            raise ConfigError(f"gpus_per_worker must be >= 0, got {self.gpus_per_worker}")
        if self.gpus_per_worker > 1 and self.gpus_per_worker != int(self.gpus_per_worker):
            raise ConfigError(f"gpus_per_worker above 1 must be whole, got {self.gpus_per_worker}")
        if self.cpus_per_worker <= 0:
            raise ConfigError(f"cpus_per_worker must be > 0, got {self.cpus_per_worker}")
        if self.max_retries < 0:
            raise ConfigError(f"max_retries must be >= 0, got {self.max_retries}")
        if self.shard_timeout_s is not None and not self.shard_timeout_s > 0:
            raise ConfigError(f"shard_timeout_s must be > 0 (or unset for no deadline), got {self.shard_timeout_s}")
        if not isinstance(self.space_kwargs, Mapping):
            raise ConfigError(f"space_kwargs must be a mapping, got {type(self.space_kwargs).__name__}")
        bad = {k: v for k, v in self.space_kwargs.items() if not isinstance(v, (int, float, str, bool))}
        if bad:
            raise ConfigError(f"space_kwargs values must be scalars, got {bad}")
        object.__setattr__(self, "space_kwargs", dict(self.space_kwargs))
        bad_mods = [m for m in self.metric_modules if not isinstance(m, str) or not m.strip()]
        if bad_mods:
            raise ConfigError(f"metric_modules must be importable module names, got {bad_mods}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ScoreConfig":
        """Strict construction (unknown keys are a :class:`ConfigError`)."""
        return from_dict(cls, data)

    def metric_names(self) -> list[str]:
        """The validated metric names (groups such as ``all`` and ``diagnostic`` expanded, see
        :data:`raynas.metrics.registry.GROUPS`); unknown names raise ``UnknownNameError``."""
        from raynas.metrics import resolve_metric_names

        import_metric_modules(self.metric_modules)
        # group names ("all": each reference definition once; "diagnostic": the raynas-only twins) expand there
        return resolve_metric_names(list(self.metrics))

    def task_loss(self) -> str | None:
        """The loss the run's task scores with (:attr:`raynas.tasks.Task.loss`), recorded in the identity so that a
        resume scores new rows with the loss the stored ones were scored with: a space's task may change its loss
        (TransNAS-Bench-101's class_scene / class_object moved from the exact soft cross-entropy to the
        benchmark's ``softmax_ce_eps``), and a run written before holds no such key, so its resume is refused
        instead of mixing two losses in one run. Not a field: derived from the space and ``space_kwargs['task']``,
        never given, never inherited from a stored config.

        Returns:
            the loss's name; None for a space whose only task is classification (its loss is fixed) or a space
            this process cannot build.
        """
        from raynas.errors import RaynasError
        from raynas.spaces import create_space

        try:
            space = create_space(self.space)
            if tuple(space.task_names()) == ("classification",):
                return None
            return str(space.task(self.space_kwargs.get("task"), image_size=self.image_size).loss)
        except RaynasError:  # an unknown space or task: refused where the run builds them, with its own message
            return None

    def replace(self, **changes: Any) -> "ScoreConfig":
        return dataclasses.replace(self, **changes)

    def resolved(self) -> dict[str, Any]:
        """The full config as plain JSON, metrics expanded to names: what is saved beside the scores.

        ``identity`` holds the keys a resume must repeat, ``volatile`` the execution-only ones.
        """
        d = to_dict(self)
        d["metrics"] = self.metric_names()
        d["space_kwargs"] = dict(sorted(self.space_kwargs.items()))
        d["metric_modules"] = list(dict.fromkeys([*self.metric_modules, *plugin_modules(d["metrics"])]))
        loss = self.task_loss()
        if loss is not None:  # only for spaces with tasks: every classification run's identity stays as it was
            d["task_loss"] = loss
        return {
            "identity": {k: v for k, v in d.items() if k not in VOLATILE_KEYS},
            "volatile": {k: v for k, v in d.items() if k in VOLATILE_KEYS},
        }

    def identity(self) -> dict[str, Any]:
        """Only the keys that decide the produced rows (compared on resume)."""
        return self.resolved()["identity"]


def import_metric_modules(modules: Sequence[str]) -> None:
    """Import each module (registering the metrics it defines); a failed import is a :class:`ConfigError`."""
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise ConfigError(
                f"metric module {name!r} cannot be imported ({type(exc).__name__}: {exc}); it must be on the "
                "Python path (PYTHONPATH) of the process that starts the run"
            ) from None


def is_builtin_metric_module(module: str) -> bool:
    return module == "raynas" or module.startswith("raynas.")


def plugin_modules(metric_names: Sequence[str]) -> list[str]:
    """Importable modules (in first-use order) defining the non-built-in metrics among ``metric_names``.

    A metric defined in ``__main__`` (a script) has no importable name; the Ray driver ships such a metric by
    value instead (:func:`raynas.parallel.actor.metric_plugins`).
    """
    from raynas.metrics import get_metric

    out: list[str] = []
    for n in metric_names:
        module = getattr(get_metric(n).fn, "__module__", None) or "__main__"
        if not is_builtin_metric_module(module) and module != "__main__" and module not in out:
            out.append(module)
    return out


def _positive(name: str, value: int) -> None:
    if value < 1:
        raise ConfigError(f"{name} must be >= 1, got {value}")
