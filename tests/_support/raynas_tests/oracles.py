"""A real-training oracle that logs where and when each query ran (for tests of queries as Ray tasks)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from raynas.oracles.training import TrainingOracle


class LoggedTrainingOracle(TrainingOracle):
    """:class:`TrainingOracle` that appends ``{"event": "start"|"end", "arch", "pid", "t", "gpu_ids"}`` lines to
    ``log_dir/<pid>.jsonl`` around each training (one file per process: no interleaved writes), and sleeps
    ``pause`` seconds after starting so a test can kill the worker mid-query; a query of ``fail_archs`` raises."""

    def __init__(self, log_dir: str, pause: float = 0.0, fail_archs=(), **kw):  # type: ignore[no-untyped-def]
        super().__init__(**kw)
        self.log_dir, self.pause, self.fail_archs = Path(log_dir), float(pause), {int(a) for a in fail_archs}

    def _log(self, event: str, arch: int) -> None:
        try:
            import ray

            gpus = [str(g) for g in ray.get_gpu_ids()] if ray.is_initialized() else []
        except Exception:  # noqa: BLE001 - outside a Ray worker
            gpus = []
        line = json.dumps({"event": event, "arch": arch, "pid": os.getpid(), "t": time.time(), "gpu_ids": gpus})
        with open(self.log_dir / f"{os.getpid()}.jsonl", "a") as f:
            f.write(line + "\n")
            f.flush()

    def query(self, arch_index):  # type: ignore[no-untyped-def]
        self._log("start", int(arch_index))
        time.sleep(self.pause)
        if int(arch_index) in self.fail_archs:
            raise RuntimeError(f"bogus training of arch {arch_index}")
        res = super().query(arch_index)
        self._log("end", int(arch_index))
        return res


def read_events(log_dir) -> list[dict]:  # type: ignore[no-untyped-def]
    """Every logged event, by time."""
    out = []
    for p in Path(log_dir).glob("*.jsonl"):
        out += [json.loads(ln) for ln in p.read_text().splitlines() if ln.strip()]
    return sorted(out, key=lambda e: e["t"])
