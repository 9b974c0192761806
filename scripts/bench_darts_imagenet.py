#!/usr/bin/env python
"""Cost of every metric on ImageNet-size DARTS networks (C=48, 14 cells, 224 px, 1000 classes).

Scores a seeded uniform sample of ``darts_imagenet`` genotypes through :func:`raynas.metrics.engine.compute_metrics`
(one call per metric, so each metric's time and memory are measured alone) and prints, per metric: archs scored,
mean and max seconds per arch (the engine's timing: model copy + metric), peak memory and status counts.

Peak memory: on CUDA, ``torch.cuda.max_memory_allocated`` above the allocation before the metric (stats reset
before each metric). On CPU, the process's peak RSS above its RSS before the metric: the kernel's high-water mark
(``VmHWM``, reset per metric through ``/proc/self/clear_refs``), or where that is unavailable a 5 ms RSS sampler
thread. Freed heap goes back to the OS (glibc ``malloc_trim``) before each metric, so memory an earlier metric
left in the allocator cannot hide the next one's growth.

    OMP_NUM_THREADS=1 python scripts/bench_darts_imagenet.py --sample 2 --batch-size 8
    python scripts/bench_darts_imagenet.py --metrics ntk_trace,ntk_cond --device cuda --json out.json

Inputs are standard-normal images with uniform labels (seeded); ``--data SPEC`` uses ``raynas.data.create_batch``
instead (the network then has the dataset's class count).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import logging
import os
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from raynas.cli.argtypes import positive_int as _positive  # noqa: E402

from raynas.data.batch import Batch  # noqa: E402
from raynas.metrics import get_metric, resolve_metric_names  # noqa: E402
from raynas.metrics.engine import STATUSES, MetricResult, compute_metrics  # noqa: E402
from raynas.spaces import create_space  # noqa: E402

log = logging.getLogger("bench_darts_imagenet")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sample", type=_positive, default=2, help="number of genotypes (seeded uniform draw)")
    ap.add_argument("--batch-size", type=_positive, default=8, help="B of the scoring batch")
    ap.add_argument("--metrics", default="all", help="'all' or comma-separated metric names")
    ap.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    ap.add_argument("--seed", type=int, default=0, help="seeds the genotype draw, the batch, init and metrics")
    ap.add_argument("--data", default=None, help="dataset spec for raynas.data.create_batch (default: randn)")
    ap.add_argument("--size", type=_positive, default=224, help="input side length")
    ap.add_argument("--C", type=_positive, default=48, help="initial channels of the macro network")
    ap.add_argument("--layers", type=_positive, default=14, help="number of cells")
    ap.add_argument("--num-classes", type=_positive, default=1000, help="classes of the randn batch / classifier")
    ap.add_argument("--threads", type=_positive, default=None, help="torch.set_num_threads (default: torch's)")
    ap.add_argument("--json", type=Path, default=None, help="also write every (arch, metric) row here")
    return ap


class PeakMemory:
    """Context manager measuring the peak memory above the level at entry, in bytes (``.peak``).

    CPU: Linux resets the process's RSS high-water mark (``VmHWM``) to the current RSS on ``5 > clear_refs``,
    so the kernel tracks the exact peak with no sampling; elsewhere a thread samples the RSS every 5 ms
    (psutil if installed, else ``/proc/self/statm``).
    """

    def __init__(self, device: torch.device, interval: float = 0.005):
        self.device, self.interval, self.peak = device, interval, 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "PeakMemory":
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(self.device)
            self._base = torch.cuda.memory_allocated(self.device)
            return self
        _malloc_trim()
        if _reset_hwm():
            self._base = _status_kib("VmRSS") * 1024
            return self
        self._rss = _rss_sampler()
        self._base = self._max = self._rss()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def _poll(self) -> None:
        while not self._stop.wait(self.interval):
            self._max = max(self._max, self._rss())

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak = torch.cuda.max_memory_allocated(self.device) - self._base
        elif self._thread is None:
            self.peak = _status_kib("VmHWM") * 1024 - self._base
        else:
            self._stop.set()
            self._thread.join()
            self.peak = max(self._max, self._rss()) - self._base


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise OSError(f"/proc/self/status has no {field}")


def _reset_hwm() -> bool:
    """Reset the kernel's peak-RSS counter to the current RSS (Linux >= 4.0); False where not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        _status_kib("VmHWM")
        return True
    except OSError:
        return False


def _rss_sampler() -> Callable[[], int]:
    """Current resident set size in bytes: psutil if installed, else /proc/self/statm."""
    try:
        import psutil

        proc = psutil.Process()
        return lambda: int(proc.memory_info().rss)
    except ImportError:
        page = os.sysconf("SC_PAGE_SIZE")

        def statm() -> int:
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * page

        return statm


def _malloc_trim() -> None:
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: RSS deltas may then under-report
        pass


def make_batch(args: argparse.Namespace) -> Batch:
    if args.data is None:
        gen = torch.Generator().manual_seed(args.seed)
        x = torch.randn(args.batch_size, 3, args.size, args.size, generator=gen)
        y = torch.randint(0, args.num_classes, (args.batch_size,), generator=gen)
        return Batch(x, y, args.num_classes, f"randn:seed={args.seed}:n={args.batch_size}:size={args.size}")
    try:
        from raynas.data import create_batch
    except ImportError:
        raise SystemExit("--data needs raynas.data.create_batch, which this checkout does not have") from None
    return create_batch(args.data, batch_size=args.batch_size, seed=args.seed, size=args.size)


def bench_arch(space: Any, index: int, batch: Batch, names: Sequence[str], args: argparse.Namespace,
               device: torch.device) -> list[dict[str, Any]]:
    """One row per metric for arch ``index``: status, value, seconds, peak memory (MiB)."""
    arch = space.index_to_arch(index)
    kw = dict(C=args.C, layers=args.layers)

    def build(extra: dict[str, Any]) -> torch.nn.Module:
        torch.manual_seed(args.seed)  # as compute_metrics does before its factory call
        return space.to_module(arch, batch.num_classes, **{**kw, **extra})

    base = build({})
    thin, thin_error = None, ""
    if any(get_metric(n).thin_model for n in names) and space.thin_kwargs():
        try:
            thin = build(space.thin_kwargs())
        except Exception as exc:  # noqa: BLE001 - recorded on the thin-model metrics' rows
            thin_error = f"thin network {space.thin_kwargs()} cannot be built: {type(exc).__name__}: {exc}"
            log.warning("arch %d: %s", index, thin_error)
    rows = []
    for name in names:
        if get_metric(name).thin_model and thin_error:
            r = MetricResult(name, None, "error", thin_error, 0.0, str(device))
            peak = 0
        else:
            with PeakMemory(device) as mem:
                (r,) = compute_metrics(lambda: base, batch, [name], device=device, seed=args.seed,
                                       thin_factory=(lambda: thin) if thin is not None else None)
            peak = mem.peak
        log.info("arch %d %-16s %-5s %8.2fs %8.1f MiB %s", index, name, r.status, r.seconds, peak / 2**20, r.error)
        rows.append(dict(arch_index=index, arch=space.format(arch), metric=name, status=r.status, value=r.value,
                         error=r.error, seconds=r.seconds, peak_mib=peak / 2**20, device=r.device))
    return rows


def summarise(rows: list[dict[str, Any]], names: Sequence[str]) -> str:
    head = f"{'metric':<16} {'archs':>5} {'mean s/arch':>11} {'max s':>8} {'peak MiB':>9}  " + " ".join(
        f"{s:>5}" for s in STATUSES) + "  first error"
    lines = [head, "-" * len(head)]
    for name in names:
        mine = [r for r in rows if r["metric"] == name]
        secs = [r["seconds"] for r in mine]
        counts = Counter(r["status"] for r in mine)
        err = next((r["error"] for r in mine if r["error"]), "")
        lines.append(f"{name:<16} {len(mine):>5} {sum(secs) / len(secs):>11.2f} {max(secs):>8.2f} "
                     f"{max(r['peak_mib'] for r in mine):>9.1f}  " + " ".join(f"{counts[s]:>5}" for s in STATUSES)
                     + f"  {err[:90]}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    names = resolve_metric_names(args.metrics)
    space = create_space("darts_imagenet", C=args.C, layers=args.layers)
    batch = make_batch(args)
    ids = space.sample_indices(args.sample, args.seed)
    log.info("darts_imagenet C=%d layers=%d, batch %s, %d archs, %d metrics on %s (%d threads)", args.C,
             args.layers, batch.name, len(ids), len(names), device, torch.get_num_threads())
    start = time.perf_counter()
    rows = [row for idx in ids for row in bench_arch(space, idx, batch, names, args, device)]
    print(f"darts_imagenet C={args.C} layers={args.layers} {args.size}px classes={batch.num_classes} "
          f"batch={batch.size} archs={len(ids)} device={device} threads={torch.get_num_threads()} "
          f"total={time.perf_counter() - start:.0f}s")
    print(summarise(rows, names))
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
