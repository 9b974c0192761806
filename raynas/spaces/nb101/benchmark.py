"""NAS-Bench-101 ground truth, registered beside the ``nb101`` space, and the converters that produce it.

**The benchmark** (``nb101``): ``$RAYNAS_DATA/nb101/nb101_cifar10.parquet``, one row per cell, keyed by the
space's index (:mod:`raynas.spaces.nb101.space`). Query = CIFAR-10 validation accuracy after the 108-epoch schedule,
cost = that training's time, final = test accuracy after the same training (means over the benchmark's
3 runs; accuracies in %). Columns: ``arch_index, module_hash, cifar10_valid_acc_108ep, cifar10_test_acc_108ep,
cifar10_train_seconds_108ep, params, n_runs``. The full table is not shipped: build it once with
:func:`convert_nb101` from the official ``nasbench_only108.tfrecord`` (read here without TensorFlow: the
file is TFRecord framing, CRC-32C checked, of JSON rows whose metrics are a base64 ``ModelMetrics`` protobuf,
decoded by the few lines below) or from a user's own table (Parquet/CSV, see :func:`convert_nb101`).

**The NAS-Bench-Suite-Zero sample** (:data:`NB101_NBSZ`, not registered: a space has one benchmark): the
500 NB101 cells of ``nbsz/nb101_cifar10.parquet`` with NASLib's zero-cost scores and ``val_accuracy``.
:func:`nbsz_sample_table` turns it into a table an oracle reads (query and final = ``val_accuracy``; the file
records no training time, so the query cost column is 0 and a search's budget is its number of queries).
"""

from __future__ import annotations

import base64
import json
import re
import struct
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from raynas.errors import DataError, InvalidArchitectureError
from raynas.spaces.benchmarks import Benchmark, data_root, register_benchmark
from raynas.spaces.nb101.cell import OPS_NB101, PrunedSpec, canonical_codes, prune

__all__ = [
    "NB101_BENCHMARK", "NB101_NBSZ", "NASLIB_OPS", "convert_nb101", "crc32c", "decode_model_metrics",
    "decode_naslib_key", "indices_of", "nbsz_sample_table", "nbsz_source_path", "read_nb101_tfrecord", "read_tfrecord",
]

NB101_BENCHMARK = register_benchmark(Benchmark(
    name="nb101",
    space="nb101",
    title="NB101",
    relpath="nb101/nb101_cifar10.parquet",
    query_column="cifar10_valid_acc_108ep",
    cost_column="cifar10_train_seconds_108ep",
    finals={"cifar10": "cifar10_test_acc_108ep"},
    default_dataset="cifar10",
    labels={
        "cifar10_valid_acc_108ep": "108-epoch validation accuracy (%) on CIFAR-10",
        "cifar10_train_seconds_108ep": "108-epoch training time (s) on CIFAR-10 (TPU v2)",
        "cifar10_test_acc_108ep": "108-epoch test accuracy (%) on CIFAR-10",
    },
    answer_units={"cifar10_test_acc_108ep": "% test accuracy after 108 epochs"},
    obtain=("make it from the official nasbench_only108.tfrecord with python -c \"from raynas.spaces.nb101.benchmark "
            "import convert_nb101; convert_nb101('nasbench_only108.tfrecord')\" (or from your own table, see "
            "convert_nb101's docstring)"),
    axis_labels={"cifar10_test_acc_108ep": "CIFAR-10 test acc (108 ep)"},
))

#: the NAS-Bench-Suite-Zero sample as a benchmark description (not registered; see the module docstring)
NB101_NBSZ = Benchmark(
    name="nb101_nbsz",
    space="nb101",
    title="NB101 (NB-Suite-Zero 500-arch sample)",
    relpath="nb101/nb101_nbsz_sample.parquet",
    query_column="val_accuracy",
    cost_column="query_cost_seconds",
    finals={"cifar10": "val_accuracy"},
    default_dataset="cifar10",
    labels={
        "val_accuracy": "NB101 CIFAR-10 accuracy (%) as NAS-Bench-Suite-Zero records it",
        "query_cost_seconds": "query cost (s): not recorded by NAS-Bench-Suite-Zero, 0",
    },
    answer_units={"val_accuracy": "% accuracy (NAS-Bench-Suite-Zero val_accuracy)"},
    axis_labels={"val_accuracy": "CIFAR-10 acc (NB-Suite-Zero)"},
)

#: NASLib's op codes in its NB101 keys (``naslib/search_spaces/nasbench101/conversions.py``)
NASLIB_OPS: tuple[str, ...] = ("input", "output", "maxpool3x3", "conv1x1-bn-relu", "conv3x3-bn-relu")

_TFRECORD = (".tfrecord", ".tfrecords")

# --- keys -> indices ------------------------------------------------------------------------------------------
def decode_naslib_key(key: str | Sequence[int]) -> PrunedSpec:
    """NASLib's NB101 key (``"(0, 1, ...)"``: the 7x7 adjacency row-major, then 7 op codes of
    :data:`NASLIB_OPS`) as a pruned cell in the key's own vertex order."""
    vals = [int(v) for v in re.findall(r"-?\d+", key)] if isinstance(key, str) else [int(v) for v in key]
    if len(vals) != 56 or any(not 0 <= v < len(NASLIB_OPS) for v in vals[49:]):
        raise InvalidArchitectureError(f"NASLib NB101 key must be 49 adjacency entries and 7 op codes in "
                                       f"0..{len(NASLIB_OPS) - 1}, got {len(vals)} numbers: {key!r}")
    return prune(np.array(vals[:49]).reshape(7, 7), [NASLIB_OPS[v] for v in vals[49:]])


def indices_of(specs: Sequence[PrunedSpec]) -> np.ndarray:
    """Space indices of many pruned cells at once (vectorised canonical codes, grouped by vertex count)."""
    from raynas.spaces.nb101.space import all_codes

    codes = np.empty(len(specs), np.int64)
    by_n: dict[int, list[int]] = {}
    for k, s in enumerate(specs):
        by_n.setdefault(len(s.matrix), []).append(k)
    for n, ks in by_n.items():
        mats = np.array([specs[k].matrix for k in ks], np.int8).reshape(len(ks), n, n)
        labels = np.array([[OPS_NB101.index(o) for o in specs[k].ops] for k in ks], np.int64).reshape(len(ks), n - 2)
        codes[ks] = canonical_codes(mats, labels, paired=True)
    table = all_codes()
    idx = np.searchsorted(table, codes)
    if (idx >= len(table)).any() or (table[np.minimum(idx, len(table) - 1)] != codes).any():
        raise InvalidArchitectureError("NB101: a cell is not in the enumeration")  # a pruned valid cell always is
    return idx.astype(np.int64)


# --- TFRecord and protobuf, without TensorFlow ------------------------------------------------------------------
def _crc_table() -> list[int]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = _crc_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), the checksum of TFRecord files."""
    c = 0xFFFFFFFF
    t = _CRC_TABLE
    for b in data:
        c = t[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def _masked(crc: int) -> int:
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def read_tfrecord(path: str | Path, *, check_data_crc: bool = True) -> Iterator[bytes]:
    """The records of a TFRecord file: ``uint64 length, uint32 masked CRC-32C of the length, data, uint32
    masked CRC-32C of the data`` (little endian). A bad length CRC or a truncated file is a DataError; so is a
    bad data CRC unless ``check_data_crc`` is False (pure-Python CRC: about 1 s per 10 MB)."""
    p = Path(path)
    try:
        f = p.open("rb")
    except OSError as e:
        raise DataError(f"cannot read {p}: {e.strerror or e}") from None
    with f:
        k = 0
        while True:
            head = f.read(12)
            if not head:
                return
            if len(head) < 12:
                raise DataError(f"{p}: truncated TFRecord header at record {k}")
            (length,), (lcrc,) = struct.unpack("<Q", head[:8]), struct.unpack("<I", head[8:])
            if _masked(crc32c(head[:8])) != lcrc:
                raise DataError(f"{p}: bad length checksum at record {k} (not a TFRecord file?)")
            data, tail = f.read(length), f.read(4)
            if len(data) < length or len(tail) < 4:
                raise DataError(f"{p}: truncated TFRecord at record {k}")
            if check_data_crc and _masked(crc32c(data)) != struct.unpack("<I", tail)[0]:
                raise DataError(f"{p}: bad data checksum at record {k}")
            yield data
            k += 1


def _fields(buf: bytes) -> Iterator[tuple[int, int, Any]]:
    """``(field number, wire type, value)`` of a protobuf message (varint, 64-bit, bytes, 32-bit)."""
    i, n = 0, len(buf)

    def varint() -> int:
        nonlocal i
        shift = out = 0
        while True:
            if i >= n:
                raise DataError("truncated protobuf varint")
            b = buf[i]
            i += 1
            out |= (b & 0x7F) << shift
            if b < 0x80:
                return out
            shift += 7

    while i < n:
        tag = varint()
        num, wt = tag >> 3, tag & 7
        if wt == 0:
            yield num, wt, varint()
        elif wt == 1:
            yield num, wt, struct.unpack("<d", buf[i:i + 8])[0]
            i += 8
        elif wt == 2:
            ln = varint()
            yield num, wt, buf[i:i + ln]
            i += ln
        elif wt == 5:
            yield num, wt, struct.unpack("<f", buf[i:i + 4])[0]
            i += 4
        else:
            raise DataError(f"unsupported protobuf wire type {wt}")
        if i > n:
            raise DataError("truncated protobuf message")


_EVAL_FIELDS = {1: "current_epoch", 2: "training_time", 3: "train_accuracy", 4: "validation_accuracy",
                5: "test_accuracy"}


def decode_model_metrics(buf: bytes) -> dict[str, Any]:
    """NAS-Bench-101's ``ModelMetrics`` protobuf (``model_metrics.proto``): ``{"evaluation_data": [{...}],
    "trainable_parameters": int, "total_time": float}``."""
    out: dict[str, Any] = {"evaluation_data": [], "trainable_parameters": None, "total_time": None}
    for num, wt, v in _fields(buf):
        if num == 1 and wt == 2:
            out["evaluation_data"].append({_EVAL_FIELDS[k]: x for k, w, x in _fields(v) if k in _EVAL_FIELDS and w == 1})
        elif num == 2 and wt == 0:
            out["trainable_parameters"] = int(v)
        elif num == 3 and wt == 1:
            out["total_time"] = float(v)
    return out


def read_nb101_tfrecord(path: str | Path, *, epochs: int = 108, check_data_crc: bool = True) -> list[dict[str, Any]]:
    """One dict per training run at ``epochs`` of an official NB101 tfrecord: ``module_hash``, ``matrix``
    ([n, n] int8), ``ops`` (with input/output), ``params``, and the final evaluation's ``training_time``,
    ``validation_accuracy``, ``test_accuracy`` (fractions, as stored)."""
    runs = []
    for k, rec in enumerate(read_tfrecord(path, check_data_crc=check_data_crc)):
        try:
            h, ep, adj, ops, metrics = json.loads(rec.decode("utf-8"))
            if int(ep) != epochs:
                continue
            dim = int(round(len(adj) ** 0.5))
            m = decode_model_metrics(base64.b64decode(metrics))
            final = m["evaluation_data"][2]
            runs.append({"module_hash": str(h), "matrix": np.array([int(c) for c in adj], np.int8).reshape(dim, dim),
                         "ops": ops.split(","), "params": m["trainable_parameters"],
                         "training_time": final["training_time"], "validation_accuracy": final["validation_accuracy"],
                         "test_accuracy": final["test_accuracy"]})
        except (ValueError, TypeError, KeyError, IndexError) as e:
            raise DataError(f"{path}: record {k} is not a NAS-Bench-101 row: {type(e).__name__}: {e}") from None
    return runs


def _read_user_table(path: Path) -> list[dict[str, Any]]:
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    try:
        # CSV: keep 0/1 strings as text (type inference would read "0110..." as a number and drop zeros)
        text = pcsv.ConvertOptions(column_types={"module_adjacency": pa.string(), "module_hash": pa.string()})
        t = pcsv.read_csv(path, convert_options=text) if path.suffix.lower() == ".csv" else pq.read_table(path)
    except (OSError, pa.ArrowException) as e:
        raise DataError(f"cannot read NB101 table {path}: {e}") from None
    need = ["module_adjacency", "module_operations", "validation_accuracy", "test_accuracy", "training_time"]
    missing = [c for c in need if c not in t.column_names]
    if missing:
        raise DataError(f"NB101 table {path} lacks column(s) {missing}; needs {need} (+ optional module_hash, "
                        "trainable_parameters)")
    d = t.to_pydict()
    runs = []
    for k in range(t.num_rows):
        adj, ops = d["module_adjacency"][k], d["module_operations"][k]
        if isinstance(adj, str):
            adj = [int(c) for c in re.sub(r"[^01]", "", adj)]
        if not isinstance(adj, (list, tuple)) or not isinstance(ops, (str, list, tuple)):
            raise DataError(f"NB101 table {path}: row {k}: module_adjacency must be a 0/1 string or list and "
                            f"module_operations a string or list, got {adj!r} and {ops!r}")
        adj = np.asarray(adj, np.int64).ravel()
        dim = int(round(len(adj) ** 0.5))
        if dim * dim != len(adj):
            raise DataError(f"NB101 table {path}: row {k}: module_adjacency of {len(adj)} entries is not square")
        runs.append({"module_hash": d.get("module_hash", [None] * t.num_rows)[k], "matrix": adj.reshape(dim, dim),
                     "ops": ops.split(",") if isinstance(ops, str) else list(ops),
                     "params": d.get("trainable_parameters", [None] * t.num_rows)[k],
                     "training_time": d["training_time"][k], "validation_accuracy": d["validation_accuracy"][k],
                     "test_accuracy": d["test_accuracy"][k]})
    return runs


def convert_nb101(source: str | Path, out: str | Path | None = None, *, epochs: int = 108,
                  check_data_crc: bool = True, check_hashes: bool = True) -> Path:
    """Write the ``nb101`` benchmark table (module docstring) from the official tfrecord or a user's table.

    ``source``: ``*.tfrecord`` (``nasbench_only108.tfrecord``, or ``nasbench_full.tfrecord`` with ``epochs``
    4, 12, 36 or 108), or a Parquet / CSV table with one row per run or per cell and columns
    ``module_adjacency`` (n*n 0/1 entries, a string or a list), ``module_operations`` (comma-separated or a
    list, with input and output), ``validation_accuracy``, ``test_accuracy`` (fractions, as the benchmark
    stores them), ``training_time`` (s) and optionally ``module_hash`` and ``trainable_parameters``. Runs of
    one cell (isomorphic rows are one cell) are averaged. ``out`` defaults to the registered location.
    ``check_hashes`` recomputes every cell's benchmark hash and requires it to equal the source's
    ``module_hash`` where one is given (a DataError otherwise); on the full benchmark that is ~24 million MD5s,
    a minute or two, as is the pure-Python CRC of ``check_data_crc`` on the 500 MB file.
    """
    import pyarrow as pa

    from raynas.store.atomic import write_parquet

    src = Path(source)
    runs = (read_nb101_tfrecord(src, epochs=epochs, check_data_crc=check_data_crc) if src.suffix in _TFRECORD
            else _read_user_table(src))
    if not runs:
        raise DataError(f"{src}: no NB101 runs{f' at {epochs} epochs' if src.suffix in _TFRECORD else ''}")
    try:
        specs = [prune(r["matrix"], r["ops"]) for r in runs]
    except InvalidArchitectureError as e:
        raise DataError(f"{src}: a row is not an NB101 cell: {e}") from None
    idx = indices_of(specs)
    uniq, inv = np.unique(idx, return_inverse=True)
    cols: dict[str, np.ndarray] = {}
    for name, scale in (("validation_accuracy", 100.0), ("test_accuracy", 100.0), ("training_time", 1.0)):
        v = np.array([np.nan if r[name] is None else float(r[name]) for r in runs])
        if scale == 100.0 and (np.nanmax(v) > 1.0 or np.nanmin(v) < 0.0):
            raise DataError(f"{src}: {name} must be a fraction in [0, 1] as the benchmark stores it")
        cols[name] = np.bincount(inv, weights=np.nan_to_num(v), minlength=len(uniq)) * scale
        cols[name] /= np.bincount(inv, weights=np.isfinite(v).astype(float), minlength=len(uniq))
    n_runs = np.bincount(inv, minlength=len(uniq))
    params = np.full(len(uniq), -1, np.int64)
    hashes: list[str | None] = [None] * len(uniq)
    for r, u in zip(runs, inv):
        if r["params"] is not None:
            params[u] = int(r["params"])
        if r["module_hash"] is not None:
            hashes[u] = str(r["module_hash"])
    if check_hashes:
        from raynas.spaces.nb101.space import NB101Space

        space = NB101Space()
        for u, i in enumerate(uniq):
            mine = space.index_to_arch(int(i)).module_hash()
            if hashes[u] is not None and hashes[u] != mine:
                raise DataError(f"{src}: module_hash {hashes[u]} of index {int(i)} differs from its recomputed "
                                f"hash {mine}")
            hashes[u] = mine
    table = pa.table({
        "arch_index": pa.array(uniq, pa.int64()),
        "module_hash": pa.array(hashes, pa.string()),
        "cifar10_valid_acc_108ep": pa.array(cols["validation_accuracy"]),
        "cifar10_test_acc_108ep": pa.array(cols["test_accuracy"]),
        "cifar10_train_seconds_108ep": pa.array(cols["training_time"]),
        "params": pa.array(params, pa.int64()),
        "n_runs": pa.array(n_runs, pa.int64()),
    })
    dest = NB101_BENCHMARK.resolve_path(out)
    dest.parent.mkdir(parents=True, exist_ok=True)
    return write_parquet(dest, table)


# --- the NAS-Bench-Suite-Zero sample -------------------------------------------------------------------------
def nbsz_source_path() -> Path:
    """``$RAYNAS_DATA/nbsz/nb101_cifar10.parquet``."""
    return data_root() / "nbsz" / "nb101_cifar10.parquet"


def nbsz_sample_table(out: str | Path, source: str | Path | None = None) -> Path:
    """Write the NB-Suite-Zero sample (:data:`NB101_NBSZ`) as an oracle table, one row per cell, to ``out``.

    The 500 keys of the file are NASLib's random 7x7 specs; pruned, they are 292 distinct cells (the
    input -> output cell alone 55 times), and the rows of one cell differ in ``val_accuracy`` because NASLib
    queried one of the benchmark's 3 runs at random each time. So rows are grouped by the cell's space index:
    ``arch_index``, ``n_rows``, the mean of every numeric column of the source (``val_accuracy`` and NASLib's
    proxies), the first ``naslib_key``, and ``query_cost_seconds`` (0: the file records no training time).
    ``source`` defaults to :func:`nbsz_source_path`.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from raynas.store.atomic import write_parquet

    src = Path(source) if source is not None else nbsz_source_path()
    try:
        t = pq.read_table(src)
    except (OSError, pa.ArrowException) as e:
        raise DataError(f"cannot read the NB-Suite-Zero NB101 file {src}: {e}") from None
    if "naslib_key" not in t.column_names or "val_accuracy" not in t.column_names:
        raise DataError(f"{src}: needs columns naslib_key and val_accuracy")
    try:
        idx = indices_of([decode_naslib_key(k) for k in t.column("naslib_key").to_pylist()])
    except InvalidArchitectureError as e:
        raise DataError(f"{src}: {e}") from None
    numeric = [c for c in t.column_names if pa.types.is_floating(t.schema.field(c).type)
               or pa.types.is_integer(t.schema.field(c).type)]
    g = t.select(["naslib_key", *numeric]).append_column("arch_index", pa.array(idx, pa.int64()))
    agg = g.group_by("arch_index", use_threads=False).aggregate(
        [("naslib_key", "first"), ("naslib_key", "count")] + [(c, "mean") for c in numeric])
    agg = agg.select(["arch_index", "naslib_key_count", "naslib_key_first", *(f"{c}_mean" for c in numeric)])
    agg = agg.rename_columns(["arch_index", "n_rows", "naslib_key", *numeric]).sort_by("arch_index")
    agg = agg.append_column("query_cost_seconds", pa.array(np.zeros(agg.num_rows)))
    dest = Path(out)
    dest.parent.mkdir(parents=True, exist_ok=True)
    return write_parquet(dest, agg)
