"""A real-training oracle: query value = validation accuracy (%) after a short training, cost = wall seconds.

The expensive, training-based feedback HNAS and RoBoT optimise when no benchmark table exists. Each
architecture is built from its index with ``space.to_module`` and trained with :mod:`raynas.training` (SGD,
cosine schedule); the data set is loaded once per oracle. Results are cached per architecture, so asking
again returns the first answer (a search's :class:`~raynas.search.queries.QueryLog` makes repeats free anyway).
Every failure (bad index, data error, a crash inside training) becomes :class:`OracleError` with the reason.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any, Callable, Hashable, Mapping

import torch
import torch.nn as nn

from raynas.config import from_dict
from raynas.errors import ConfigError, DataError, OracleError, RaynasError
from raynas.oracles.base import ORACLES, QueryResult
from raynas.spaces import DEFAULT_SPACE
from raynas.spaces.base import SearchSpace
from raynas.training import QueryOptions, TrainConfig, train_and_evaluate

log = logging.getLogger(__name__)

Tensors = tuple[torch.Tensor, torch.Tensor]
#: ``(train (x [N,C,H,W], y [N]), val (x, y), num_classes)``
TrainData = tuple[Tensors, Tensors, int]
#: ``on_epoch(arch_index, epoch, epochs, val_acc)``: progress inside one training query (epoch 0, val_acc NaN: it
#: starts)
EpochHook = Callable[[int, int, int, float], None]


def _subset(x: torch.Tensor, y: torch.Tensor, limit: int | None) -> Tensors:
    """The first ``limit`` samples of a fixed (seed 0) permutation: a class-mixed, reproducible subset."""
    if limit is None or limit >= len(x):
        return x, y
    if limit < 2:
        raise ConfigError(f"a training/validation subset needs at least 2 samples, got {limit}")
    idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))[:limit]
    return x[idx], y[idx]


def load_train_data(dataset: str = "digits", input_size: int = 32, max_train: int | None = None,
                    max_val: int | None = None) -> TrainData:
    """Train and validation tensors of ``dataset`` (``raynas.data.create_dataset`` spec, e.g. ``"digits"``)."""
    try:
        from raynas.data import create_dataset  # type: ignore[attr-defined]
    except ImportError as e:
        raise DataError(f"raynas.data.create_dataset is not available: {e}") from None
    x_tr, y_tr, k = create_dataset(dataset, "train", input_size)
    x_va, y_va, k_va = create_dataset(dataset, "val", input_size)
    if k != k_va:
        raise DataError(f"{dataset}: train and val splits disagree on the number of classes ({k} vs {k_va})")
    return _subset(x_tr, y_tr, max_train), _subset(x_va, y_va, max_val), int(k)


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; anything else as given."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def build_model(space: SearchSpace, arch: Hashable | str, num_classes: int, in_channels: int,
                space_kwargs: Mapping[str, Any] | None = None) -> nn.Module:
    """``space.to_module(arch, num_classes, **space_kwargs)``; ``in_channels`` follows the data when the space
    takes it (NAS-Bench-201-style macro) and ``space_kwargs`` does not set it."""
    kw = dict(space_kwargs or {})
    macro = getattr(space, "macro", None)
    if isinstance(macro, dict) and "in_channels" in macro:
        kw.setdefault("in_channels", in_channels)
    if isinstance(arch, str):
        arch = space.parse(arch)
    return space.to_module(arch, num_classes, **kw)


class TrainingOracle:
    """Trains ``space``'s architecture ``arch_index`` on ``dataset``; value = final val acc (%), cost = seconds.

    Args:
        space: a space name (``create_space``) or a :class:`SearchSpace`.
        dataset: ``raynas.data.create_dataset`` spec (``"digits"``, ``"cifar10:PATH"``).
        train_cfg: :class:`TrainConfig` or a dict for it (default ``TrainConfig()``).
        space_kwargs: ``to_module`` options, e.g. ``{"C": 8, "N": 1}`` for a small NAS-Bench-201 network
            (``space.training_kwargs()``); an option the space's network does not take is a :class:`ConfigError`
            here, before any training.
        device: ``"cpu"``, ``"cuda"``, ``"auto"``.
        input_size, max_train, max_val: image side and optional sample limits of the two splits.
        data: pre-loaded ``(train, val, num_classes)`` instead of loading ``dataset`` (tests, shared memory).
        threads: torch intra-op threads of one training (default 1, what a Ray query task with ``num_cpus=1``
            runs with). Pinned for the training and restored after, so an arch trained in this process and the
            same arch trained as a Ray task give the same value: a float32 reduction split over another number of
            threads sums in another order, and a few hundred SGD steps amplify that to a different accuracy
            (measured on 2 cores: 11.42 % with the driver's 2 threads vs 10.86 % with 1, one short training of
            the default space's arch 13714). It is also why the driver was slower: its 2 OpenMP threads spin against the other processes
            on a 2-core machine (102 s vs 17 s for that training, machine under load).

    The defaults of ``dataset``, ``device``, ``input_size``, ``max_train``, ``max_val`` and ``threads`` are
    :class:`raynas.training.QueryOptions`'s. ``on_epoch`` (an attribute, not an option: it stays in this process)
    is called after every epoch of a query, :data:`EpochHook`.
    """

    def __init__(self, space: str | SearchSpace = DEFAULT_SPACE, dataset: str = QueryOptions.dataset,
                 train_cfg: TrainConfig | Mapping[str, Any] | None = None,
                 space_kwargs: Mapping[str, Any] | None = None, device: str | torch.device = QueryOptions.device, *,
                 input_size: int = QueryOptions.input_size, max_train: int | None = QueryOptions.max_train,
                 max_val: int | None = QueryOptions.max_val, data: TrainData | None = None,
                 threads: int = QueryOptions.threads):
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise ConfigError(f"threads must be an integer >= 1, got {threads!r}")
        self.threads = threads
        if isinstance(space, str):
            from raynas.spaces import create_space

            space = create_space(space)
        self.space = space
        if train_cfg is None:
            train_cfg = TrainConfig()
        elif isinstance(train_cfg, Mapping):
            train_cfg = from_dict(TrainConfig, train_cfg)
        self.train_cfg: TrainConfig = train_cfg
        self.dataset, self.input_size, self.max_train, self.max_val = dataset, input_size, max_train, max_val
        self.space_kwargs = dict(space_kwargs or {})
        self.on_epoch: EpochHook | None = None
        self._querying: int | None = None  # the arch index being trained by query (on_epoch's first argument)
        self.device = resolve_device(device)
        self._data = data
        self._cache: dict[int, QueryResult] = {}
        #: validation accuracy after every epoch, per queried arch index
        self.curves: dict[int, list[float]] = {}

    def check_network(self) -> "TrainingOracle":
        """Refuse (:class:`ConfigError`, before any training) a ``space_kwargs`` option the space's network does not
        take (``N`` for DARTS, whose depth is ``layers``); returns the oracle. A query would fail on it anyway, as
        an :class:`OracleError`, but only after the work before it."""
        takes = self.space.network_options()
        unknown = sorted(set(self.space_kwargs) - set(takes)) if takes is not None else []
        if unknown:
            raise ConfigError(f"{self.space.name}'s network has no option(s) {unknown} to train with; it takes "
                              f"{', '.join(takes or ())}")
        return self

    def data(self) -> TrainData:
        if self._data is None:
            self._data = load_train_data(self.dataset, self.input_size, self.max_train, self.max_val)
        return self._data

    def train_arch(self, arch: Hashable | str, epochs: int | None = None) -> tuple[list[float], float]:
        """``(val acc per epoch, wall seconds)`` of one training run of ``arch`` (no caching, errors propagate);
        run by :meth:`query`, :attr:`on_epoch` hears of every epoch."""
        train, val, k = self.data()
        before = torch.get_num_threads()
        torch.set_num_threads(self.threads)  # the same reduction order wherever the query runs (see ``threads``)
        try:
            t0 = time.perf_counter()
            on_epoch = None
            hook, index = self.on_epoch, self._querying
            if hook is not None and index is not None:
                i = index
                hook(i, 0, epochs or self.train_cfg.epochs, math.nan)  # the query starts

                def on_epoch(epoch: int, total: int, acc: float) -> None:
                    hook(i, epoch, total, acc)

            accs = train_and_evaluate(lambda: build_model(self.space, arch, k, train[0].shape[1], self.space_kwargs),
                                      train, val, self.train_cfg, self.device, epochs, on_epoch)
            return accs, time.perf_counter() - t0
        finally:
            torch.set_num_threads(before)

    def query(self, arch_index: int) -> QueryResult:
        i = int(arch_index)
        if i in self._cache:
            return self._cache[i]
        try:
            arch = self.space.index_to_arch(i)
            self._querying = i
            accs, seconds = self.train_arch(arch)
        except RaynasError as e:
            raise OracleError(f"training architecture {i} failed: {type(e).__name__}: {e}") from e
        except Exception as e:  # noqa: BLE001 - training boundary: any crash is a failed query, with its reason
            raise OracleError(f"training architecture {i} failed: {type(e).__name__}: {e}") from e
        finally:
            self._querying = None
        if not accs or not math.isfinite(accs[-1]):
            raise OracleError(f"training architecture {i} gave no finite validation accuracy ({accs})")
        log.info("arch %d: val acc %.2f%% after %d epochs (%.1f s)", i, accs[-1], len(accs), seconds)
        self.curves[i] = accs
        self._cache[i] = QueryResult(float(accs[-1]), float(seconds))
        return self._cache[i]

    def remember(self, arch_index: int, result: QueryResult) -> None:
        """Take the answer of a query of ``arch_index`` that ran elsewhere (a Ray worker with its own copy of this
        oracle, :class:`raynas.parallel.queries.RayQueryExecutor`): later ``query`` / ``final`` return it."""
        self._cache[int(arch_index)] = QueryResult(float(result.value), float(result.cost_seconds))

    def final(self, arch_index: int) -> float:
        """The query value (the oracle's only measurement; trains the arch if it was not queried yet)."""
        return self.query(arch_index).value

    def best_final(self) -> float | None:
        return None


if "train" not in ORACLES:
    ORACLES.add("train", TrainingOracle)
