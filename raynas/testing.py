"""Shared test fakes and tiny fixed networks, one section per task (append only)."""

from __future__ import annotations

# --- metrics B ---
# Tiny fixed networks with hand-set weights for the activation-pattern and NTK metrics (naswot, das_*,
# linear_regions, ntk_trace, ntk_cond, tenas_ntk_cond). Inputs are [B, C, H, W]; the MLPs flatten them.
import torch as _torch_b  # noqa: E402
import torch.nn as _nn_b  # noqa: E402


def two_relu_mlp(inplace: bool = False) -> _nn_b.Module:
    """Flatten -> Linear(2,2) [W=I, b=0] -> ReLU -> Linear(2,1) [w=(1,1), b=-1.5] -> ReLU.

    On inputs (1,1), (1,-1), (-1,-1) (shape [3, 2, 1, 1]) the ReLU codes are 111, 100, 000 (N_A = 3).
    """
    first, second = _nn_b.Linear(2, 2), _nn_b.Linear(2, 1)
    with _torch_b.no_grad():
        first.weight.copy_(_torch_b.eye(2))
        first.bias.zero_()
        second.weight.fill_(1.0)
        second.bias.fill_(-1.5)
    return _nn_b.Sequential(_nn_b.Flatten(), first, _nn_b.ReLU(inplace=inplace), second, _nn_b.ReLU(inplace=inplace))


def threshold_net(in_features: int, thresholds: list[float], axes: list[int] | None = None) -> _nn_b.Module:
    """Flatten -> Linear(in_features, k) -> ReLU where unit j computes ``x[axes[j]] - thresholds[j]``.

    With one axis for every unit the patterns are the ``k + 1`` intervals of a line cut at distinct thresholds;
    with k distinct axes and zero thresholds they are the 2^k orthants.
    """
    k = len(thresholds)
    axes = axes if axes is not None else [0] * k
    lin = _nn_b.Linear(in_features, k)
    with _torch_b.no_grad():
        lin.weight.zero_()
        for j, a in enumerate(axes):
            lin.weight[j, a] = 1.0
        lin.bias.copy_(-_torch_b.tensor(thresholds))
    return _nn_b.Sequential(_nn_b.Flatten(), lin, _nn_b.ReLU())


def linear_classifier(in_features: int, num_classes: int, bias: bool = True) -> _nn_b.Module:
    """Flatten -> Linear: its NTK is known in closed form (true-class logit: [y_i = y_j](x_i . x_j + 1))."""
    return _nn_b.Sequential(_nn_b.Flatten(), _nn_b.Linear(in_features, num_classes, bias=bias))


def linear_bn_classifier(scales: tuple[float, float] = (1.0, 2.0)) -> _nn_b.Module:
    """Flatten -> Linear(2,2, no bias) [W = diag(scales)] -> BatchNorm1d(2, eps=0) [gamma=1, beta=0].

    In eval mode (running mean 0, var 1, eps 0) the BN layer is ``gamma * z + beta`` exactly, so the NTK over
    the ``*weight`` parameters is ``X diag(2 + scales^2) X^T`` while the Linear weight alone gives ``2 X X^T``.
    """
    lin = _nn_b.Linear(2, 2, bias=False)
    with _torch_b.no_grad():
        lin.weight.copy_(_torch_b.diag(_torch_b.tensor(scales)))
    return _nn_b.Sequential(_nn_b.Flatten(), lin, _nn_b.BatchNorm1d(2, eps=0.0))


def tiny_bn_convnet(in_channels: int = 3, num_classes: int = 4, width: int = 4) -> _nn_b.Module:
    """Conv-BN-ReLU x2 (second stride 2) -> global average pool -> Linear; accepts any input size >= 1x1."""
    return _nn_b.Sequential(
        _nn_b.Conv2d(in_channels, width, 3, padding=1, bias=False),
        _nn_b.BatchNorm2d(width),
        _nn_b.ReLU(inplace=True),
        _nn_b.Conv2d(width, width, 3, stride=2, padding=1, bias=False),
        _nn_b.BatchNorm2d(width),
        _nn_b.ReLU(),
        _nn_b.AdaptiveAvgPool2d(1),
        _nn_b.Flatten(),
        _nn_b.Linear(width, num_classes),
    )


# --- search ---
# A synthetic scored pool with known ground truth, and a lookup oracle that counts its calls (RoBoT, baselines).
import numpy as _np_s  # noqa: E402


def synthetic_pool_table(n: int = 200, seed: int = 0) -> tuple[dict[str, _np_s.ndarray], _np_s.ndarray]:
    """``(table, acc)`` for ``n`` archs with indices ``3 * i + 1`` (non-contiguous on purpose).

    Columns: ``good`` = 2 * acc + 5 (ranks archs exactly like acc), ``bad`` = -acc (exactly reversed),
    ``noise`` ~ N(0, 1) (unrelated). ``acc`` [n] are distinct values in [60, 90). The best weights are any
    ``w`` with ``w_good - w_bad`` large against ``|w_noise|``; single metric ``good`` finds the optimum at once.
    """
    rng = _np_s.random.default_rng(seed)
    acc = 60.0 + 30.0 * rng.permutation(n) / n
    table = {
        "arch_index": 3 * _np_s.arange(n, dtype=_np_s.int64) + 1,
        "good": 2.0 * acc + 5.0,
        "bad": -acc,
        "noise": rng.normal(size=n),
    }
    return table, acc


class FakeOracle:
    """Lookup oracle over ``arch_index -> value`` with per-arch ``cost`` and ``final`` (default: value).

    ``calls`` lists every queried arch index, repeats included, so tests can pin caching.
    """

    def __init__(self, arch_index, values, costs=None, finals=None):  # type: ignore[no-untyped-def]
        from raynas.oracles.base import QueryResult

        self._qr = QueryResult
        idx = [int(a) for a in arch_index]
        vals = [float(v) for v in values]
        self.costs = dict(zip(idx, [float(c) for c in costs] if costs is not None else [1.0] * len(idx)))
        self.values = dict(zip(idx, vals))
        self.finals = dict(zip(idx, [float(f) for f in finals] if finals is not None else vals))
        self.calls: list[int] = []

    def _check(self, arch_index: int) -> int:
        from raynas.errors import OracleError

        if int(arch_index) not in self.values:
            raise OracleError(f"unknown architecture {arch_index}")
        return int(arch_index)

    def query(self, arch_index: int):  # type: ignore[no-untyped-def]
        a = self._check(arch_index)
        self.calls.append(a)
        return self._qr(self.values[a], self.costs[a])

    def final(self, arch_index: int) -> float:
        return self.finals[self._check(arch_index)]

    def best_final(self) -> float:
        return max(self.finals.values())


# --- metrics A ---
# Tiny fixed networks with hand-set weights for the zero-cost proxies (params, flops, grad_norm, snip, grasp,
# fisher, synflow, jacob_cov). Inputs are [B, C, H, W]; the linear nets flatten them.
import torch as _torch_a  # noqa: E402
import torch.nn as _nn_a  # noqa: E402


def _linear_a(weight: list[list[float]], bias: list[float] | None) -> _nn_a.Linear:
    w = _torch_a.tensor(weight, dtype=_torch_a.float32)
    lin = _nn_a.Linear(w.shape[1], w.shape[0], bias=bias is not None)
    with _torch_a.no_grad():
        lin.weight.copy_(w)
        if bias is not None:
            lin.bias.copy_(_torch_a.tensor(bias, dtype=_torch_a.float32))
    return lin


def linear_net(weight: list[list[float]], bias: list[float] | None = None) -> _nn_a.Module:
    """Flatten -> Linear with ``W = weight`` ``[out, in]`` and ``b = bias`` (no bias when None)."""
    return _nn_a.Sequential(_nn_a.Flatten(), _linear_a(weight, bias))


def two_layer_linear(
    w1: list[list[float]],
    w2: list[list[float]],
    b1: list[float] | None = None,
    b2: list[float] | None = None,
) -> _nn_a.Module:
    """Flatten -> Linear(W1, b1) -> Linear(W2, b2): ``y = W2 (W1 x + b1) + b2`` (no activation)."""
    return _nn_a.Sequential(_nn_a.Flatten(), _linear_a(w1, b1), _linear_a(w2, b2))


def relu_probe_mlp(d: int) -> _nn_a.Module:
    """Flatten -> Linear(d, d) [W=I, b=0] -> ReLU -> Linear(d, 1) [w=1, b=0]: ``y = sum_j relu(x_j)``.

    Its input Jacobian for sample ``x`` is the indicator vector ``[x_j > 0]`` (one logit).
    """
    return _nn_a.Sequential(
        _nn_a.Flatten(), _linear_a(_torch_a.eye(d).tolist(), [0.0] * d), _nn_a.ReLU(), _linear_a([[1.0] * d], [0.0])
    )


def _fill_a(t: _torch_a.Tensor, phase: float, scale: float) -> None:
    """Deterministic, sign-mixed values independent of the global RNG: ``scale * sin(0.7 * i + phase)``."""
    with _torch_a.no_grad():
        idx = _torch_a.arange(t.numel(), dtype=_torch_a.float64)
        t.copy_((scale * _torch_a.sin(0.7 * idx + phase)).reshape(t.shape))


class TinyConvNet(_nn_a.Module):
    """Conv3x3 -> [BN] -> ReLU -> Conv3x3/stride 2 -> [BN] -> ReLU -> global avg pool -> Linear, fixed weights.

    ``bn=False`` builds the same network with the BN layers left out (identical conv/linear weights), so metrics
    that remove BN must give identical values on both. ``inplace`` selects ``ReLU(inplace=True)``.
    Input ``[B, in_channels, H, W]`` (any ``H, W >= 1``) -> logits ``[B, num_classes]``.
    """

    def __init__(
        self, in_channels: int = 3, num_classes: int = 4, width: int = 4, bn: bool = True, inplace: bool = False
    ):
        super().__init__()
        conv1 = _nn_a.Conv2d(in_channels, width, 3, padding=1)
        conv2 = _nn_a.Conv2d(width, width, 3, stride=2, padding=1, bias=False)
        head = _nn_a.Linear(width, num_classes)
        for i, p in enumerate([conv1.weight, conv1.bias, conv2.weight, head.weight, head.bias]):
            _fill_a(p, phase=0.3 * i, scale=0.5)
        layers: list[_nn_a.Module] = [conv1]
        if bn:
            layers.append(_nn_a.BatchNorm2d(width))
        layers += [_nn_a.ReLU(inplace=inplace), conv2]
        if bn:
            layers.append(_nn_a.BatchNorm2d(width))
        layers += [_nn_a.ReLU(inplace=inplace), _nn_a.AdaptiveAvgPool2d(1), _nn_a.Flatten(), head]
        self.body = _nn_a.Sequential(*layers)

    def forward(self, x: _torch_a.Tensor) -> _torch_a.Tensor:
        return self.body(x)


# --- spaces ---
# Tiny NAS-Bench-201 networks for fast metric / pipeline tests (8x8 inputs work with the default 3 stages).
NB201_CONV3 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"


def tiny_nb201(  # type: ignore[no-untyped-def]
    arch: str = NB201_CONV3, num_classes: int = 4, C: int = 4, N: int = 1, seed: int = 0
):
    """A freshly initialised NB201 network (``[B, 3, H, W] -> [B, num_classes]``, H and W divisible by 4)."""
    import torch as _torch_sp

    from raynas.spaces import create_space

    _torch_sp.manual_seed(seed)
    return create_space("nb201").to_module(arch, num_classes, C=C, N=N)


# --- hnas ---
# A synthetic HNAS pool where the best (t, c) is known by construction.
def hnas_pool_table(  # type: ignore[no-untyped-def]
    n: int = 60, seed: int = 0, kind: str = "target", metric: str = "ntk_trace"
):
    """``(table, acc)``: ``n`` archs (indices ``2 * i + 7``) with columns ``metric`` and ``ntk_cond``.

    ``kind="target"``: ``M`` evenly spread over ``[1, 10]``, ``kappa = 1e-6``, ``acc = 90 - 3 * |M - 6|``: the arch
    closest to ``M = 6`` is best and is ``A*`` exactly for ``t`` near ``0.6`` (scale = max M = 10), whatever ``c``.
    ``kind="kappa"``: ``M`` in ``[5, 6]``, ``kappa`` spread over ``[1, 100]``, ``acc = 90 - kappa / M``: the best arch
    minimises ``kappa / M``, picked for every ``t`` at ``c = -4`` (first term <= 3.6e-3, below the kappa/M gaps).
    """
    import numpy as _np_h

    rng = _np_h.random.default_rng(seed)
    idx = 2 * _np_h.arange(n, dtype=_np_h.int64) + 7
    if kind == "target":
        M = rng.permutation(_np_h.linspace(1.0, 10.0, n))
        kappa = _np_h.full(n, 1e-6)
        acc = 90.0 - 3.0 * _np_h.abs(M - 6.0)
    elif kind == "kappa":
        M = rng.uniform(5.0, 6.0, n)
        kappa = rng.permutation(_np_h.linspace(1.0, 100.0, n))
        acc = 90.0 - kappa / M
    else:
        raise ValueError(f"unknown kind {kind!r}")
    return {"arch_index": idx, metric: M, "ntk_cond": kappa}, acc


# --- data/store ---
# Tiny CIFAR pickle batches in the real on-disk format, and metric results for score-store tests.
def fake_cifar_image(i: int):  # type: ignore[no-untyped-def]
    """``uint8 [32, 32, 3]`` of sample ``i``: channels filled with ``3i, 3i+1, 3i+2 (mod 256)``, and the red
    pixel at row 0, column 1 set to 255 (checks the R/G/B plane and row-major decoding)."""
    import numpy as _np_d

    img = _np_d.empty((32, 32, 3), dtype=_np_d.uint8)
    for c in range(3):
        img[:, :, c] = (3 * i + c) % 256
    img[0, 1, 0] = 255
    return img


def write_fake_cifar(root, variant: str = "cifar10", n_per_file: int = 10, protocol: int = 2):  # type: ignore[no-untyped-def]
    """Write CIFAR ``variant`` batches under ``root/<standard subdir>/``; returns that directory.

    Sample ``i`` (numbered across the split's files) has image :func:`fake_cifar_image` and label
    ``i % num_classes``; the test split numbers from 1000.
    """
    import pickle as _pickle_d
    from pathlib import Path as _Path_d

    import numpy as _np_d

    k = 10 if variant == "cifar10" else 100
    sub = "cifar-10-batches-py" if variant == "cifar10" else "cifar-100-python"
    files = ({"train": [f"data_batch_{j}" for j in range(1, 6)], "test": ["test_batch"]} if variant == "cifar10"
             else {"train": ["train"], "test": ["test"]})
    label_key = b"labels" if variant == "cifar10" else b"fine_labels"
    d = _Path_d(root) / sub
    d.mkdir(parents=True, exist_ok=True)
    for split, names in files.items():
        start = 0 if split == "train" else 1000
        for j, name in enumerate(names):
            ids = range(start + j * n_per_file, start + (j + 1) * n_per_file)
            # [N, 32, 32, 3] -> [N, 3, 32, 32] -> [N, 3072]: R plane, G plane, B plane, each row-major
            data = _np_d.stack([fake_cifar_image(i) for i in ids]).transpose(0, 3, 1, 2).reshape(len(ids), -1)
            obj = {b"batch_label": name.encode(), b"data": data, label_key: [i % k for i in ids]}
            (d / name).write_bytes(_pickle_d.dumps(obj, protocol=protocol))
    meta_name, meta_key = ("batches.meta", b"label_names") if variant == "cifar10" else ("meta", b"fine_label_names")
    (d / meta_name).write_bytes(_pickle_d.dumps({meta_key: [f"class{c}".encode() for c in range(k)]}, protocol=protocol))
    return d


def metric_results(values: dict, status: dict | None = None, device: str = "cpu"):  # type: ignore[no-untyped-def]
    """``MetricResult`` list from ``{metric: value}``; ``status`` overrides per metric (value then None)."""
    from raynas.metrics.engine import MetricResult

    status = status or {}
    out = []
    for m, v in values.items():
        s = status.get(m, "ok")
        out.append(MetricResult(m, v if s == "ok" else None, s, "" if s == "ok" else f"{m} failed", 0.5, device))
    return out


def planned_score_run(  # type: ignore[no-untyped-def]
    run, ids, values, *, shard_size: int = 2, data: str = "digits", status=None
):
    """A complete NB201 score run written by hand into ``run``: the real scoring config planning ``ids`` in
    shards of ``shard_size`` (so completeness checks see a plan), and each arch's rows from ``values(arch) ->
    {metric: value}`` (``status(arch) -> {metric: status}`` or None marks rows failed). Returns ``run``."""
    import pyarrow as pa

    from raynas.parallel.config import ScoreConfig
    from raynas.store import open_store, results_to_table

    store = open_store(run)
    metrics = tuple(values(ids[0]))
    store.save_config(ScoreConfig(out=str(run), space="nb201", metrics=metrics, ids=tuple(ids),
                                  shard_size=shard_size, workers=0).resolved())
    for sid, start in enumerate(range(0, len(ids), shard_size)):
        store.write_shard(sid, pa.concat_tables([
            results_to_table("nb201", a, f"arch{a}", 0, data, metric_results(values(a), status(a) if status else None),
                             "h")
            for a in ids[start:start + shard_size]]))
    return run


# --- Ray scale-out ---
# A tiny scoring run (C=4, N=1 NB201 nets on an 8x8 digits batch of 8, three cheap metrics) and checks that a
# run directory holds every expected (arch, metric, seed) row exactly once.
TINY_METRICS = ("params", "grad_norm", "naswot")


def tiny_score_config(out, **overrides):  # type: ignore[no-untyped-def]
    """A plain ``ScoreConfig`` dict for a fast run into ``out`` (6 archs, 1 per shard, in-process by default)."""
    cfg = {
        "out": str(out), "space": "nb201", "metrics": list(TINY_METRICS), "sample": 6, "seed": 0,
        "data": "digits", "batch_size": 8, "image_size": 8, "space_kwargs": {"C": 4, "N": 1},
        "shard_size": 1, "workers": 0,
    }
    cfg.update(overrides)
    return cfg


def score_rows(out):  # type: ignore[no-untyped-def]
    """``[(arch_index, metric, seed, value, status)]`` of a run directory, sorted (order-free comparison)."""
    from raynas.store import open_store

    t = open_store(out).read(["arch_index", "metric", "seed", "value", "status"])
    return sorted(zip(*(t.column(c).to_pylist() for c in t.column_names)), key=lambda r: (r[0], r[1], r[2]))


def assert_complete(out, ids, metrics=TINY_METRICS, seed=0):  # type: ignore[no-untyped-def]
    """Every ``(id, metric, seed)`` is stored exactly once (no lost and no duplicated rows)."""
    keys = [(a, m, s) for a, m, s, _v, _st in score_rows(out)]
    dup = sorted({k for k in keys if keys.count(k) > 1})
    if dup:
        raise AssertionError(f"duplicated rows: {dup[:5]}")
    want = {(int(i), m, seed) for i in ids for m in metrics}
    if set(keys) != want:
        raise AssertionError(f"missing {sorted(want - set(keys))[:5]}, unexpected {sorted(set(keys) - want)[:5]}")


def session_pids(sid):  # type: ignore[no-untyped-def]
    """Pids whose session is ``sid`` (Linux ``/proc``). A process a test started with ``start_new_session``
    leads its own session, which then holds exactly what it spawned: Ray puts each worker in its own process
    group, so the session (not the group) is how a test finds, e.g., one node's or one driver's processes."""
    import os

    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.getsid(int(entry)) == sid:
                    pids.append(int(entry))
            except (ProcessLookupError, PermissionError):
                continue
    return pids


def kill_session(sid, sig=9):  # type: ignore[no-untyped-def]
    """Send ``sig`` (default SIGKILL) to every process of session ``sid`` (see :func:`session_pids`)."""
    import os

    for pid in session_pids(sid):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def assert_same_rows(got, want):  # type: ignore[no-untyped-def]
    """``score_rows`` lists equal row by row; values bit-identical on CPU-only machines, within 1e-4 relative
    where CUDA exists (rows may then come from GPU and CPU workers, whose kernels round differently)."""
    import math

    import torch

    if not torch.cuda.is_available():
        assert got == want
        return
    assert [r[:3] + r[4:] for r in got] == [r[:3] + r[4:] for r in want]
    for g, w in zip(got, want):
        if g[3] is None or w[3] is None:
            assert g[3] is w[3], (g, w)
        else:
            assert math.isclose(g[3], w[3], rel_tol=1e-4, abs_tol=1e-6), (g, w)


def hang_once_actor_factory(marker):  # type: ignore[no-untyped-def]
    """A ``create_actor`` replacement whose actors hang (sleep an hour, as a deadlocked worker would) on the
    first ``score`` call any of them receives; an ``O_EXCL``-created ``marker`` file picks that one call across
    processes. Every later call scores normally. Exercises the driver's per-shard deadline."""
    import os
    import time

    import ray

    from raynas.parallel.actor import ScoringWorker, create_actor

    class HangOnceWorker(ScoringWorker):
        def score(self, shard):  # type: ignore[no-untyped-def]
            try:
                os.close(os.open(marker, os.O_CREAT | os.O_EXCL))
            except FileExistsError:
                return super().score(shard)
            time.sleep(3600)
            raise RuntimeError("a hung shard should have been killed by its deadline")

    actor_cls = ray.remote(HangOnceWorker)

    def create(cfg, metrics, batch_ref, data_name):  # type: ignore[no-untyped-def]
        return create_actor(cfg, metrics, batch_ref, data_name, actor_cls=actor_cls)

    return create
