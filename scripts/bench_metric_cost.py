#!/usr/bin/env python
"""Per-metric cost: raynas against its authors' code, on the same network, weights and batch, one thread.

For every metric that has a reference implementation, the authors' function (loaded from a local checkout of
their repository exactly as the parity scripts load it: ``make_parity_fixture.py``, ``make_parity_proxies_a.py``,
``make_parity_proxies_b.py``, whose loaders and shims this script imports) and raynas's engine
(:func:`raynas.metrics.engine.compute_metrics`, fused, as ``raynas score`` runs it) are timed on the same
NAS-Bench-201 network (one arch, default 13291 at C=16, N=5: the scoring loop's size), the same weights (one
network built once; each call gets a fresh deep copy made before its clock starts, as a run hands the engine the
network it built once per arch; copies either side's own code makes are timed: raynas's engine copies the network
for every metric that does not share a pass) and the same batch (digits, 64 images at 32x32, seed 0). The two
sides run interleaved (authors, raynas, authors, raynas, ...) so machine load hits both alike, on one thread
(``torch.set_num_threads(1)``). Where the authors compute several metrics in one call (AZ-NAS's three feature
terms, Revisit's angle and loss), the unit is that call on both sides. Then the fused engine scores the whole
reference set, the part of it in ``--metrics all`` (each reference definition once: the diagnostic twins such as
``vkdnw_f32`` left out), and ``--metrics all`` itself, in one call each, against the sum of the authors' calls
for the same metrics (``all``'s metrics without a reference are named, not timed against anything).

Each side runs the metric the way it is run for real: raynas at its registered dtype (vkdnw and zico in float64,
lwt in float32), the authors' code as they run it (float32; VKDNW's float64 twin through the parity shim, since
raynas's ``vkdnw`` is float64 by definition and ``vkdnw_f32`` is the float32 one); both sides re-initialise where
their code does (Zen-NAS, VKDNW, AZ-NAS: Kaiming re-initialisations drawn under the same seed).
Times are the process's CPU seconds (``time.process_time``, one thread): on a shared machine the wall clock of
one call moves with the other jobs' load by x2-5 between calls minutes apart (the fused whole-set runs cannot be
interleaved with the units), CPU time much less (still up to ~20 %: caches and memory bandwidth are shared); the
wall seconds are printed beside each unit. ``ratio`` is authors' seconds / raynas's seconds (above 1: raynas is
faster). A missing checkout is reported and
its metrics are skipped.

Usage (checkouts are plain clones of the public repositories, e.g. under /tmp/refs):

    python scripts/bench_metric_cost.py --refs /tmp/refs [--arch 13291 --C 16 --N 5 --batch 64 --repeats 1]

``--refs DIR`` looks for each checkout as ``DIR/<repository name>`` (zero-cost-nas, HNAS, Revisit_TrainingFree_NAS,
nas-without-training, TENAS, AZ-NAS, ZiCo, MeCo, NASLib, ZenNAS, VKDNW, SWAP).
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import time
import types
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

import make_parity_fixture as mpf  # noqa: E402
import make_parity_proxies_a as mpa  # noqa: E402
import make_parity_proxies_b as mpb  # noqa: E402

from raynas.data import create_batch  # noqa: E402
from raynas.metrics import get_metric, resolve_metric_names  # noqa: E402
from raynas.metrics.engine import compute_metrics  # noqa: E402
from raynas.spaces import create_space  # noqa: E402

SEED = 0
#: repository name of each checkout under ``--refs``
CHECKOUTS = {
    "zero-cost-nas": "SamsungLabs/zero-cost-nas", "HNAS": "shuyao95/HNAS",
    "Revisit_TrainingFree_NAS": "taoyang1122/Revisit_TrainingFree_NAS",
    "nas-without-training": "BayesWatch/nas-without-training", "TENAS": "VITA-Group/TENAS",
    "AZ-NAS": "cvlab-yonsei/AZ-NAS", "ZiCo": "SLDGroup/ZiCo", "MeCo": "HamsterMimi/MeCo", "NASLib": "automl/NASLib",
    "ZenNAS": "idstcv/ZenNAS", "VKDNW": "ondratybl/VKDNW", "SWAP": "pym1024/SWAP",
}

#: one unit of work: the raynas metric names it scores, and ``call(net, thin, inputs, labels) -> {name: value}``
Unit = tuple[tuple[str, ...], Callable[[nn.Module, nn.Module, torch.Tensor, torch.Tensor], dict[str, float | None]]]


def _f(v: Any) -> float | None:
    v = float(v)
    return v if np.isfinite(v) else None


def zero_cost_nas_units(path: Path) -> list[Unit]:
    mpf._purge("foresight")
    sys.path.insert(0, str(path))
    from foresight.pruners import measures  # type: ignore[import-not-found]
    from foresight.pruners.predictive import copynet  # type: ignore[import-not-found]

    sys.path.remove(str(path))

    def unit(name: str) -> Unit:
        def call(net: nn.Module, thin: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, float | None]:
            model = net
            model.get_prunable_copy = types.MethodType(copynet, model)
            arr = measures.calc_measure(name, model, torch.device("cpu"), x, y, loss_fn=F.cross_entropy,
                                        split_data=1)
            return {name: _f(arr) if name == "jacob_cov" else _f(sum(float(torch.sum(a)) for a in arr))}
        return (name,), call

    return [unit(n) for n in ("grad_norm", "snip", "grasp", "fisher", "jacob_cov", "synflow")]


def hnas_units(path: Path) -> list[Unit]:
    trace_fn, cond_fn = mpf._hnas_measures(path)

    def unit(name: str, fn: Any) -> Unit:
        def call(net: nn.Module, thin: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, float | None]:
            return {name: _f(fn(net.train(), x, y, mode="param", loss_fn=F.cross_entropy))}
        return (name,), call

    return [unit("ntk_trace", trace_fn), unit("ntk_cond", cond_fn)]


def revisit_units(path: Path) -> list[Unit]:
    fns = mpf._revisit_functions(path)

    def call(net: nn.Module, thin: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, float | None]:
        # float32, as raynas registers lwt and as the authors run it (the parity fixture compares in float64)
        model = mpf._TupleNet(net.train())
        before, _ = fns["get_weights_by_layer"](model)
        loader = mpf._OnceLoader(x, y)
        loss = fns["short_train"](loader, iter(loader), model, torch.nn.CrossEntropyLoss(), lr=0.2, num_iter=50)
        after, _ = fns["get_weights_by_layer"](model)
        return {"lwt_angle": _f(F.cosine_similarity(before[-1], after[-1], dim=-1)), "lwt_loss": _f(loss)}

    return [(("lwt_angle", "lwt_loss"), call)]


def naswot_units(path: Path) -> list[Unit]:
    return [(("naswot_code",), lambda net, thin, x, y: mpf.naswot_values(path, net, x, y))]


def tenas_units(path: Path) -> list[Unit]:
    from raynas.metrics._regions import input_channels, region_inputs
    from raynas.metrics.linear_regions import CHUNK, CHUNKS

    procs = mpf._tenas_procedures(path)

    def ntk(net: nn.Module, thin: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, float | None]:
        loader = mpf._OnceLoader(x, torch.zeros(x.shape[0], dtype=torch.long))
        (cond,) = procs.get_ntk_n(loader, [net], recalbn=0, train_mode=True, num_batch=1)
        return {"tenas_ntk_cond": _f(cond)}

    def regions(net: nn.Module, thin: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, float | None]:
        channels = input_channels(thin, 1)
        crops = region_inputs("crops", CHUNK * CHUNKS, channels, SEED, x)
        lrc = procs.Linear_Region_Collector(input_size=(CHUNK, channels, 3, 3), sample_batch=CHUNKS,
                                            dataset="cifar10", data_path=None, seed=SEED)
        lrc.reinit(models=[thin.train()], seed=SEED)
        chunks = iter([(c, None) for c in crops.split(CHUNK)])
        lrc.loader = types.SimpleNamespace(next=lambda: next(chunks))
        (count,) = lrc.forward_batch_sample()
        return {"linear_regions": _f(count)}

    return [(("tenas_ntk_cond",), ntk), (("linear_regions",), regions)]


def az_units(path: Path) -> list[Unit]:
    terms = tuple(f"az_nas_{t}" for t in mpa.AZ_TERMS)
    return [
        (terms, lambda net, thin, x, y: mpa.az_values(path, net, x)),
        (("az_nas_complexity",), lambda net, thin, x, y: {"az_nas_complexity": mpa.complexity_value(path, net)}),
    ]


def zico_units(path: Path) -> list[Unit]:
    ns: dict[str, Any] = {"torch": torch, "nn": nn, "np": np}
    fns = mpa._functions(path / "ZeroShotProxy" / "compute_zico.py", {"getgrad", "caculate_zico", "getzico"}, ns)

    def call(net: nn.Module, thin: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, float | None]:
        half = x.shape[0] // 2  # the batch's two halves as its loader's two batches, float32 as the authors run it
        loader = [(x[:half], y[:half]), (x[half:], y[half:])]
        return {"zico": _f(fns["getzico"](net, loader, nn.CrossEntropyLoss()))}

    return [(("zico",), call)]


def meco_units(path: Path) -> list[Unit]:
    return [(("meco",), lambda net, thin, x, y: {"meco": mpa.meco_value(path, net, x, y)})]


def naslib_units(path: Path) -> list[Unit]:
    fns = mpb.naslib_measures(path)

    def epe(net: nn.Module, thin: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, float | None]:
        return {"epe_nas": _f(fns["epe_nas"](net.train(), x, y, loss_fn=F.cross_entropy))}

    def l2(net: nn.Module, thin: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, float | None]:
        arr = fns["l2_norm"](net.train(), x, y, mode="param")
        return {"l2_norm": _f(sum(float(torch.sum(a.detach())) for a in arr))}

    def plain(net: nn.Module, thin: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, float | None]:
        arr = fns["plain"](net.train(), x, y, mode="param", loss_fn=F.cross_entropy)
        return {"plain": _f(sum(float(torch.sum(a)) for a in arr))}

    return [(("epe_nas",), epe), (("l2_norm",), l2), (("plain",), plain)]


def zen_units(path: Path) -> list[Unit]:
    return [(("zen",), lambda net, thin, x, y: mpb.zen_value(path, net, x))]


def vkdnw_units(path: Path) -> list[Unit]:
    def unit(name: str, float64: bool) -> Unit:
        ns = mpb._vkdnw_functions(path, float64)

        def call(net: nn.Module, thin: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, float | None]:
            model = mpb._TupleNet(net.double() if float64 else net)
            model.cuda = lambda *a, _m=model, **k: _m
            model.no_reslink = False
            xx = x.double() if float64 else x
            info = ns["compute_nas_score"](model, gpu=None, trainloader=[(xx, y)], resolution=x.shape[-1],
                                           batch_size=x.shape[0], params_grad_len=128, p=1)
            return {name: _f(info["vkdnw_entropy"])}
        return (name,), call

    return [unit("vkdnw", True), unit("vkdnw_f32", False)]


def swap_units(path: Path) -> list[Unit]:
    sys.path.insert(0, str(path))
    try:
        import src.metrics.swap as swap_module  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(path))
    swap_module.count_parameters = mpb._functions(path / "src" / "utils" / "utilities.py", {"count_parameters"},
                                                  {"np": np}, replace=(("np.sum(np.prod", "sum(np.prod"),)
                                                  )["count_parameters"]

    def call(net: nn.Module, thin: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, float | None]:
        v = swap_module.SWAP(model=net.train(), inputs=x, device=torch.device("cpu"),
                             seed=SEED).forward()
        return {"swap": None if v is None else _f(v)}

    return [(("swap",), call)]


#: checkout name -> the loader of its units (HNAS before zero-cost-nas: both ship a ``foresight`` package, and
#: each loader purges the other's; the loaded functions keep their own module globals)
LOADERS: dict[str, Callable[[Path], list[Unit]]] = {
    "HNAS": hnas_units, "zero-cost-nas": zero_cost_nas_units, "Revisit_TrainingFree_NAS": revisit_units,
    "nas-without-training": naswot_units, "TENAS": tenas_units, "AZ-NAS": az_units, "ZiCo": zico_units,
    "MeCo": meco_units, "NASLib": naslib_units, "ZenNAS": zen_units, "VKDNW": vkdnw_units, "SWAP": swap_units,
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--refs", type=Path, default=Path("/tmp/refs"), help="folder holding the checkouts")
    ap.add_argument("--arch", type=int, default=13291, help="NB201 arch index")
    ap.add_argument("--C", type=int, default=16)
    ap.add_argument("--N", type=int, default=5)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--data", default="digits")
    ap.add_argument("--repeats", type=int, default=1, help="interleaved authors/raynas pairs per unit (medians)")
    ap.add_argument("--only", default="", help="comma-separated metric names: only the units scoring them")
    ap.add_argument("--no-all", action="store_true", help="skip the fused whole-set runs")
    args = ap.parse_args()
    torch.set_num_threads(1)
    # CPU shims the references need (as the parity scripts set them): .cuda() is the identity
    nn.Module.cuda = lambda self, *a, **k: self  # type: ignore[method-assign]
    torch.Tensor.cuda = lambda self, *a, **k: self  # type: ignore[method-assign]
    torch.cuda.current_device = lambda: 0  # type: ignore[assignment]

    space = create_space("nb201")
    arch = space.index_to_arch(args.arch)
    torch.manual_seed(SEED)
    net = space.to_module(arch, 10, C=args.C, N=args.N)
    torch.manual_seed(SEED)
    thin = space.to_module(arch, 10, **space.thin_kwargs())
    batch = create_batch(args.data, args.batch, seed=SEED)
    x, y = batch.inputs, batch.labels

    units: list[Unit] = []
    for repo, loader in LOADERS.items():
        path = args.refs / repo
        if not path.is_dir():
            print(f"SKIP {CHECKOUTS[repo]}: no checkout at {path}", flush=True)
            continue
        units.extend(loader(path))
    if args.only:
        wanted = set(args.only.split(","))
        units = [u for u in units if wanted & set(u[0])]

    wall = [0.0]  # the last call's wall-clock seconds (the tables give CPU seconds: see the module docstring)

    def raynas(names: tuple[str, ...] | list[str]) -> tuple[float, dict[str, float | None]]:
        # the network as the space's build hands it over (a fresh copy, made before the clock starts: a run builds
        # it once per arch); the engine's own private copies are timed
        mine, mine_thin = copy.deepcopy(net), copy.deepcopy(thin)
        t0, w0 = time.process_time(), time.perf_counter()
        rows = compute_metrics(lambda: mine, batch, list(names), seed=SEED, thin_factory=lambda: mine_thin,
                               fused=True)
        dt, wall[0] = time.process_time() - t0, time.perf_counter() - w0
        bad = [f"{r.metric}: {r.status} {r.error}" for r in rows if r.status != "ok"]
        if bad:
            print(f"  raynas non-ok rows: {bad}", flush=True)
        return dt, {r.metric: r.value for r in rows}

    def authors(call: Callable[..., dict[str, float | None]]) -> tuple[float, dict[str, float | None]]:
        # a fresh copy of the network for the call, made before the clock starts (the authors' functions score, and
        # often modify, the model they are given; where their pipeline copies it, that copy is timed)
        mine, mine_thin, xx, yy = copy.deepcopy(net), copy.deepcopy(thin), x.clone(), y.clone()
        torch.manual_seed(SEED)  # the engine's seed: both sides draw their probes/re-initialisations alike
        t0, w0 = time.process_time(), time.perf_counter()
        values = call(mine, mine_thin, xx, yy)
        wall[0] = time.perf_counter() - w0
        return time.process_time() - t0, values

    load = os.getloadavg()
    print(f"NB201 arch {args.arch} ({arch}), C={args.C} N={args.N}, {batch.name}, 1 thread, torch "
          f"{torch.__version__}, {args.repeats} interleaved repeat(s); load average at start "
          f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}", flush=True)
    raynas(("grad_norm",))  # warm-up: allocator, kernel selection
    authors(units[0][1])
    rows: list[tuple[str, float, float, float | None, float | None]] = []
    for names, call in units:
        ta, tr = [], []
        walls = []
        for _ in range(args.repeats):
            t, va = authors(call)
            ta.append(t)
            walls.append(wall[0])
            t, vr = raynas(names)
            tr.append(t)
            walls.append(wall[0])
        a, r = statistics.median(ta), statistics.median(tr)
        label = "+".join(names) if len(names) < 3 else f"{names[0].rsplit('_', 1)[0]}_{{" + ",".join(
            n.rsplit("_", 1)[1] for n in names) + "}"
        diffs = [abs(vr[n] - va[n]) / max(abs(va[n]), 1e-300) for n in names
                 if va.get(n) is not None and vr.get(n) is not None]
        rows.append((label, a, r, max(diffs) if diffs else None, vr.get(names[0])))
        print(f"  {label:34s} authors {a:8.3f} s  raynas {r:8.3f} s CPU  x{a / r:5.2f}  (wall "
              f"{' / '.join(f'{w:.2f}' for w in walls)} s)  values {va} / {vr}", flush=True)

    print("\n| metric (unit) | authors CPU s | raynas CPU s | ratio | max rel. value diff |")
    print("|---|---:|---:|---:|---:|")
    for label, a, r, d, _ in rows:
        print(f"| {label} | {a:.3f} | {r:.3f} | x{a / r:.2f} | {'-' if d is None else f'{d:.1e}'} |")
    total_a = sum(a for _, a, _, _, _ in rows)
    total_r = sum(r for _, _, r, _, _ in rows)
    print(f"| **sum of the units** | {total_a:.2f} | {total_r:.2f} | x{total_a / total_r:.2f} | |")
    if not args.no_all:
        # the fused engine on whole sets, each against the authors' calls for the same metrics
        every = resolve_metric_names("all")
        ref_set = [n for names, _ in units for n in names]
        in_all = [(names, a) for (names, _), (_, a, _, _, _) in zip(units, rows) if set(names) <= set(every)]
        ref_in_all = [n for names, _ in in_all for n in names]
        sum_in_all = sum(a for _, a in in_all)
        t_ref, _ = raynas(ref_set)
        w_ref = wall[0]
        t_ref_all, _ = raynas(ref_in_all)
        w_ref_all = wall[0]
        t_all, _ = raynas(every)
        w_all = wall[0]
        print(f"(fused wall seconds: {w_ref:.1f}, {w_ref_all:.1f}, {w_all:.1f})")
        extra = [n for n in every if n not in ref_set]
        left = [n for n in ref_set if n not in every]
        print(f"| fused, the {len(ref_set)} metrics above in one call | {total_a:.2f} | {t_ref:.2f} | "
              f"x{total_a / t_ref:.2f} | |")
        print(f"| fused, the {len(ref_in_all)} of them in `all` (not {', '.join(left) or '-'}) | {sum_in_all:.2f} | "
              f"{t_ref_all:.2f} | x{sum_in_all / t_ref_all:.2f} | |")
        print(f"| fused `--metrics all` ({len(every)} metrics: those {len(ref_in_all)} + {', '.join(extra) or '-'}, "
              f"which have no reference) | {sum_in_all:.2f} | {t_all:.2f} | x{sum_in_all / t_all:.2f} | |")
    load = os.getloadavg()
    print(f"load average at end {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; "
          f"dtypes: {', '.join(f'{n}={str(get_metric(n).dtype)[6:]}' for n in ('vkdnw', 'zico', 'lwt_loss'))}",
          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
