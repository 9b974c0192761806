#!/usr/bin/env python
"""Measure the metric costs a space's scoring runs are estimated from, and write them beside the space.

``raynas score`` says what a run will cost before it scores anything (issue 29 item 4), from a table of seconds
per arch per metric that ships with each space (:mod:`raynas.spaces.costs`, ``raynas/spaces/<pkg>/metric_costs.json``).
This script makes those tables: for each (space, task) it runs the real scoring path in this process
(``raynas score --workers 0 --sample 1 --seed 0 --metrics all,diagnostic`` at the space's default network and the
default batch: 64 images of 32 x 32, or the smallest multiple of 32 the task's network takes, 64 for
TransNAS-Bench-101's macro decoders; ``--data digits``, or ``noise`` for a task that is not classification) and
reads the ``seconds`` column of the stored rows (a shared pass's seconds split evenly between its metrics, as the
fused engine stores them; a ``not_applicable`` row costs 0).

What is measured is **CPU seconds of one thread** (``torch.set_num_threads(1)``, BLAS/OpenMP pinned to one thread,
the engine's clock read as ``time.thread_time``): the cost of one default scoring worker (a Ray actor with one
CPU) on an idle core. Thread time does not count the waits a loaded machine adds, so the table does not depend on
what else ran beside the measurement. A worker with more threads is faster by less than its thread count; a GPU is
a different machine altogether (the estimate says where its numbers come from).

Usage (writes ``raynas/spaces/<pkg>/metric_costs.json``, replacing the (space, task) entries it measured)::

    python scripts/measure_metric_costs.py nb101 darts_cifar tnb101_micro:class_scene tnb101_macro
    python scripts/measure_metric_costs.py --dry-run nb201     # print the table, write nothing

A space given without ``:task`` measures each of its tasks. ``--archs N`` averages each metric over N archs (the
first N of ``--sample N --seed 0``): costs vary from arch to arch by up to a few times (3x3 convolutions against
pools, skips and zeros), so a table of one arch is good to that factor, a mean of several to tens of percent.
"""

from __future__ import annotations

import os

# one thread everywhere, before numpy / torch load their thread pools (thread_time counts only this thread)
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import types  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from raynas.cli.main import main as cli_main  # noqa: E402
from raynas.errors import RaynasError  # noqa: E402
from raynas.spaces import create_space  # noqa: E402
from raynas.spaces.costs import COSTS_FILE, EXPONENTS, metric_costs_file  # noqa: E402
from raynas.store import ScoreStore  # noqa: E402

#: defaults of ``raynas score`` the table is measured at
BATCH_SIZE, IMAGE_SIZE = 64, 32


def _thread_clock() -> None:
    """Make the engines read this thread's CPU time where they read the wall clock (their ``seconds`` column)."""
    import raynas.metrics._single as single
    import raynas.metrics.batched.engine as batched
    import raynas.metrics.fused as fused

    clock = types.SimpleNamespace(perf_counter=time.thread_time)
    for mod in (single, batched, fused):
        mod.time = clock  # type: ignore[attr-defined]


def _cases(names: list[str]) -> list[tuple[str, str | None]]:
    """``space`` / ``space:task`` -> (space, task) pairs; a space without tasks of its own gets task None."""
    out: list[tuple[str, str | None]] = []
    for name in names:
        space_name, _, task = name.partition(":")
        space = create_space(space_name)
        tasks = tuple(space.task_names())
        if tasks == ("classification",):
            out.append((space_name, None))
        elif task:
            out.append((space_name, task))
        else:
            out.extend((space_name, t) for t in tasks)
    return out


def image_size_for(space_name: str, task: str | None) -> int:
    """``IMAGE_SIZE``, or the smallest multiple of it the task's network takes (TransNAS-Bench-101's macro
    decoders need a multiple of 64)."""
    space = create_space(space_name)
    size = IMAGE_SIZE
    if task is None:
        return size
    while True:
        try:
            space.task(task, image_size=size)
            return size
        except RaynasError:
            if size >= 1024:
                raise
            size *= 2


def measure(space_name: str, task: str | None, workdir: Path, archs: int = 1) -> dict:
    """Score ``archs`` archs of ``space_name`` (``task``) with every metric; the table entry (JSON-ready), each
    metric's seconds the mean over the archs."""
    out = workdir / f"{space_name}-{task or 'default'}"
    image_size = image_size_for(space_name, task)
    argv = ["score", "--space", space_name, "--metrics", "all,diagnostic", "--sample", str(archs), "--seed", "0",
            "--workers", "0", "--batch-size", str(BATCH_SIZE), "--image-size", str(image_size), "--out", str(out),
            "--no-progress"]
    if task is not None:
        argv += ["--task", task, "--data", "noise"]
    t0 = time.perf_counter()
    rc = cli_main(argv)
    wall = time.perf_counter() - t0
    if rc != 0:
        raise SystemExit(f"{' '.join(argv)} exited {rc}")
    table = ScoreStore(out).read()
    sums: dict[str, float] = {}
    measured = sorted({row["arch"] for row in table.to_pylist()})
    for row in table.to_pylist():
        sec = 0.0 if row["status"] == "not_applicable" else float(row["seconds"] or 0.0)
        sums[row["metric"]] = sums.get(row["metric"], 0.0) + sec
    seconds = {m: round(v / len(measured), 4 if v / len(measured) < 1 else 3) for m, v in sums.items()}
    arch = measured[0] if len(measured) == 1 else f"{len(measured)} archs"
    space = create_space(space_name)
    macro = dict(getattr(space, "macro", {}))
    reference = {"batch_size": BATCH_SIZE, "image_size": image_size,
                 **{k: v for k, v in macro.items() if k in EXPONENTS and isinstance(v, int)}}
    total = sum(seconds.values())
    print(f"{space_name} {task or ''}: arch {arch}, {total:.1f} CPU s (wall {wall:.1f} s, load "
          f"{os.getloadavg()[0]:.1f})", flush=True)
    return {
        "space": space_name, "task": task, "archs": measured, "seconds": dict(sorted(seconds.items())),
        "reference": reference, "exponents": {k: EXPONENTS[k] for k in reference},
        "source": (f"{space_name}{'/' + task if task else ''}: CPU seconds of one thread, "
                   f"{'one arch' if len(measured) == 1 else f'mean of {len(measured)} archs'}, measured "
                   f"{datetime.date.today().isoformat()} on {platform.machine()} ({os.cpu_count()} cores), "
                   "scripts/measure_metric_costs.py"),
    }


def write(entries: list[dict]) -> list[Path]:
    """Merge ``entries`` into each space package's ``metric_costs.json`` (same (space, task) replaced)."""
    by_file: dict[Path, list[dict]] = {}
    for e in entries:
        by_file.setdefault(metric_costs_file(create_space(e["space"])), []).append(e)
    for path, new in by_file.items():
        old = json.loads(path.read_text()) if path.exists() else []
        keys = {(e["space"], e["task"]) for e in new}
        merged = [e for e in old if (e["space"], e["task"]) not in keys] + new
        merged.sort(key=lambda e: (e["space"], e["task"] or ""))
        path.write_text(json.dumps(merged, indent=1) + "\n")
    return sorted(by_file)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("spaces", nargs="+", help="space or space:task (a space alone: each of its tasks)")
    ap.add_argument("--archs", type=int, default=1,
                    help="archs per (space, task), drawn by seed 0; each metric's cost is their mean (default 1)")
    ap.add_argument("--dry-run", action="store_true", help="print the entries, write nothing")
    args = ap.parse_args()
    torch.set_num_threads(1)
    _thread_clock()
    entries = []
    with tempfile.TemporaryDirectory() as tmp:
        for space_name, task in _cases(args.spaces):
            entry = measure(space_name, task, Path(tmp), args.archs)
            entries.append(entry)
            if not args.dry_run:  # each one written as it comes: a long measurement keeps what it has
                write([entry])
    if args.dry_run:
        print(json.dumps(entries, indent=1))
    else:
        print("wrote", ", ".join(str(p.relative_to(REPO)) for p in sorted({metric_costs_file(create_space(e["space"]))
                                                                          for e in entries})))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
