"""``run_tenas_search``: TE-NAS on any space that provides TE-NAS supernets, from a config dict.

The space supplies its supernets, its launcher defaults and the decoding of the pruned alive list
(:class:`raynas.spaces.base.PrunableSpace`: ``tenas_supernets``, ``tenas_defaults``, ``arch_from_alive``), so this module
names no space. Defaults follow the public TE-NAS launcher: NAS-Bench-201 prunes one op per edge per round on a
``C=3, N=1`` supernet with batch 72; DARTS prunes 3 ops per edge per round on a ``C=1`` supernet of one normal
and one reduction cell with batch 14, then keeps 2 inputs per node; both average 3 repeats, round relative
changes to 3 decimals and remove ``none`` before the first round (as that code does: its pruning sets ``none``'s
logit to -inf; for DARTS this is required since final cells have no ``none``). Regions are counted on the
1-channel thin supernet (NAS-Bench-201: one cell without stem; DARTS: the two cells without stem).

Writes the result (config, arch, timing, round summaries) and the per-round table (one row per candidate per
round) into ``out``, atomically (:meth:`raynas.store.SearchDir.write_tenas`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from functools import lru_cache
from typing import Any, Callable, Literal, Mapping

from raynas.config import from_dict, to_dict
from raynas.data.batch import Batch
from raynas.errors import ConfigError, SearchError, StoreError
from raynas.pruning.tenas import Alive, TenasOutcome, tenas_prune
from raynas.spaces import DEFAULT_SPACE, create_space
from raynas.spaces.base import PrunableSpace, prunable
from raynas.store import SearchDir

log = logging.getLogger(__name__)

@lru_cache(maxsize=None)
def _space(name: str) -> PrunableSpace:
    """The registered space ``name`` at its defaults (TE-NAS builds its own supernets; one instance per name);
    a space without TE-NAS supernets is a :class:`ConfigError`."""
    return prunable(create_space(name))


@dataclass(frozen=True)
class TenasConfig:
    space: str = field(default=DEFAULT_SPACE, metadata={
        "help": "a space with TE-NAS supernets (NAS-Bench-201 or darts_cifar)"})
    seed: int = field(default=0, metadata={"help": "seed of the supernets' initialisation and the batches"})
    out: str | None = field(default=None, metadata={"help": "search directory (state, result)", "required": True})
    resume: bool = field(default=False, metadata={"help": "continue a killed search where it stopped"})
    data: str = field(default="digits", metadata={"help": "the NTK and linear-region data (`raynas list datasets`)"})
    batch_size: int | None = field(default=None, metadata={  # None: the space's TE-NAS default
        "help": "NTK batch (default: the paper's, 72 NAS-Bench-201 / 14 DARTS)", "min": 2})
    input_size: int = field(default=32, metadata={"help": "image side of the NTK batch", "min": 3})
    repeats: int = field(default=3, metadata={"help": "NTK repeats averaged per measurement", "min": 1})
    precision: int = field(default=3, metadata={"help": "decimals the NTK and region changes are rounded to before ranking (near-equal values tie)"})
    prune_number: int | None = field(default=None, metadata={  # None: the space's TE-NAS default
        "help": "ops pruned per edge and round (default: the space's)", "min": 1})
    C: int | None = field(default=None, metadata={  # NTK supernet width; None: the space's TE-NAS default
        "help": "supernet width for the NTK (default: the paper's)", "min": 1})
    N: int = field(default=1, metadata={"help": "cells per stage of the NTK supernet", "min": 1})
    drop_none: bool = field(default=True, metadata={
        "help": "remove the 'none' op before the first round (DARTS needs it: its final cells have no 'none')"})
    combine: Literal["mean", "sum"] = field(default="mean", metadata={"help": "how a supernet edge combines its alive ops' outputs"})
    init: Literal["kaiming_normal", "pytorch"] = field(default="kaiming_normal", metadata={
        "help": "the supernets' weight initialisation"})
    region_inputs: Literal["gaussian", "crops"] = field(default="gaussian", metadata={
        "help": "linear-region inputs: Gaussian 3x3 or 3x3 crops of the data, as the TE-NAS code"})
    region_samples: int = field(default=1000, metadata={"help": "inputs of the linear-region count", "min": 2})
    device: str = field(default="cpu", metadata={"help": "cpu | cuda | auto"})

    def __post_init__(self) -> None:
        for key in ("batch_size", "prune_number", "C"):
            v = getattr(self, key)
            if v is not None and v < (2 if key == "batch_size" else 1):
                raise ConfigError(f"tenas: {key} must be >= {2 if key == 'batch_size' else 1}, got {v}")
        for key, low in (("input_size", 3), ("repeats", 1), ("precision", 0), ("N", 1), ("region_samples", 2)):
            if getattr(self, key) < low:
                raise ConfigError(f"tenas: {key} must be >= {low}, got {getattr(self, key)}")
        space = _space(self.space)  # unknown name: UnknownNameError with close matches
        space.tenas_defaults()  # a space without TE-NAS supernets: ConfigError now, before any work
        if space.tenas_needs_drop_none and not self.drop_none:
            raise ConfigError(f"tenas: {self.space} needs drop_none=true (its final cells have no 'none' op)")

    def resolved(self, key: str) -> int:
        value = getattr(self, key)
        return _space(self.space).tenas_defaults()[key] if value is None else value


def load_batch(cfg: TenasConfig) -> Batch:
    """The NTK batch: :func:`raynas.data.create_batch` of ``data`` (``batch_size`` images, ``input_size`` px)."""
    from raynas.data import create_batch

    return create_batch(cfg.data, cfg.resolved("batch_size"), cfg.seed, cfg.input_size)


def build_problem(cfg: TenasConfig, batch: Batch) -> tuple[Any, Any, Alive, tuple[tuple[int, ...], ...]]:
    """``(ntk_net, thin_net, initial alive, node groups)`` for the configured space."""
    nets = _space(cfg.space).tenas_supernets(batch.num_classes, C=cfg.resolved("C"), N=cfg.N,
                                             in_channels=batch.inputs.shape[1], combine=cfg.combine)
    start = tuple(tuple(o for o in nets.ops if not (cfg.drop_none and o == "none")) for _ in range(nets.n_edges))
    device = batch.inputs.device
    return nets.ntk_net.to(device), nets.thin_net.to(device), start, nets.groups


def final_arch(cfg: TenasConfig, alive: Alive) -> dict[str, Any]:
    """The searched architecture as the space's own type, in JSON-able form."""
    if any(len(ops) > 1 for ops in alive):
        raise SearchError(f"pruning ended with an edge holding several ops: {alive}")
    return _space(cfg.space).arch_from_alive(alive)


def _round_rows(outcome: TenasOutcome) -> list[dict[str, Any]]:
    return [
        {"phase": r.phase, "round": r.index, "group": list(r.group), "kappa": r.kappa, "regions": r.regions,
         "edge": c.edge, "op": c.op, "d_kappa": c.d_kappa, "d_regions": c.d_regions, "rank_kappa": c.rank_kappa,
         "rank_regions": c.rank_regions, "importance": c.importance, "pruned": c.pruned}
        for r in outcome.rounds for c in r.candidates
    ]


def _save(out: Path, result: dict[str, Any], outcome: TenasOutcome) -> None:
    SearchDir(out).write_tenas(result, _round_rows(outcome))


def run_tenas_search(spec: TenasConfig | Mapping[str, Any],
                     progress_callback: Callable[..., None] | None = None) -> dict[str, Any]:
    """Run TE-NAS; returns the JSON-able result (arch, timing, per-round summary) also saved under ``out``.
    ``spec`` is a :class:`TenasConfig` (a mapping is converted strictly, :func:`raynas.config.from_dict`).

    With ``resume`` and an existing result of the same config in ``out``, that result is returned unchanged
    (the search is deterministic in its config).
    """
    cfg = spec if isinstance(spec, TenasConfig) else from_dict(TenasConfig, spec)
    config = {k: v for k, v in to_dict(cfg).items() if k != "resume"}
    out = Path(cfg.out) if cfg.out else None
    stored_in = SearchDir(out) if out is not None and cfg.resume else None
    stored = stored_in.read_tenas_result() if stored_in is not None else None
    if stored is not None:
        if stored.get("config") != config:
            raise StoreError(f"{stored_in.tenas_result_path} was written by another config; use a new --out")
        return stored
    if out is None:
        return _prune(cfg, config, None, progress_callback)
    with SearchDir(out).claim():  # one writer per directory; an interrupted run leaves it as it was
        return _prune(cfg, config, out, progress_callback)


def _prune(cfg: TenasConfig, config: dict[str, Any], out: Path | None,
           progress_callback: Callable[..., None] | None) -> dict[str, Any]:
    t0 = time.perf_counter()
    batch = load_batch(cfg).to(cfg.device)
    ntk_net, thin, start, groups = build_problem(cfg, batch)
    from raynas.pruning.measure import SupernetMeasure

    measure = SupernetMeasure(ntk_net, thin, batch, repeats=cfg.repeats, seed=cfg.seed, init=cfg.init,
                              regions=cfg.region_inputs, region_samples=cfg.region_samples)
    progress = (lambda done, total: progress_callback(done, total)) if progress_callback else None
    outcome = tenas_prune(start, measure, prune_number=cfg.resolved("prune_number"), precision=cfg.precision,
                          groups=groups, keep=2, progress=progress)
    result = {
        "method": "tenas", "space": cfg.space, **final_arch(cfg, outcome.alive),
        "seconds": time.perf_counter() - t0, "search_seconds": outcome.seconds,
        "measure_calls": outcome.measure_calls, "batch": batch.name, "config": config,
        "resolved": {key: cfg.resolved(key) for key in ("batch_size", "prune_number", "C")},
        "rounds": [{"phase": r.phase, "round": r.index, "kappa": r.kappa, "regions": r.regions,
                    "pruned": [list(p) for p in r.pruned], "seconds": r.seconds} for r in outcome.rounds],
    }
    if out is not None:
        result["out"] = str(out)
        _save(out, result, outcome)
    log.info("TE-NAS %s: %s in %.1f s", cfg.space, result["arch"], result["seconds"])
    return result
