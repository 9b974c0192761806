"""The Ray actor that scores shards: a thin shell around :func:`raynas.parallel.scoring.score_ids`.

Each actor builds the space once, then scores one shard per call. The input batch is not a constructor
argument: the driver ``ray.put``s it a single time and sends its reference, nested in a one-element list, with
every ``ready`` ping and every scoring call; the actor fetches it on the first call of each incarnation and keeps
it (:meth:`ScoringWorker.use_batch`). A restarted actor thus gets the batch from the call that reaches it, and its
constructor holds no reference into the object store (Ray logs an error for each such actor started with
``max_restarts > 0``, since a restart would need that object: ray-project/ray#53727).

Its device comes from the GPUs Ray assigned it: ``cuda`` when torch sees a GPU and Ray gave the actor one
(Ray sets ``CUDA_VISIBLE_DEVICES``, so ``cuda`` is the assigned device), otherwise ``cpu``. On a CPU machine a
local Ray may advertise *logical* GPUs: actors are still pinned to distinct ids, but compute on CPU.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import os
import queue
import shutil
import site
import socket
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping, Sequence

import ray

from raynas.errors import ConfigError, UnknownNameError

if TYPE_CHECKING:
    import pyarrow as pa

    from raynas.data.batch import Batch
    from raynas.parallel.config import ScoreConfig
    from raynas.parallel.shards import Shard

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MetricProgress:
    """What :meth:`ScoringWorker.stream` yields as a metric pass of an arch starts: the pass's metric ``names``,
    the metrics of the arch ``done`` before it and the arch's ``total`` (the driver hands them to the progress
    bar, as the in-process loop does)."""

    names: tuple[str, ...]
    done: int
    total: int


class ScoringWorker:
    """Scores shards of one space with fixed metrics, batch and seed (plain class; see :data:`ScoringActor`).

    ``metric_code`` (the source of modules defining metrics outside raynas, see :func:`create_actor`) is put on
    ``sys.path`` and ``metric_modules`` imported (they register those metrics) and ``metric_specs`` (metrics defined in the driver's ``__main__``, shipped by
    value) are registered, so the actor knows every metric the driver resolved. A metric it still cannot
    resolve is reported by :meth:`ready` as a :class:`ConfigError` (the driver stops the run: retrying a
    missing metric cannot help).
    """

    def __init__(
        self,
        space: str,
        space_kwargs: Mapping[str, Any],
        metrics: Sequence[str],
        seed: int,
        data_name: str,
        threads: int = 1,
        metric_modules: Sequence[str] = (),
        metric_specs: Sequence[Any] = (),
        metric_code: Sequence[tuple[str, bytes]] = (),
        arch_batch: int = 1,
        channels_last: bool = False,
    ):
        import torch

        from raynas.spaces import create_space

        # Ray sets OMP_NUM_THREADS from num_cpus only for some launch paths; pin torch explicitly so actors
        # sharing a node do not oversubscribe its cores.
        torch.set_num_threads(max(1, threads))
        self.space = create_space(space)
        self.space_kwargs = dict(space_kwargs)
        self.metrics = list(metrics)
        self.seed = seed
        self.arch_batch = arch_batch
        self.channels_last = channels_last
        self.data_name = data_name
        self.host = socket.gethostname()
        self.device = pick_device(self.gpu_ids())
        self.batch: "Batch | None" = None  # set by use_batch (the first ready ping or scoring call)
        #: where the engine reports each metric pass of an arch while :meth:`stream` runs (else nowhere)
        self._on_metric: Callable[[tuple[str, ...], int, int], None] | None = None
        self._batch_id: bytes | None = None  # the object id of the batch held
        self.setup_error = load_metrics(self.metrics, metric_modules, metric_specs, self.host, metric_code)

    def gpu_ids(self) -> list[str]:
        """GPU ids Ray assigned to this actor (empty when it asked for none)."""
        return [str(g) for g in ray.get_gpu_ids()]

    def use_batch(self, batch: "list[ray.ObjectRef] | Batch") -> None:
        """Hold the input batch (on this actor's device) for the scoring calls.

        Args:
            batch: ``[ref]``, the reference of the driver's ``ray.put`` nested in a list (so Ray passes the
                reference, not the batch: it is fetched only when this actor does not hold it yet), or a batch
                itself (``inputs [B, C, H, W]``, ``labels [B]``; a direct call, no Ray).
        """
        if not isinstance(batch, list):
            self.batch, self._batch_id = batch.to(self.device), None
            return
        (ref,) = batch
        if ref.binary() != self._batch_id:
            self.batch, self._batch_id = ray.get(ref).to(self.device), ref.binary()

    def ready(self, batch: "list[ray.ObjectRef] | Batch | None" = None) -> dict[str, Any]:
        """Where the actor runs; answering at all means it is constructed, alive, knows every metric and holds
        ``batch`` (:meth:`use_batch`; the driver sends it with every ping)."""
        if self.setup_error:
            raise ConfigError(self.setup_error)
        if batch is not None:
            self.use_batch(batch)
        return {"host": self.host, "pid": os.getpid(), "device": self.device, "gpu_ids": self.gpu_ids(),
                "node_id": ray.get_runtime_context().get_node_id()}

    def score(self, shard: "Shard") -> Iterator[tuple[int, "pa.Table"]]:
        """``(arch_index, rows)`` for each arch of ``shard``, lazily (with ``shard.metrics`` or the run's
        metrics), on the batch held (:meth:`use_batch`). Subclasses (test fakes) override this; the driver calls
        :meth:`stream`."""
        from raynas.parallel.scoring import iter_scored

        if self.batch is None:  # a driver bug, not bad input: every call the driver makes carries the batch
            raise RuntimeError("the scoring actor holds no batch: call use_batch (or pass it to stream) first")
        return iter_scored(
            self.space, shard.ids, list(shard.metrics or self.metrics), self.batch, self.seed, self.device,
            self.data_name, self.host, self.space_kwargs, arch_batch=self.arch_batch, on_metric=self._on_metric,
            channels_last=self.channels_last,
        )

    def stream(self, shard: "Shard", batch: "list[ray.ObjectRef] | Batch | None" = None
               ) -> Iterator["tuple[int, pa.Table] | MetricProgress"]:
        """The remote entry point, called with ``num_returns="streaming"``: yields each arch of :meth:`score` as
        soon as it is scored, so the driver sees (and can store) every finished arch, and between them a
        :class:`MetricProgress` as each metric pass of an arch starts (progress inside a long arch). ``batch``: as
        :meth:`use_batch` (the driver sends it with every call: an incarnation that missed the ping gets it).

        The archs are scored on a thread of this actor while this generator yields what it reports, in order: the
        engine reports a pass from inside its computation, where a generator cannot yield. Devices are explicit
        (``self.device``), so the thread computes exactly what this method would."""
        if self.setup_error:
            raise ConfigError(self.setup_error)
        if batch is not None:
            self.use_batch(batch)
        events: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()

        def work() -> None:
            self._on_metric = lambda names, done, total: events.put(
                ("item", MetricProgress(tuple(names), int(done), int(total))))
            try:
                for item in self.score(shard):
                    events.put(("item", item))
            except BaseException as exc:  # noqa: BLE001 - handed to the generator, which raises it as its own
                events.put(("error", exc))
            else:
                events.put(("end", None))
            finally:
                self._on_metric = None

        threading.Thread(target=work, name=f"raynas-shard-{shard.shard_id}", daemon=True).start()
        while True:
            kind, item = events.get()
            if kind == "end":
                return
            if kind == "error":
                raise item  # an UnknownNameError pickles as itself (a ConfigError: the run stops)
            yield item


def load_metrics(metrics: Sequence[str], modules: Sequence[str], specs: Sequence[Any], host: str = "",
                 code: Sequence[tuple[str, bytes]] = ()) -> str:
    """Install the shipped ``code`` (on ``sys.path``), import ``modules``, register ``specs`` not registered yet,
    then resolve ``metrics``; ``""`` when all resolve, else the reason (kept by the actor, raised by ``ready``)."""
    from raynas.metrics.registry import METRICS, get_metric

    where = f" on {host}" if host else ""
    if code:
        try:
            root = install_code(code)
        except OSError as exc:
            return f"the scoring actor{where} cannot write the shipped metric code: {exc}"
        if root not in sys.path:
            sys.path.insert(0, root)
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 - any failure of user code at import time is reported as such
            return (f"the scoring actor{where} cannot import metric module {name!r} "
                    f"({type(exc).__name__}: {exc})")
    importlib.import_module("raynas.metrics")  # the built-in metrics register before the shipped ones are added
    for spec in specs:
        if spec.name not in METRICS:
            METRICS.add(spec.name, spec)
    try:
        for n in metrics:
            get_metric(n)
    except UnknownNameError as exc:
        return (f"the scoring actor{where} does not know a metric the driver registered: {exc} (define it in an "
                "importable module, or list that module in metric_modules)")
    return ""


def install_code(code: Sequence[tuple[str, bytes]]) -> str:
    """Write shipped source files (``(relative path, bytes)``) under a directory named by their hash in the
    temp dir (reused by every actor of a node that gets the same code) and return that directory."""
    digest = hashlib.sha256()
    for rel, data in code:
        digest.update(rel.encode() + b"\0" + hashlib.sha256(data).digest())
    root = Path(tempfile.gettempdir()) / f"raynas-metric-code-{digest.hexdigest()[:16]}"
    if root.is_dir():
        return str(root)
    staging = Path(tempfile.mkdtemp(prefix=f".{root.name}.", dir=root.parent))
    for rel, data in code:
        if Path(rel).is_absolute() or ".." in Path(rel).parts:
            raise OSError(f"refusing to write shipped file outside its directory: {rel}")
        target = staging / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    try:
        os.rename(staging, root)
    except OSError:  # another actor of this node installed the same code first
        shutil.rmtree(staging, ignore_errors=True)
    return str(root)


#: larger packages are not shipped (install them on every node instead); their actors then report the import
MAX_SHIPPED_CODE_BYTES = 16 * 2**20


@dataclass(frozen=True)
class MetricPlugins:
    """What an actor needs to know the run's non-built-in metrics: modules to import, their source files
    (``(relative path, bytes)``, shipped with the actor and put on its ``sys.path``: the actor may run on a node
    without the driver's files), and specs defined in ``__main__`` (shipped by value)."""

    modules: tuple[str, ...] = ()
    code: tuple[tuple[str, bytes], ...] = ()
    specs: tuple[Any, ...] = ()


def metric_plugins(metrics: Sequence[str], extra_modules: Sequence[str] = ()) -> MetricPlugins:
    """The :class:`MetricPlugins` of a run scoring ``metrics`` (plus ``extra_modules``, e.g. ``metric_modules``).

    A module is shipped as the source of its top-level package (or its file, for a single-file module) unless it
    is installed (under the interpreter's prefix or a site-packages directory: the workers have it already).
    """
    from raynas.metrics import get_metric
    from raynas.parallel.config import is_builtin_metric_module, plugin_modules

    modules = list(dict.fromkeys([*extra_modules, *plugin_modules(metrics)]))
    specs = []
    for n in metrics:
        spec = get_metric(n)
        if (getattr(spec.fn, "__module__", None) or "__main__") == "__main__":
            specs.append(spec)
    code: dict[str, bytes] = {}
    for name in modules:
        if is_builtin_metric_module(name):
            continue
        files = _module_code(name)
        if files is None:
            continue
        size = sum(len(b) for _r, b in files)
        if size > MAX_SHIPPED_CODE_BYTES:
            log.warning("metric module %s: %d MiB of source is too much to ship with each actor; install it on "
                        "every node", name, size // 2**20)
            continue
        code.update(files)
    return MetricPlugins(tuple(modules), tuple(sorted(code.items())), tuple(specs))


def _module_code(module: str) -> tuple[tuple[str, bytes], ...] | None:
    """The source files of ``module``'s top-level package (every ``.py`` below it) or single-file module, with
    paths relative to the directory that holds it; None when there is nothing to ship (not loaded from
    files, or installed)."""
    top = sys.modules.get(module.split(".")[0])
    if top is None:
        return None
    paths = list(getattr(top, "__path__", None) or [])
    if paths:
        if len(paths) != 1:  # a namespace package spread over directories: not shipped
            return None
        root = Path(paths[0]).resolve()
        files = sorted(f for f in root.rglob("*.py") if "__pycache__" not in f.parts)
    else:
        file = getattr(top, "__file__", None)
        if not file or not str(file).endswith(".py"):
            return None
        root = Path(file).resolve()
        files = [root]
    if _installed(root):
        return None
    base = root.parent
    return tuple((f.relative_to(base).as_posix(), f.read_bytes()) for f in files)


def _installed(path: Path) -> bool:
    roots = {sys.prefix, sys.base_prefix, *site.getsitepackages(), site.getusersitepackages()}
    return any(path.is_relative_to(Path(r).resolve()) for r in roots if r)


def pick_device(gpu_ids: Sequence[str]) -> str:
    """``"cuda"`` when Ray assigned GPUs and torch can use one, else ``"cpu"`` (logical GPUs on CPU hosts)."""
    import torch

    return "cuda" if gpu_ids and torch.cuda.is_available() else "cpu"


#: the Ray actor class; per-run resources are set with ``.options`` in :func:`create_actor`
ScoringActor = ray.remote(max_restarts=3, max_task_retries=0)(ScoringWorker)


def create_actor(cfg: "ScoreConfig", metrics: Sequence[str], data_name: str, actor_cls: Any = ScoringActor) -> Any:
    """A :data:`ScoringActor` (or another ``ray.remote`` subclass of :class:`ScoringWorker`, e.g. a test fake)
    with the run's resources (fractional GPUs allowed). The batch is not given here: the driver sends it with
    each call (module docstring).

    ``max_restarts`` lets Ray restart an actor whose worker or node died; tasks are not retried by Ray
    (``max_task_retries=0``) because the driver retries whole shards itself and counts the attempts.
    Metrics registered outside raynas travel with it (:func:`metric_plugins`): their modules' source files are
    passed to the actor, which puts them on its ``sys.path`` and imports them (so they need not exist on its node).
    """
    plugins = metric_plugins(metrics, cfg.metric_modules)
    return actor_cls.options(
        num_cpus=cfg.cpus_per_worker,
        num_gpus=cfg.gpus_per_worker,
        max_restarts=cfg.max_retries,
        max_task_retries=0,
    ).remote(
        cfg.space, cfg.space_kwargs, list(metrics), cfg.seed, data_name,
        max(1, int(cfg.cpus_per_worker)), metric_modules=list(plugins.modules), metric_specs=list(plugins.specs),
        metric_code=list(plugins.code), arch_batch=cfg.arch_batch, channels_last=cfg.channels_last,
    )
