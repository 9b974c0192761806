"""NAS-Bench-101 benchmark: registration, the tfrecord / user-table converters, the NB-Suite-Zero sample checks."""

from __future__ import annotations

import base64
import json
import struct
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from raynas.errors import DataError, InvalidArchitectureError
from raynas.oracles.base import BenchmarkTableOracle, create_oracle
from raynas.spaces import benchmark_for_space, create_space
from raynas.spaces.nb101.benchmark import (
    NB101_BENCHMARK, NB101_NBSZ, convert_nb101, crc32c, decode_model_metrics, decode_naslib_key, indices_of,
    nbsz_sample_table, read_tfrecord,
)
from raynas.spaces.nb101.cell import OPS_NB101, make_cell
from raynas.spaces.nb101.model import param_count
from raynas_tests.scripts import load_script

C3, C1, MP = OPS_NB101
INCEPTION = ([[0, 1, 1, 1, 0, 1, 0], [0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 1, 0, 0],
              [0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0, 0]],
             ["input", C1, C3, C3, C3, MP, "output"])


# --- a writer of the official format (TFRecord of JSON rows with a base64 ModelMetrics protobuf) ----------------
def _varint(v: int) -> bytes:
    out = b""
    while True:
        b, v = v & 0x7F, v >> 7
        out += bytes([b | (0x80 if v else 0)])
        if not v:
            return out


def _model_metrics(params: int, evals: list[tuple[float, float, float, float, float]]) -> bytes:
    msg = b""
    for ev in evals:
        sub = b"".join(_varint((k << 3) | 1) + struct.pack("<d", x) for k, x in enumerate(ev, start=1))
        sub += _varint((6 << 3) | 2) + _varint(4) + b"ckpt"  # a string field the reader skips
        msg += _varint((1 << 3) | 2) + _varint(len(sub)) + sub
    return msg + _varint(2 << 3) + _varint(params) + _varint((3 << 3) | 1) + struct.pack("<d", 1234.5)


def _masked(c: int) -> int:
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _write_tfrecord(path: Path, records: list[bytes]) -> None:
    with path.open("wb") as f:
        for r in records:
            head = struct.pack("<Q", len(r))
            f.write(head + struct.pack("<I", _masked(crc32c(head))) + r + struct.pack("<I", _masked(crc32c(r))))


def _row(cell_hash: str, matrix, ops, params: int, run: int, epochs: int = 108) -> bytes:
    evals = [(0.0, 0.0, 0.1, 0.1, 0.1), (54.0, 500.0 + run, 0.8, 0.8, 0.8),
             (108.0, 1000.0 + run, 1.0, 0.90 + run / 100, 0.89 + run / 100)]
    adj = "".join(str(int(v)) for r in matrix for v in r)
    metrics = base64.b64encode(_model_metrics(params, evals)).decode()
    return json.dumps([cell_hash, epochs, adj, ",".join(ops), metrics]).encode()


@pytest.fixture()
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RAYNAS_DATA", str(tmp_path))
    return tmp_path


def _small_tfrecord(path: Path) -> tuple[Path, object, object]:
    """Two cells x 3 runs at 108 epochs (+ one 12-epoch row), the first given in a non-canonical order."""
    space = create_space("nb101")
    inc = make_cell(*INCEPTION)
    other = space.index_to_arch(1234)
    recs = []
    for run in range(3):
        recs.append(_row(inc.module_hash(), INCEPTION[0], INCEPTION[1], 2694282, run))
        recs.append(_row(other.module_hash(), other.matrix, other.full_ops(), param_count(other, 10), run))
    recs.append(_row(inc.module_hash(), INCEPTION[0], INCEPTION[1], 2694282, 0, epochs=12))
    _write_tfrecord(path, recs)
    return path, inc, other


def test_nb101_is_registered_as_the_spaces_benchmark_and_oracle() -> None:
    assert benchmark_for_space("nb101") is NB101_BENCHMARK
    assert NB101_BENCHMARK.relpath == "nb101/nb101_cifar10.parquet"
    assert "108-epoch" in NB101_BENCHMARK.label(NB101_BENCHMARK.query_column)


def test_crc32c_check_value() -> None:
    assert crc32c(b"123456789") == 0xE3069283  # the standard CRC-32C check value


def test_model_metrics_decoder_matches_protobuf(tmp_path: Path) -> None:
    """Our hand-written encoder and decoder against the protobuf library's own encoding of the same schema."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    fd = descriptor_pb2.FileDescriptorProto(name="mm.proto", package="nasbench", syntax="proto2")
    ev = fd.message_type.add(name="EvaluationData")
    for k, name in enumerate(["current_epoch", "training_time", "train_accuracy", "validation_accuracy",
                              "test_accuracy"], start=1):
        ev.field.add(name=name, number=k, type=1, label=1)  # TYPE_DOUBLE, optional
    ev.field.add(name="checkpoint_path", number=6, type=9, label=1)
    mm = fd.message_type.add(name="ModelMetrics")
    mm.field.add(name="evaluation_data", number=1, type=11, label=3, type_name=".nasbench.EvaluationData")
    mm.field.add(name="trainable_parameters", number=2, type=5, label=1)
    mm.field.add(name="total_time", number=3, type=1, label=1)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fd)
    cls = message_factory.GetMessageClass(pool.FindMessageTypeByName("nasbench.ModelMetrics"))
    m = cls(trainable_parameters=2694282, total_time=1.5)
    for k in range(3):
        m.evaluation_data.add(current_epoch=54.0 * k, training_time=100.0 * k, validation_accuracy=0.9 + k / 100,
                              test_accuracy=0.5, train_accuracy=1.0, checkpoint_path="x")
    got = decode_model_metrics(m.SerializeToString())
    assert got["trainable_parameters"] == 2694282 and got["total_time"] == 1.5
    assert got["evaluation_data"][2] == {"current_epoch": 108.0, "training_time": 200.0, "train_accuracy": 1.0,
                                         "validation_accuracy": 0.92, "test_accuracy": 0.5}
    ours = decode_model_metrics(_model_metrics(7, [(1.0, 2.0, 3.0, 4.0, 5.0)]))
    parsed = cls.FromString(_model_metrics(7, [(1.0, 2.0, 3.0, 4.0, 5.0)]))
    assert ours["trainable_parameters"] == parsed.trainable_parameters == 7
    assert ours["evaluation_data"][0]["test_accuracy"] == parsed.evaluation_data[0].test_accuracy == 5.0


def test_convert_official_tfrecord_into_the_benchmark_table(data: Path) -> None:
    src, inc, other = _small_tfrecord(data / "nasbench_only108.tfrecord")
    out = convert_nb101(src)
    assert out == data / "nb101" / "nb101_cifar10.parquet"
    t = pq.read_table(out).to_pydict()
    space = create_space("nb101")
    assert sorted(t["arch_index"]) == sorted([space.arch_to_index(inc), space.arch_to_index(other)])
    k = t["arch_index"].index(space.arch_to_index(inc))
    assert t["module_hash"][k] == "28cfc7874f6d200472e1a9dcd8650aa0" and t["params"][k] == 2694282
    assert t["n_runs"][k] == 3  # the 12-epoch row is not a 108-epoch run
    assert t["cifar10_valid_acc_108ep"][k] == pytest.approx(91.0)  # mean of 90, 91, 92 %
    assert t["cifar10_test_acc_108ep"][k] == pytest.approx(90.0)
    assert t["cifar10_train_seconds_108ep"][k] == pytest.approx(1001.0)
    oracle = create_oracle("nb101")
    res = oracle.query(space.arch_to_index(inc))
    assert (res.value, res.cost_seconds) == (pytest.approx(91.0), pytest.approx(1001.0))
    assert oracle.final(space.arch_to_index(inc)) == pytest.approx(90.0)
    assert NB101_BENCHMARK.answer(space.arch_to_index(inc)).rank == 1
    # the other epoch budgets of the full file
    t12 = pq.read_table(convert_nb101(src, data / "t12.parquet", epochs=12)).to_pydict()
    assert t12["n_runs"] == [1]


def test_tfrecord_corruption_and_wrong_hashes_are_data_errors(data: Path) -> None:
    src, _, _ = _small_tfrecord(data / "a.tfrecord")
    raw = bytearray(src.read_bytes())
    raw[20] ^= 0xFF  # inside the first record's data
    bad = data / "bad.tfrecord"
    bad.write_bytes(bytes(raw))
    with pytest.raises(DataError, match="data checksum"):
        convert_nb101(bad)
    bad.write_bytes(bytes(raw[:-3]))
    with pytest.raises(DataError, match="truncated|checksum"):
        list(read_tfrecord(bad, check_data_crc=False))
    bad.write_bytes(b"not a tfrecord at all")
    with pytest.raises(DataError, match="length checksum"):
        convert_nb101(bad)
    wrong = data / "wrong.tfrecord"
    _write_tfrecord(wrong, [_row("0" * 32, INCEPTION[0], INCEPTION[1], 1, 0)])
    with pytest.raises(DataError, match="differs from its recomputed hash"):
        convert_nb101(wrong)
    with pytest.raises(DataError, match="cannot read"):
        convert_nb101(data / "absent.tfrecord")


def test_convert_a_users_table_csv_and_parquet(data: Path) -> None:
    space = create_space("nb101")
    cells = [space.index_to_arch(i) for i in (5, 77, 4000)]
    rows = {"module_adjacency": ["".join(str(v) for r in c.matrix for v in r) for c in cells],
            "module_operations": [",".join(c.full_ops()) for c in cells],
            "validation_accuracy": [0.9, 0.8, 0.7], "test_accuracy": [0.85, 0.75, 0.65],
            "training_time": [10.0, 20.0, 30.0]}
    pq.write_table(pa.table(rows), data / "mine.parquet")
    t = pq.read_table(convert_nb101(data / "mine.parquet")).to_pydict()
    assert t["arch_index"] == [5, 77, 4000] and t["params"] == [-1, -1, -1]
    assert t["module_hash"] == [c.module_hash() for c in cells]
    import pyarrow.csv as pcsv

    pcsv.write_csv(pa.table(rows), data / "mine.csv")
    assert pq.read_table(convert_nb101(data / "mine.csv", data / "b.parquet")).to_pydict()["arch_index"] == [5, 77, 4000]
    pq.write_table(pa.table({**rows, "validation_accuracy": [90.0, 80.0, 70.0]}), data / "pct.parquet")
    with pytest.raises(DataError, match="fraction"):
        convert_nb101(data / "pct.parquet")
    pq.write_table(pa.table({"module_adjacency": rows["module_adjacency"]}), data / "few.parquet")
    with pytest.raises(DataError, match="lacks column"):
        convert_nb101(data / "few.parquet")
    pq.write_table(pa.table({**rows, "module_operations": ["input,conv9,output"] * 3}), data / "op.parquet")
    with pytest.raises(DataError, match="not an NB101 cell"):
        convert_nb101(data / "op.parquet")


def test_naslib_keys_decode_in_their_own_order() -> None:
    key = "(" + ", ".join(map(str, [v for r in INCEPTION[0] for v in r] + [0, 3, 4, 4, 4, 2, 1])) + ")"
    spec = decode_naslib_key(key)
    assert spec.matrix == tuple(tuple(r) for r in INCEPTION[0]) and spec.ops == tuple(INCEPTION[1][1:-1])
    assert spec.canonical() == make_cell(*INCEPTION)
    assert indices_of([spec]).tolist() == [create_space("nb101").arch_to_index(make_cell(*INCEPTION))]
    with pytest.raises(InvalidArchitectureError, match="56|op codes"):
        decode_naslib_key("(0, 1, 2)")


# --- the real NAS-Bench-Suite-Zero sample ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def nbsz() -> dict:
    from raynas.spaces.nb101.benchmark import nbsz_source_path

    p = nbsz_source_path()
    if not p.exists():
        pytest.skip(f"NAS-Bench-Suite-Zero NB101 sample not found at {p} (set RAYNAS_DATA)")
    return pq.read_table(p).to_pydict()


def test_params_of_all_500_nbsz_archs_equal_their_column(nbsz: dict) -> None:
    specs = [decode_naslib_key(k) for k in nbsz["naslib_key"]]
    counted = np.array([param_count(s, 10) for s in specs])
    assert np.array_equal(np.round(counted / 1e6, 6), np.round(np.array(nbsz["params"]), 6))
    space = create_space("nb101")
    for s, want in list(zip(specs, counted))[:12]:  # the counter is the built network's count
        assert sum(p.numel() for p in space.module_as_given(s.matrix, s.ops, 10).parameters()) == want


def test_flops_are_naslibs_minus_its_bn_relu_and_pool_terms(nbsz: dict) -> None:

    import torch

    from raynas.data.batch import Batch
    from raynas.metrics import get_metric

    bench = load_script("bench_nb101")
    space = create_space("nb101")
    batch = Batch(torch.zeros(1, 3, 32, 32), torch.zeros(1, dtype=torch.long), 10)
    for key, want in list(zip(nbsz["naslib_key"], nbsz["flops"]))[:8]:
        s = decode_naslib_key(key)
        net = space.module_as_given(s.matrix, s.ops, 10)
        got = (get_metric("flops").fn(net, batch) + bench.naslib_flops_offset(net, batch.inputs)) / 1e6
        assert got == pytest.approx(want, abs=1e-6)


def test_nbsz_sample_table_is_one_row_per_cell_and_a_table_oracle(nbsz: dict, tmp_path: Path) -> None:
    p = nbsz_sample_table(tmp_path / "s.parquet")
    t = pq.read_table(p).to_pydict()
    assert len(t["arch_index"]) == 292 and sum(t["n_rows"]) == 500
    assert t["n_rows"][t["arch_index"].index(0)] == 55  # the input -> output cell
    val = np.array(nbsz["val_accuracy"])
    idx = indices_of([decode_naslib_key(k) for k in nbsz["naslib_key"]])
    k = int(np.argmax(t["n_rows"]))
    assert t["val_accuracy"][k] == pytest.approx(val[idx == t["arch_index"][k]].mean())
    oracle = BenchmarkTableOracle(NB101_NBSZ, p)
    assert len(oracle) == 292 and oracle.query(0).cost_seconds == 0.0
    assert oracle.best_final() == pytest.approx(max(t["val_accuracy"]))


def test_robot_searches_the_nbsz_pool(nbsz: dict, tmp_path: Path) -> None:
    from raynas.search import CandidatePool, RoBoT

    p = nbsz_sample_table(tmp_path / "s.parquet")
    pool = CandidatePool.from_table(pq.read_table(p), ["grad_norm", "snip", "synflow", "jacov"])
    oracle = BenchmarkTableOracle(NB101_NBSZ, p)
    r = RoBoT(pool, oracle, budget=8, seed=0).run()
    assert len(r["queried"]) == 8 and set(r["queried"]) <= set(pool.arch_index.tolist())
    assert r["final"] == max(oracle.final(i) for i in r["queried"] if oracle.query(i).value == max(r["values"]))
