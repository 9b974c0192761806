"""NAS-Bench-Suite-Zero samples beside the spaces: the published tables, NASLib's keys decoded to raynas archs, and
the sample benchmarks.

**Tables** (registered in :data:`raynas.store.published.TABLES`; read with
:func:`raynas.store.read_published`, ``--scores SPEC``; files under ``$RAYNAS_DATA``, see
``shared/data/README.md`` section ``nbsz/``):

========================  ===============================  ================  ====================================
spec                      file                             raynas space      default oracle (config ``benchmark``)
========================  ===============================  ================  ====================================
``nbsz:nb201:cifar10``    ``nbsz/nb201_cifar10.parquet``   ``nb201``         ``nb201`` (the official full table)
``nbsz:nb101:cifar10``    ``nbsz/nb101_cifar10.parquet``   ``nb101``         ``nbsz_nb101`` (the sample itself)
``nbsz:nb301:cifar10``    ``nbsz/nb301_cifar10.parquet``   ``darts_cifar``   ``nbsz_nb301`` (the sample itself)
========================  ===============================  ================  ====================================

NASLib's proxies map to raynas metric names as :mod:`raynas.store.published` explains (``jacov`` ->
``jacob_cov``, ``nwot`` -> ``naswot_code``, ``params`` in millions -> the count, logged ``synflow`` -> the sum,
``flops`` -> ``nbsz_flops``). NASLib's networks are not always raynas's default ones: its NB201 network is
raynas's (``params`` equal on all 725 rows), except that zero-cost-nas's synflow keeps the 4 BNs of its reduction
blocks (``exp`` of the published value is 5-10 % above raynas's synflow on the archs checked); its NB101
network is the key's vertex order (:meth:`raynas.spaces.nb101.space.NB101Space.module_as_given`); its NB301 network
is ``darts_cifar`` at ``C=32, layers=8`` with non-affine cell BNs (``tests/spaces/test_nb301_params.py``).

**Decoders** (registered in :data:`raynas.store.published.ARCH_DECODERS` under ``nbsz:<space>``; the store reads
the published tables, :mod:`raynas.store.published`, but cannot import the spaces):

* ``nbsz:nb201``: NASLib's op tuple (edges ``1<-0, 2<-0, 3<-0, 2<-1, 3<-1, 3<-2``; codes :data:`NASLIB_NB201_OPS`)
  -> raynas's NB201 arch; its index and string must equal the file's official ``arch_index`` and ``arch_str``.
* ``nbsz:nb101``: NASLib's 49 adjacency entries + 7 op codes -> the pruned canonical cell
  (:func:`raynas.spaces.nb101.benchmark.decode_naslib_key`, :func:`~raynas.spaces.nb101.benchmark.indices_of`).
* ``nbsz:nb301``: NASLib's compact genotype ``[[(input, op code) x 8] normal, [...] reduce]`` (codes
  :data:`NASLIB_DARTS_OPS`, NASLib's ``convert_compact_to_genotype``) -> the ``darts_cifar`` genotype, its index
  (exact in int64) and canonical string. Faithful: NASLib's NB301 cells use the same 7 ops and the same two
  distinct inputs per node; raynas only orders a node's two edges (lower input first), which names the same
  network (``tests/spaces/test_nb301_params.py`` matches NASLib's parameter counts on these genotypes).

**Sample benchmarks** ``nbsz_nb101`` and ``nbsz_nb301`` (:class:`SampleBenchmark`): the table's ``val_accuracy``
as query and final value, for the architectures the table holds only (a table oracle raises
:class:`~raynas.errors.OracleError` naming the table for any other). They are registered with ``sample=True``,
so they are not their space's benchmark (:func:`~raynas.spaces.benchmarks.benchmark_for_space`: NB101 keeps
``nb101``; DARTS has none) and are named explicitly, by ``--oracle`` or by the published table's config
(``benchmark``). NB-Suite-Zero records no training time: the query cost is 0 and a budget counts queries. NB201's
sample needs none: its archs are in the official ``nb201`` table.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pyarrow as pa

from raynas.errors import DataError, InvalidArchitectureError, RaynasError
from raynas.spaces.benchmarks import Benchmark, register_benchmark
from raynas.store.published import (
    ARCH_DECODERS, NASLIB_METRICS, SOURCES, PublishedTable, parse_spec, read_published_target, register_table,
)

__all__ = [
    "COST_COLUMN", "NASLIB_DARTS_OPS", "NASLIB_NB201_OPS", "NBSZ_NB101", "NBSZ_NB301", "SampleBenchmark",
    "decode_nb101_keys", "decode_nb201_keys", "decode_nb301_keys", "naslib_compact_to_genotype", "naslib_nb201_to_str",
]

#: NASLib's NB201 op codes (``naslib/search_spaces/nasbench201/conversions.py``)
NASLIB_NB201_OPS: tuple[str, ...] = ("skip_connect", "none", "nor_conv_3x3", "nor_conv_1x1", "avg_pool_3x3")
#: NASLib's compact DARTS op codes (``naslib/search_spaces/nasbench301/conversions.py``)
NASLIB_DARTS_OPS: tuple[str, ...] = ("max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5",
                                     "dil_conv_3x3", "dil_conv_5x5")


# --- NB201 ----------------------------------------------------------------------------------------------------
def naslib_nb201_to_str(key: str | Sequence[int]) -> str:
    """NASLib's NB201 key ``"(2, 3, 4, 2, 2, 4)"`` (ops of edges ``1<-0, 2<-0, 3<-0, 2<-1, 3<-1, 3<-2``) as the
    canonical string ``|a~0|+|b~0|d~1|+|c~0|e~1|f~2|``."""
    vals = [int(v) for v in re.findall(r"-?\d+", key)] if isinstance(key, str) else [int(v) for v in key]
    if len(vals) != 6 or any(not 0 <= v < len(NASLIB_NB201_OPS) for v in vals):
        raise InvalidArchitectureError(f"NASLib NB201 key must be 6 op codes in 0..{len(NASLIB_NB201_OPS) - 1}, "
                                       f"got {key!r}")
    a, b, c, d, e, f = (NASLIB_NB201_OPS[v] for v in vals)
    return f"|{a}~0|+|{b}~0|{d}~1|+|{c}~0|{e}~1|{f}~2|"


def decode_nb201_keys(keys: pa.Table) -> tuple[np.ndarray, list[str]]:
    """``(official index int64 [n], canonical strings [n])`` of the ``naslib_key`` column, each checked against
    the file's ``arch_index`` and ``arch_str`` (a disagreement is a DataError naming the first row)."""
    from raynas.spaces import create_space

    space = create_space("nb201")
    try:
        archs = [space.format(space.parse(naslib_nb201_to_str(k))) for k in keys.column("naslib_key").to_pylist()]
    except InvalidArchitectureError as e:
        raise DataError(str(e)) from None
    idx = np.array([space.arch_to_index(a) for a in archs], np.int64)
    given_idx = keys.column("arch_index").to_numpy(zero_copy_only=False).astype(np.int64)
    given_str = keys.column("arch_str").to_pylist()
    for r, (i, a, gi, gs) in enumerate(zip(idx, archs, given_idx, given_str)):
        if i != gi or a != gs:
            raise DataError(f"row {r}: naslib_key decodes to index {i} {a}, the file says index {gi} {gs}")
    return idx, archs


# --- NB101 ----------------------------------------------------------------------------------------------------
def decode_nb101_keys(keys: pa.Table) -> tuple[np.ndarray, list[str]]:
    """``(raynas nb101 index int64 [n], canonical cell strings [n])`` of the ``naslib_key`` column (pruned:
    several keys may be one cell)."""
    from raynas.spaces import create_space
    from raynas.spaces.nb101.benchmark import decode_naslib_key, indices_of

    try:
        idx = indices_of([decode_naslib_key(k) for k in keys.column("naslib_key").to_pylist()])
    except InvalidArchitectureError as e:
        raise DataError(str(e)) from None
    space = create_space("nb101")
    text = {int(i): space.format(space.index_to_arch(int(i))) for i in np.unique(idx)}
    return idx.astype(np.int64), [text[int(i)] for i in idx]


# --- NB301 ----------------------------------------------------------------------------------------------------
def naslib_compact_to_genotype(key: str | Sequence[Any]) -> Any:
    """NASLib's compact NB301 genotype (its text or the nested sequence) as a
    :class:`~raynas.spaces.darts.genotypes.DartsGenotype`."""
    from raynas.spaces.darts.genotypes import DartsGenotype

    try:
        cells = ast.literal_eval(key) if isinstance(key, str) else key
        normal, reduce = cells
        pairs = [[(NASLIB_DARTS_OPS[int(o)], int(i)) for i, o in cell] for cell in (normal, reduce)]
    except (ValueError, SyntaxError, TypeError, IndexError) as e:
        raise InvalidArchitectureError(f"not a NASLib compact NB301 genotype ({type(e).__name__}: {e}): "
                                       f"{str(key)[:80]!r}") from None
    if any(len(p) != 8 for p in pairs):
        raise InvalidArchitectureError(f"a NASLib compact NB301 cell has 8 edges, got {[len(p) for p in pairs]}")
    return DartsGenotype.from_pairs(*pairs)


def decode_nb301_keys(keys: pa.Table) -> tuple[np.ndarray, list[str]]:
    """``(darts_cifar index int64 [n], canonical genotype strings [n])`` of the ``naslib_key`` column."""
    from raynas.spaces import create_space

    space = create_space("darts_cifar")
    try:
        genos = [naslib_compact_to_genotype(k) for k in keys.column("naslib_key").to_pylist()]
        return np.array([space.arch_to_index(g) for g in genos], np.int64), [space.format(g) for g in genos]
    except InvalidArchitectureError as e:
        raise DataError(str(e)) from None


ARCH_DECODERS.add("nbsz:nb201", decode_nb201_keys)
ARCH_DECODERS.add("nbsz:nb101", decode_nb101_keys)
ARCH_DECODERS.add("nbsz:nb301", decode_nb301_keys)

# --- the tables -------------------------------------------------------------------------------------------------
for _key, _space, _rows, _bench, _keys in (
    ("nb201", "nb201", "725 rows", "nb201", ("naslib_key", "arch_index", "arch_str")),
    ("nb101", "nb101", "500 rows, 292 cells", "nbsz_nb101", ("naslib_key",)),
    ("nb301", "darts_cifar", "725 rows", "nbsz_nb301", ("naslib_key",)),
):
    register_table(PublishedTable(
        source="nbsz", space_key=_key, dataset="cifar10", space=_space, relpath=f"nbsz/{_key}_cifar10.parquet",
        key_columns=_keys, decoder=f"nbsz:{_key}", metrics=NASLIB_METRICS, target="val_accuracy", benchmark=_bench,
        title=f"NAS-Bench-Suite-Zero {_key.upper()} CIFAR-10 sample ({_rows})", citation=SOURCES["nbsz"],
    ))


# --- sample benchmarks -----------------------------------------------------------------------------------------
#: the sample's (absent) query cost column: NB-Suite-Zero records no training time
COST_COLUMN = "query_cost_seconds"


@dataclass(frozen=True)
class SampleBenchmark(Benchmark):
    """A benchmark over a published table's ground truth (its ``target``, e.g. ``val_accuracy``), for the
    architectures the table holds only. Columns a reader may ask for: ``arch_index``, ``arch``, the target,
    ``n_rows`` (file rows of the arch) and :data:`COST_COLUMN` (0)."""

    spec: str = ""

    def __post_init__(self) -> None:
        super().__post_init__()
        parse_spec(self.spec)  # an unknown spec fails at registration, not at the first query

    def __reduce__(self) -> tuple[Any, tuple[dict[str, Any]]]:
        # the base pickles as a plain Benchmark; this keeps the class (and its read) across processes
        return (_rebuild_sample, ({f.name: _plain(getattr(self, f.name)) for f in fields(self)},))

    def read(self, columns: Sequence[str], path: str | Path | None = None) -> pa.Table:
        """``columns`` of the sample's ground truth (see the class docstring), one row per architecture.

        Raises:
            DataError: the table is absent or unreadable (naming the file and ``RAYNAS_DATA``), or a column is
                not one of the sample's.
        """
        try:
            t = read_published_target(self.spec, path=path)
        except DataError:
            raise
        except RaynasError as e:  # a decoder or spec problem reads as "cannot read the table" to an oracle
            raise DataError(f"cannot read the {self.title} table: {e}") from None
        t = t.append_column(COST_COLUMN, pa.array(np.zeros(t.num_rows), pa.float64()))
        missing = [c for c in columns if c not in t.column_names]
        if missing:
            raise DataError(f"the {self.title} table {self.resolve_path(path)} has no column(s) {missing} "
                            f"(it has {t.column_names})")
        return t.select(list(columns))


def _plain(value: Any) -> Any:
    from types import MappingProxyType

    return dict(value) if isinstance(value, MappingProxyType) else value


def _rebuild_sample(kwargs: dict[str, Any]) -> SampleBenchmark:
    return SampleBenchmark(**kwargs)


def _sample(key: str, space: str, title: str, rows: str) -> SampleBenchmark:
    spec = f"nbsz:{key}:cifar10"
    acc = f"CIFAR-10 accuracy (%) of the NB-Suite-Zero {key.upper()} sample ({rows}; val_accuracy)"
    return SampleBenchmark(
        name=f"nbsz_{key}",
        space=space,
        title=title,
        relpath=parse_spec(spec).relpath,
        query_column="val_accuracy",
        cost_column=COST_COLUMN,
        finals={"cifar10": "val_accuracy"},
        default_dataset="cifar10",
        labels={"val_accuracy": acc, COST_COLUMN: "query cost (s): not recorded by the sample, 0"},
        answer_units={"val_accuracy": f"% accuracy (NB-Suite-Zero {key.upper()} sample val_accuracy)"},
        axis_labels={"val_accuracy": "CIFAR-10 acc (NB-Suite-Zero)"},
        obtain=f"set RAYNAS_DATA to a folder that holds {parse_spec(spec).relpath} (NAS-Bench-Suite-Zero sample)",
        sample=True,
        spec=spec,
    )


NBSZ_NB101 = register_benchmark(_sample("nb101", "nb101", "NB101 NB-Suite-Zero sample", "500 rows, 292 cells"))
NBSZ_NB301 = register_benchmark(_sample("nb301", "darts_cifar", "NB301 NB-Suite-Zero sample", "725 genotypes"))
