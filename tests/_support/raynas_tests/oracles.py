"""A real-training oracle that logs where and when each query ran (for tests of queries as Ray tasks)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from raynas.oracles.training import TrainingOracle


class LoggedTrainingOracle(TrainingOracle):
    """:class:`TrainingOracle` that appends ``{"event": "start"|"end", "arch", "pid", "t", "gpu_ids", "hangs"}``
    lines to ``log_dir/<pid>.jsonl`` around each training (one file per process: no interleaved writes), and
    sleeps ``pause`` seconds after starting; a query of ``fail_archs`` raises.

    Events instead of timing, so a busy machine gives the same outcome:

    * ``hang_marker``: the first query (of any worker) that creates this file (``O_EXCL``) logs its start with
      ``"hangs": true`` and then hangs (sleeps an hour) until the test kills its worker mid-query;
    * ``meet``: after logging its start, a query waits until ``meet`` queries have started in all (at most
      ``meet_timeout`` seconds, then it goes on), so queries that may run at once are seen running at once
      however late the second worker process starts."""

    def __init__(self, log_dir: str, pause: float = 0.0, fail_archs=(),  # type: ignore[no-untyped-def]
                 hang_marker: str | None = None, meet: int = 0, meet_timeout: float = 300.0, **kw):
        super().__init__(**kw)
        self.log_dir, self.pause, self.fail_archs = Path(log_dir), float(pause), {int(a) for a in fail_archs}
        self.hang_marker, self.meet, self.meet_timeout = hang_marker, int(meet), float(meet_timeout)

    def _claims_hang(self) -> bool:
        if self.hang_marker is None:
            return False
        try:
            os.close(os.open(self.hang_marker, os.O_CREAT | os.O_EXCL))
        except FileExistsError:
            return False
        return True

    def _meet(self) -> None:
        deadline = time.monotonic() + self.meet_timeout
        while time.monotonic() < deadline:
            if sum(e["event"] == "start" for e in read_events(self.log_dir)) >= self.meet:
                return
            time.sleep(0.05)

    def _log(self, event: str, arch: int, hangs: bool = False) -> None:
        try:
            import ray

            gpus = [str(g) for g in ray.get_gpu_ids()] if ray.is_initialized() else []
        except Exception:  # noqa: BLE001 - outside a Ray worker
            gpus = []
        line = json.dumps({"event": event, "arch": arch, "pid": os.getpid(), "t": time.time(), "gpu_ids": gpus,
                           "hangs": hangs})
        with open(self.log_dir / f"{os.getpid()}.jsonl", "a") as f:
            f.write(line + "\n")
            f.flush()

    def query(self, arch_index):  # type: ignore[no-untyped-def]
        hangs = self._claims_hang()
        self._log("start", int(arch_index), hangs)
        if hangs:
            time.sleep(3600)
            raise RuntimeError("a hung query should have been killed by the test")
        if self.meet:
            self._meet()
        time.sleep(self.pause)
        if int(arch_index) in self.fail_archs:
            raise RuntimeError(f"bogus training of arch {arch_index}")
        res = super().query(arch_index)
        self._log("end", int(arch_index))
        return res


def read_events(log_dir) -> list[dict]:  # type: ignore[no-untyped-def]
    """Every logged event, by time (complete lines only: a worker may be writing one right now)."""
    out = []
    for p in Path(log_dir).glob("*.jsonl"):
        out += [json.loads(ln) for ln in p.read_text().split("\n")[:-1] if ln.strip()]
    return sorted(out, key=lambda e: e["t"])
