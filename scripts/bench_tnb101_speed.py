"""TransNAS-Bench-101 scoring speed: raynas's fused engine vs NASLib's per-proxy loop (issue #31 item 7).

NAS-Bench-Suite-Zero scored every TransNAS-Bench-101 network by calling NASLib's ``find_measures`` once per proxy
(its ``ZeroCost`` predictor, one measure per call: a copy of the network, a forward and a backward per proxy),
on one batch of 32 images at 256 x 256 (``naslib/runners/zc/zc_config.yaml``: ``batch_size: 32``; jigsaw: 9 tiles
of 64 x 64). This script scores the same proxy set on the same network and batch both ways, interleaved (the
order alternates from one arch to the next), on one thread, and prints the seconds per arch and the ratio.

Proxy set: NASLib's grad_norm, snip, grasp, fisher, jacov, nwot, synflow, plain, l2_norm, zen, and epe_nas where
raynas applies it (jigsaw: a class task; on the other tasks raynas stores epe_nas as not_applicable without
computing anything, while NASLib still computes the input Jacobian before its grouping fails or argmaxes soft
labels: that time is left out of NASLib's loop too, so both sides score the same set). raynas's names:
grad_norm, snip, grasp, fisher, jacob_cov, naswot / naswot_code, synflow, plain, l2_norm, zen, epe_nas. For
nwot, the metric that equals what NAS-Bench-Suite-Zero's nwot computed on NASLib's own network (see
``tests/parity/test_tnb101_parity.py``): ``naswot`` (each nn.ReLU once, shared with the loss pass) on the tasks
without LeakyReLU, ``naswot_code`` (its own passes: every module named after ReLU, LeakyReLU included) on
segmentsemantic / normal / autoencoder, whose decoders have LeakyReLUs that NASLib counts. flops / params (NASLib's
tensorwatch counters) are not timed. NASLib's data loading (its loader decodes Taskonomy images) is not timed
either: both sides get the batch in memory, which favours NASLib.

Usage (NASLib loaded from a checkout outside the repository, as ``make_tnb101_parity_fixture.py`` does):

    python scripts/bench_tnb101_speed.py --naslib /path/to/NASLib [--cases class_scene:micro:64-41414-3_20_133 ...]
        [--batch 32] [--size 256] [--threads 1] [--drop grasp]

Prints a markdown table (seconds per arch, ratio) and the breakdown: NASLib's seconds per proxy, raynas's seconds
per pass of the fused engine (a shared pass lists the metrics it computes).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from raynas.data.batch import Batch  # noqa: E402
from raynas.metrics.engine import compute_metrics  # noqa: E402
from raynas.testing.tnb101_parity import fixture_task  # noqa: E402
from raynas.spaces.tnb101 import JIGSAW_TILES, TASKS, build_network, parse_macro, parse_micro  # noqa: E402

#: NASLib measure -> raynas metric
PROXIES = {"grad_norm": "grad_norm", "snip": "snip", "grasp": "grasp", "fisher": "fisher", "jacov": "jacob_cov",
           "nwot": "naswot_code", "synflow": "synflow", "plain": "plain", "l2_norm": "l2_norm", "zen": "zen",
           "epe_nas": "epe_nas"}
#: tasks whose decoders have LeakyReLUs
LEAKY_TASKS = ("segmentsemantic", "normal", "autoencoder")
#: a micro and a macro network of three tasks (the dense-decoder tasks at batch 32 and 256 x 256 need more memory
#: than a shared 23 GB machine can spare for the double backward of grasp: pass them with --cases on a bigger one)
DEFAULT_CASES = ("class_scene:micro:64-41414-3_20_133", "jigsaw:macro:64-14213-basic",
                 "room_layout:macro:64-2313-basic")


def _fixture_script() -> Any:
    spec = importlib.util.spec_from_file_location("make_tnb101_parity_fixture",
                                                  REPO / "scripts" / "make_tnb101_parity_fixture.py")
    mod = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


def network(task: str, space: str, arch: str) -> nn.Module:
    """The full-width (C = 64) TransNAS-Bench-101 network, initialised as raynas builds it."""
    if space == "micro":
        return build_network((4, 1, 4, 1, 4), parse_micro(arch).ops, task)
    return build_network(parse_macro(arch).modules, None, task)


def task_batch(task: str, b: int, size: int) -> Batch:
    """Noise inputs and task-shaped targets at the benchmark's size (fixture_task's kinds, resized)."""
    g = torch.Generator().manual_seed(0)
    t = fixture_task(task)
    if task == "jigsaw":
        x = torch.randn(b, JIGSAW_TILES, 3, size // 4, size // 4, generator=g)
    else:
        x = torch.randn(b, 3, size, size, generator=g)
    if t.target_kind == "class":
        y = torch.randint(0, int(t.num_classes), (b,), generator=g)  # type: ignore[arg-type]
    elif t.target_kind == "class_probs":
        y = torch.softmax(torch.randn(b, int(t.num_classes), generator=g), dim=1)  # type: ignore[arg-type]
    elif t.target_kind == "pixel_class":
        y = torch.randint(0, int(t.num_classes), (b, size, size), generator=g)  # type: ignore[arg-type]
        t = type(t)(t.name, t.target_kind, (size, size), t.num_classes, t.loss, t.metric, t.higher_is_better)
    else:
        shape = t.target_shape if t.target_kind == "regression" else (3, size, size)
        y = torch.rand(b, *shape, generator=g) * 2 - 1
        t = type(t)(t.name, t.target_kind, tuple(shape), t.num_classes, t.loss, t.metric, t.higher_is_better)
    return Batch.for_task(x, y, t, name=f"bench:{task}")


def naslib_loop(fx: Any, predictive: Any, loss_fn: Any, net: nn.Module, task: str, batch: Batch,
                measures: list[str]) -> tuple[float, dict[str, float]]:
    """NASLib's loop: ``find_measures`` once per measure (seconds in total and per measure; a measure that raises
    is timed up to its exception and marked)."""
    graph = fx.GraphLike(net, task, predictive._naslib_gap)
    n_classes = TASKS[task].num_classes or -1
    per: dict[str, float] = {}
    for m in measures:
        loader = [(batch.inputs, batch.targets)]
        torch.manual_seed(0)
        t0 = time.perf_counter()
        try:
            predictive.find_measures(graph, loader, ("random", 1, n_classes), torch.device("cpu"), loss_fn,
                                     measure_names=[m])
            per[m] = time.perf_counter() - t0
        except Exception:  # noqa: BLE001 - NASLib's fisher raises on jigsaw (see the fixture); timed to the failure
            per[m + " (raised)"] = time.perf_counter() - t0
    return sum(per.values()), per


def fused(net: nn.Module, batch: Batch, metrics: list[str]) -> tuple[float, list[tuple[str, float]], list[Any]]:
    """raynas's fused engine on the metric set: seconds, per-pass seconds (from the progress callback), results."""
    marks: list[tuple[tuple[str, ...], float]] = []
    t0 = time.perf_counter()
    rs = compute_metrics(lambda: net, batch, metrics, seed=0, fused=True,
                         on_metric=lambda names, _d, _n: marks.append((names, time.perf_counter())))
    end = time.perf_counter()
    passes = [("+".join(n), (marks[i + 1][1] if i + 1 < len(marks) else end) - t) for i, (n, t) in enumerate(marks)]
    if marks:
        passes.insert(0, ("(setup: copies, seeds)", marks[0][1] - t0))
    return end - t0, passes, rs


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--naslib", type=Path, required=True, help="checkout of automl/NASLib")
    p.add_argument("--cases", nargs="*", default=list(DEFAULT_CASES), help="task:micro|macro:arch string")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--drop", nargs="*", default=[], help="NASLib proxies to leave out of both sides (e.g. grasp)")
    args = p.parse_args(argv)

    torch.set_num_threads(args.threads)
    fx = _fixture_script()
    predictive, naslib_loss = fx.load_naslib(args.naslib)
    rows = []
    for k, spec in enumerate(args.cases):
        task, space, arch = spec.split(":")
        batch = task_batch(task, args.batch, args.size)
        torch.manual_seed(0)
        net = network(task, space, arch)
        measures = [m for m in PROXIES if (m != "epe_nas" or fixture_task(task).is_class) and m not in args.drop]
        metrics = [PROXIES[m] for m in measures]
        if task not in LEAKY_TASKS and "naswot_code" in metrics:
            metrics[metrics.index("naswot_code")] = "naswot"
        order = ("naslib", "fused") if k % 2 == 0 else ("fused", "naslib")
        out: dict[str, Any] = {}
        for side in order:
            if side == "naslib":
                out["naslib"] = naslib_loop(fx, predictive, naslib_loss(task), net, task, batch, measures)
            else:
                out["fused"] = fused(net, batch, metrics)
            print(f"# {spec} {side}: {out[side][0]:.1f} s", file=sys.stderr, flush=True)
        (tn, per), (tf, passes, rs) = out["naslib"], out["fused"]
        bad = [(r.metric, r.status, r.error) for r in rs if r.status != "ok"]
        rows.append((spec, len(measures), tn, tf, per, passes, bad))
        print(f"# {spec}: NASLib {tn:.1f} s, fused {tf:.1f} s, ratio {tn / tf:.2f}x; NASLib per proxy "
              + ", ".join(f"{m} {s:.1f}" for m, s in per.items()) + "; fused per pass "
              + ", ".join(f"{n} {s:.1f}" for n, s in passes), file=sys.stderr, flush=True)

    print(f"\nbatch {args.batch}, {args.size}x{args.size} (jigsaw: 9 tiles of {args.size // 4}), "
          f"{args.threads} thread(s), torch {torch.__version__}\n")
    print("| task | arch | proxies | NASLib loop (s) | raynas fused (s) | ratio |")
    print("|---|---|---|---|---|---|")
    for spec, n, tn, tf, *_ in rows:
        task, _space, arch = spec.split(":")
        print(f"| {task} | `{arch}` | {n} | {tn:.1f} | {tf:.1f} | {tn / tf:.2f}x |")
    for spec, _n, tn, tf, per, passes, bad in rows:
        print(f"\n{spec}")
        print("  NASLib per proxy: " + ", ".join(f"{m} {s:.1f}" for m, s in per.items()))
        print("  raynas fused per pass: " + ", ".join(f"{n} {s:.1f}" for n, s in passes))
        if bad:
            print(f"  raynas non-ok: {bad}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
