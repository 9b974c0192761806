"""Published zero-cost score tables read as a search pool, read-only: ``--scores nbsz:<space>:cifar10``.

A search reads its pool as a wide table (:func:`raynas.store.read_scores_wide`: ``arch_index`` int64,
``arch`` string, one float64 column per metric, null where a metric has no value, rows sorted by
``arch_index``) and a config (at least ``space``). :func:`read_published` returns exactly that shape from a
table somebody else scored, so any search runs on it without scoring anything.

**Spec grammar** ``<source>:<space>:<dataset>`` (:func:`parse_spec`; :func:`is_published` tells a spec from run
directories). The store knows the mechanism, not the tables: each :class:`PublishedTable` (file, raynas space,
key columns, metric columns, default oracle) is registered with :func:`register_table` by the space module that
can decode its keys, as benchmarks are (nothing outside :mod:`raynas.spaces` names a particular space). The
NAS-Bench-Suite-Zero tables (source ``nbsz``) are registered by :mod:`raynas.spaces.nbsz` when
:mod:`raynas.spaces` is imported, which lists them; another source joins the same way (e.g.
``tnb101:<micro|macro>:<task>`` for ``tnb101/tnb101_<micro|macro>_<task>.parquet``, with its own metric columns
and decoder). The data root is ``$RAYNAS_DATA``, else ``<repo>/../shared/data`` (the rule of
:func:`raynas.spaces.benchmarks.data_root`, repeated because the store sits below the spaces).

**Architectures.** ``arch_index`` and ``arch`` are raynas's own index and canonical string in the table's space,
decoded from the file's key columns by the table's decoder (:data:`ARCH_DECODERS`, registered beside the space).
Rows that decode to one architecture (several NASLib keys of one cell) are averaged per metric (nulls skipped),
as the seeds of a score run are; ``config["rows"]`` and ``config["archs"]`` say how many rows and architectures
there were.

**Metric columns** (:data:`NASLIB_METRICS`: NASLib name -> column here; NASLib computes each proxy with
zero-cost-nas's code on a real batch, on its own network of the architecture):

============  =============  ============================================================================
NASLib        column         why
============  =============  ============================================================================
grad_norm     grad_norm      same definition (sum of per-layer gradient norms of the CE loss, zero-cost-nas)
snip          snip           same (sum of ``|W * dL/dW|``)
grasp         grasp          same (``-W * Hg``, zero-cost-nas)
fisher        fisher         same (zero-cost-nas's per-channel fisher; raynas ``fisher``, not ``fisher_channel``)
jacov         jacob_cov      same (``-sum(log(v + k) + 1/(v + k))`` of the input-Jacobian correlation, k=1e-5)
nwot          naswot_code    Mellor's released-code NASWOT: every module whose type name contains "ReLU" is
                             hooked (``ReLUConvBN`` too), as ``naswot_code``, not the paper's ``naswot``. NASLib
                             skips the code's backward filter, which filters nothing on NASLib's networks
                             (its zero op multiplies by 0 and stays on the graph)
epe_nas       epe_nas        same (raynas ``epe_nas`` follows NB-Suite-Zero's)
l2_norm       l2_norm        same (NB-Suite-Zero's)
plain         plain          same (NB-Suite-Zero's)
params        params         parameter count; NASLib stores millions, so the value is multiplied by 1e6 and
                             rounded to the integer count (exact: NASLib divides the count by 1e6)
synflow       synflow        NASLib stores ``ln(S)`` of the synflow sum ``S`` (0 when ``S`` is 0; its ZeroCost
                             predictor logs synflow), so the column is ``exp(value)`` (``S >= 0`` always), exact
                             to a few ulps; ``signed_log`` pools recover the log. NASLib's networks may differ
                             from raynas's in where BN is kept (see :mod:`raynas.spaces.nbsz`)
flops         nbsz_flops     no raynas equal: MFLOPs of NASLib's counter, which also counts BN, ReLU and
                             pooling (raynas ``flops`` counts conv/linear MACs only); kept as published
============  =============  ============================================================================

A failed proxy is null: NASLib writes -1e8 for a NaN/inf score (and synflow's log of that, ``-ln(1e8)``);
those, non-finite values and missing values become null, as a failed metric is in a score run's wide table.
The ground-truth column (``val_accuracy`` for NB-Suite-Zero) is never a metric column: only the sample
benchmarks read it (:func:`read_published_target`); ``*_seconds`` columns are dropped.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from raynas.errors import ConfigError, DataError, StoreError, UnknownNameError
from raynas.registry import Registry

__all__ = [
    "ARCH_DECODERS", "ArchDecoder", "MetricColumn", "NASLIB_FAILED", "NASLIB_METRICS", "PublishedScores",
    "PublishedTable", "SOURCES", "TABLES",
    "is_published", "parse_spec", "published_data_root", "read_published", "read_published_target",
    "register_table",
]

_REPO = Path(__file__).resolve().parents[2]

#: NASLib's value for a score that came out NaN or inf (its ``ZeroCost.query``)
NASLIB_FAILED = -1e8

#: ``decoder(keys) -> (arch_index int64 [n], arch strings [n])`` from the table's key columns (one row per file
#: row, in file order); a row it cannot decode is a :class:`~raynas.errors.DataError`
ArchDecoder = Callable[[pa.Table], tuple[np.ndarray, list[str]]]

#: decoders by name (:attr:`PublishedTable.decoder`), registered by the space modules (see the module docstring)
ARCH_DECODERS: Registry[ArchDecoder] = Registry("published-table architecture decoder")


def published_data_root() -> Path:
    """``$RAYNAS_DATA`` if set, else ``<repo>/../shared/data`` (read at every call, like the benchmarks')."""
    root = os.environ.get("RAYNAS_DATA")
    return Path(root) if root else _REPO.parent / "shared" / "data"


@dataclass(frozen=True)
class MetricColumn:
    """One metric column of a published table.

    Attributes:
        column: the file's column.
        name: the column of the wide table (a raynas metric name where the definitions agree).
        convert: ``"none"`` (as published), ``"millions"`` (``round(value * 1e6)``: NASLib's parameter count)
            or ``"naslib_log"`` (``exp(value)``, 0 stays 0: NASLib's logged synflow; see the module docstring).
    """

    column: str
    name: str
    convert: str = "none"

    def __post_init__(self) -> None:
        if self.convert not in _CONVERTERS:
            raise ConfigError(f"metric column {self.column!r}: convert must be one of {sorted(_CONVERTERS)}, "
                              f"got {self.convert!r}")


def _as_published(v: np.ndarray) -> np.ndarray:
    return v


def _from_millions(v: np.ndarray) -> np.ndarray:
    return np.round(v * 1e6)


def _from_naslib_log(v: np.ndarray) -> np.ndarray:
    # NASLib: S > 0 -> ln(S), S == 0 -> 0, NaN/inf -> -1e8 -> -ln(1e8); synflow is a sum of |.| so S >= 0
    failed = v == -math.log(-NASLIB_FAILED)
    with np.errstate(over="ignore"):  # exp past ~709.8 is inf: raynas's float64 synflow would overflow too
        out = np.where(v == 0.0, 0.0, np.exp(v))
    return np.where(failed, np.nan, out)


_CONVERTERS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "none": _as_published, "millions": _from_millions, "naslib_log": _from_naslib_log,
}

#: NAS-Bench-Suite-Zero's proxies -> wide-table columns (the mapping and its reasons: module docstring);
#: a table uses those of them its file has (not every file has every proxy)
NASLIB_METRICS: tuple[MetricColumn, ...] = (
    MetricColumn("epe_nas", "epe_nas"),
    MetricColumn("fisher", "fisher"),
    MetricColumn("flops", "nbsz_flops"),
    MetricColumn("grad_norm", "grad_norm"),
    MetricColumn("grasp", "grasp"),
    MetricColumn("jacov", "jacob_cov"),
    MetricColumn("l2_norm", "l2_norm"),
    MetricColumn("nwot", "naswot_code"),
    MetricColumn("params", "params", "millions"),
    MetricColumn("plain", "plain"),
    MetricColumn("snip", "snip"),
    MetricColumn("synflow", "synflow", "naslib_log"),
)


@dataclass(frozen=True)
class PublishedTable:
    """One published score table (one spec).

    Attributes:
        source, space_key, dataset: the spec's three fields (e.g. ``nbsz``, a space, ``cifar10``).
        space: the raynas space its architectures belong to.
        relpath: the file under :func:`published_data_root`.
        key_columns: the file columns the decoder reads.
        decoder: its name in :data:`ARCH_DECODERS`.
        metrics: the metric columns (those absent from the file are skipped).
        target: the ground-truth column (never a metric column; :func:`read_published_target`).
        benchmark: the default oracle of a search on this table (a registered benchmark's name).
        title: a short human name.
        citation: where the numbers come from.
        failed_value: the value the source writes for a failed proxy (read as null), None if it has none.
        extra_targets: further ground-truth columns the file must have (e.g. TransNAS-Bench-101's
            ``val_metric_final_epoch`` beside ``val_metric_best_epoch``): never metric columns, read with the
            target by :func:`read_published_target` (a sample benchmark's second final column).
    """

    source: str
    space_key: str
    dataset: str
    space: str
    relpath: str
    key_columns: tuple[str, ...]
    decoder: str
    metrics: tuple[MetricColumn, ...]
    target: str
    benchmark: str | None
    title: str
    citation: str = ""
    failed_value: float | None = NASLIB_FAILED
    extra_targets: tuple[str, ...] = ()

    @property
    def spec(self) -> str:
        return f"{self.source}:{self.space_key}:{self.dataset}"

    def path(self) -> Path:
        """``<data root>/<relpath>``."""
        return published_data_root() / self.relpath


#: every registered table by spec
TABLES: dict[str, PublishedTable] = {}

#: the sources a spec may start with, name -> where their tables come from. Known here, before any table is
#: registered, so a spec is never mistaken for run directories; :func:`register_table` adds a new one.
SOURCES: dict[str, str] = {
    "nbsz": "NAS-Bench-Suite-Zero (Krishnakumar, White, Zela, Tu, Safari, Hutter, NeurIPS 2022 Datasets & "
            "Benchmarks), automl/NASLib naslib/data/zc_*.json, Apache-2.0",
    "tnb101": "TransNAS-Bench-101 zero-cost scores of NAS-Bench-Suite-Zero (automl/NASLib), Apache-2.0",
}


def register_table(table: PublishedTable) -> PublishedTable:
    """Add ``table`` to :data:`TABLES` (a spec registered twice is a ConfigError)."""
    if table.spec in TABLES:
        raise ConfigError(f"published table {table.spec!r} is registered twice")
    if ":" in table.source + table.space_key + table.dataset:
        raise ConfigError(f"published table fields may not contain ':', got {table.spec!r}")
    TABLES[table.spec] = table
    SOURCES.setdefault(table.source, table.citation)
    return table


# --- specs ------------------------------------------------------------------------------------------------
def _sources() -> list[str]:
    return sorted(SOURCES)


def is_published(spec: Any) -> bool:
    """Whether ``spec`` names a published table rather than score run directories.

    True for a string whose text before the first ``:`` is a known source (:data:`SOURCES`), whatever follows (a bad
    space or dataset is then :func:`parse_spec`'s clear error, not a "directory does not exist"). A run
    directory literally named like a source is still reachable as ``./nbsz``.
    """
    if not isinstance(spec, str) or ":" not in spec:
        return False
    return spec.split(":", 1)[0].strip() in _sources()


def parse_spec(spec: str) -> PublishedTable:
    """The table named by ``spec`` (``<source>:<space>:<dataset>``).

    Raises:
        UnknownNameError: an unknown source, space (of that source) or dataset (of that space); the message
            lists the valid ones and the closest.
        ConfigError: ``spec`` does not have three ``:``-separated fields.
    """
    if not isinstance(spec, str):
        raise ConfigError(f"a published table is named by a string such as '<source>:<space>:<dataset>', got {spec!r}")
    parts = [p.strip() for p in spec.split(":")]
    source = parts[0]
    if source not in _sources():
        raise UnknownNameError("published score source", source, _sources())
    if not any(t.source == source for t in TABLES.values()):  # the store registers none itself: spaces do
        raise ConfigError(f"no {source} table is registered (raynas.spaces registers the published tables it can "
                          f"decode when imported), cannot read {spec!r}")
    if len(parts) != 3 or not all(parts):
        examples = ", ".join(sorted(s for s, t in TABLES.items() if t.source == source))
        raise ConfigError(f"a published table is named <source>:<space>:<dataset>, got {spec!r} (known: {examples})")
    _, key, dataset = parts
    spaces = sorted({t.space_key for t in TABLES.values() if t.source == source})
    if key not in spaces:
        raise UnknownNameError(f"{source} space", key, spaces)
    datasets = sorted(t.dataset for t in TABLES.values() if t.source == source and t.space_key == key)
    if dataset not in datasets:
        raise UnknownNameError(f"{source}:{key} dataset", dataset, datasets)
    return TABLES[f"{source}:{key}:{dataset}"]


# --- reading ----------------------------------------------------------------------------------------------
def _read_file(table: PublishedTable, path: Path | None) -> tuple[pa.Table, Path]:
    p = Path(path) if path is not None else table.path()
    if not p.is_file():
        raise DataError(f"the published table {table.spec} is absent: no file {p} (set RAYNAS_DATA to the folder "
                        f"holding {table.relpath})")
    try:
        t = pq.read_table(p)
    except (OSError, pa.ArrowException) as e:
        raise DataError(f"cannot read the published table {table.spec} at {p}: {e}") from None
    missing = [c for c in (*table.key_columns, table.target, *table.extra_targets) if c not in t.column_names]
    if missing:
        raise DataError(f"{p} lacks column(s) {missing} of the published table {table.spec}")
    if t.num_rows == 0:
        raise DataError(f"{p}: the published table {table.spec} has no rows")
    return t, p


def _decode(table: PublishedTable, t: pa.Table, p: Path) -> tuple[np.ndarray, list[str]]:
    if table.decoder not in ARCH_DECODERS:
        raise StoreError(f"no architecture decoder {table.decoder!r} is registered for the published table "
                         f"{table.spec}: import raynas.spaces first (its space modules register them)")
    try:
        idx, archs = ARCH_DECODERS.get(table.decoder)(t.select(list(table.key_columns)))
    except DataError as e:
        raise DataError(f"{p}: {e}") from None
    idx = np.asarray(idx, dtype=np.int64)
    if idx.shape != (t.num_rows,) or len(archs) != t.num_rows:
        raise StoreError(f"decoder {table.decoder!r} returned {idx.shape[0]} indices and {len(archs)} archs for "
                         f"{t.num_rows} rows of {p}")
    return idx, [str(a) for a in archs]


def _values(t: pa.Table, column: str, convert: str, failed: float | None) -> np.ndarray:
    """float64 ``[n]`` of ``column``, failed/missing/non-finite -> NaN, converted."""
    col = t.column(column)
    if not (pa.types.is_floating(col.type) or pa.types.is_integer(col.type)):
        raise DataError(f"column {column!r} must be numeric, got {col.type}")
    v = col.to_numpy(zero_copy_only=False).astype(np.float64)  # nulls -> NaN
    if failed is not None:
        v = np.where(v == failed, np.nan, v)
    v = _CONVERTERS[convert](v)
    return np.where(np.isfinite(v), v, np.nan)


def _group_mean(idx: np.ndarray, cols: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Per distinct index (sorted): ``(indices [m], first row of each [m], nan-skipping means [m] per column)``."""
    uniq, first, inv = np.unique(idx, return_index=True, return_inverse=True)
    inv = inv.reshape(-1)
    out = {}
    for name, v in cols.items():
        ok = np.isfinite(v)
        total = np.bincount(inv, weights=np.where(ok, v, 0.0), minlength=len(uniq))
        n = np.bincount(inv, weights=ok.astype(np.float64), minlength=len(uniq))
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = total / n
        # one row per arch (the usual case): the value itself, not a sum divided by 1
        single = np.bincount(inv, minlength=len(uniq)) == 1
        mean[single] = v[first[single]]
        out[name] = np.where(n > 0, mean, np.nan)
    return uniq, first, out


def _arrow_float(v: np.ndarray) -> pa.Array:
    return pa.array(v, pa.float64(), mask=~np.isfinite(v))  # NaN -> null, as to_wide writes a missing value


class PublishedScores:
    """A published table as a read-only score source (:class:`raynas.store.ScoreReader`).

    Args:
        spec: ``<source>:<space>:<dataset>`` (see the module docstring).
        path: read this file instead of the data root's (tests, a copy elsewhere).
    Raises:
        UnknownNameError, ConfigError: an unknown or malformed spec (at construction).
    """

    def __init__(self, spec: str, path: str | Path | None = None):
        self.table = parse_spec(spec)
        self.spec = self.table.spec
        self.path = Path(path) if path is not None else None
        self._cache: tuple[pa.Table, dict[str, Any], pa.Table] | None = None

    def _load(self) -> tuple[pa.Table, dict[str, Any], pa.Table]:
        if self._cache is not None:
            return self._cache
        tb = self.table
        t, p = _read_file(tb, self.path)
        idx, archs = _decode(tb, t, p)
        present = [m for m in tb.metrics if m.column in t.column_names]
        try:
            cols = {m.name: _values(t, m.column, m.convert, tb.failed_value) for m in present}
            target = {c: _values(t, c, "none", None) for c in (tb.target, *tb.extra_targets)}
        except DataError as e:
            raise DataError(f"{p}: {e}") from None
        uniq, first, means = _group_mean(idx, cols)
        _, _, tmeans = _group_mean(idx, target)
        arch_of = [archs[i] for i in first]
        pos = np.searchsorted(uniq, idx)  # each row's arch position
        # one index must have one string: a decoder that disagrees with itself is a bug, not data
        clash = [(int(idx[r]), archs[r], arch_of[pos[r]]) for r in range(len(idx)) if archs[r] != arch_of[pos[r]]]
        if clash:
            raise StoreError(f"decoder {tb.decoder!r} gives index {clash[0][0]} two strings {clash[0][1]!r} and "
                             f"{clash[0][2]!r}")
        n = len(uniq)
        names = sorted(means)  # to_wide sorts metric columns by name
        wide = pa.table({
            "space": pa.array([tb.space] * n, pa.string()),
            "arch_index": pa.array(uniq, pa.int64()),
            "arch": pa.array(arch_of, pa.string()),
            # NB-Suite-Zero does not record its seeds; one published value per arch is seed 0 of this table
            "seed": pa.array(np.zeros(n, np.int64), pa.int64()),
            **{m: _arrow_float(means[m]) for m in names},
        })
        truth = pa.table({"arch_index": pa.array(uniq, pa.int64()), "arch": pa.array(arch_of, pa.string()),
                          **{c: _arrow_float(tmeans[c]) for c in (tb.target, *tb.extra_targets)},
                          "n_rows": pa.array(np.bincount(pos, minlength=n), pa.int64())})
        cfg: dict[str, Any] = {
            "space": tb.space,
            "source": tb.spec,
            "metrics": names,
            "benchmark": tb.benchmark,
            "dataset": tb.dataset,
            "published": True,
            "table": str(p),
            "rows": int(t.num_rows),
            "archs": int(n),
            "columns": {m.name: m.column for m in present},
            "citation": tb.citation,
        }
        self._cache = (wide, cfg, truth)
        return self._cache

    def read_wide(self) -> pa.Table:
        """One row per architecture in :func:`raynas.store.to_wide`'s shape: ``space`` string, ``arch_index``
        int64, ``arch`` string, ``seed`` int64 (0), then one float64 column per metric, sorted by name; rows
        sorted by ``arch_index``; a failed or missing value is null.

        Raises:
            DataError: the file is absent (the message names the path and ``RAYNAS_DATA``), unreadable, lacks a
                key column, or a key does not decode to an architecture of the space.
        """
        return self._load()[0]

    def load_config(self) -> dict[str, Any]:
        """The table's config: ``space``, ``source`` (the spec), ``metrics``, ``benchmark`` (the default oracle),
        ``dataset``, ``published`` (True), ``table`` (the file), ``rows``, ``archs``, ``columns`` (wide column ->
        file column), ``citation``. Reads the file (raises as :meth:`read_wide`)."""
        return dict(self._load()[1])

    def read_target(self) -> pa.Table:
        """``arch_index`` int64, ``arch`` string, the target column and any :attr:`PublishedTable.extra_targets`
        (float64, mean over the rows of one arch) and ``n_rows`` int64 (file rows of that arch), sorted by
        ``arch_index``."""
        return self._load()[2]


def read_published(spec: str, *, path: str | Path | None = None) -> tuple[pa.Table, dict[str, Any]]:
    """A published table as :func:`raynas.store.read_scores_wide` returns a score run's pool.

    Args:
        spec: ``<source>:<space>:<dataset>`` (module docstring; the known ones: :data:`TABLES`).
        path: read this file instead of ``<data root>/<relpath>``.
    Returns:
        ``(wide, config)``: ``wide`` has ``arch_index`` int64 and ``arch`` string (raynas's index and canonical
        string in the table's space), then one float64 column per metric (sorted by name; null where the proxy
        failed or is missing), one row per architecture sorted by ``arch_index``. ``config`` as
        :meth:`PublishedScores.load_config` (``space``, ``source``, ``metrics``, ``benchmark``, ...).
    Raises:
        UnknownNameError: unknown source, space or dataset (the valid ones are listed).
        ConfigError: a malformed spec.
        DataError: the file is absent (path and ``RAYNAS_DATA`` named), unreadable, or does not decode.
    """
    src = PublishedScores(spec, path)
    wide = src.read_wide()
    cfg = src.load_config()
    return wide.select(["arch_index", "arch", *cfg["metrics"]]), cfg


def read_published_target(spec: str, *, path: str | Path | None = None) -> pa.Table:
    """The ground truth of a published table (:meth:`PublishedScores.read_target`): ``arch_index``, ``arch``,
    the target column (``val_accuracy`` for NB-Suite-Zero), any extra target columns and ``n_rows``; what a sample
    benchmark reads.

    Raises as :func:`read_published`.
    """
    return PublishedScores(spec, path).read_target()
