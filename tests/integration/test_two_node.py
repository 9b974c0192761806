"""A two-node Ray cluster on loopback (two `ray start` processes): one node is lost mid-run, the run still
ends with every (arch, metric, seed) row exactly once.

Each node runs `ray start --block` in its own session and temp dir, so the test can kill exactly one node
(SIGKILL to every process of its session: raylet, workers, agents, as in a machine failure) and, in teardown,
exactly the processes it started. (`ray stop --force` would kill every Ray process on the machine, including clusters of
other users or of concurrent test runs, so teardown kills by session id and temp dir instead.)
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

ray = pytest.importorskip("ray")

from raynas.parallel import ScoreConfig, run_scoring_from_dict  # noqa: E402
from raynas.parallel import driver as driver_mod  # noqa: E402
from raynas.parallel.shards import select_ids  # noqa: E402
from raynas.spaces import create_space  # noqa: E402
from raynas.testing import assert_complete, kill_session, tiny_score_config  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

RAY_BIN = str(Path(sys.executable).with_name("ray"))
# Token auth would need the token shared with the driver; a loopback test cluster does without. Fast health
# checks make the head notice the lost node within ~2 s instead of ~30 s.
CLUSTER_ENV = {
    "RAY_AUTH_MODE": "disabled",
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_health_check_period_ms": "500",
    "RAY_health_check_timeout_ms": "1000",
    "RAY_health_check_failure_threshold": "3",
    "RAY_health_check_initial_delay_ms": "0",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_node(args: list[str], temp_dir: str, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [RAY_BIN, "start", "--block", "--node-ip-address=127.0.0.1", "--disable-usage-stats",
         f"--temp-dir={temp_dir}", *args],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )


def _kill_node(proc: subprocess.Popen, sig: int) -> None:
    """Signal every process of one node: its `ray start` leads a session holding all it spawned."""
    kill_session(proc.pid, sig)


def _kill_leftovers(marker: str) -> None:
    """SIGKILL any process still running from this cluster's temp dir (by pid, matched on its own dir)."""
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmd:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.fixture()
def two_nodes(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    if ray.is_initialized():
        ray.shutdown()
    for k, v in CLUSTER_ENV.items():
        monkeypatch.setenv(k, v)
    base = tempfile.mkdtemp(prefix="rn2n", dir="/tmp")  # short: Ray's unix socket paths are length-limited
    env = {**os.environ, **CLUSTER_ENV}
    port = _free_port()
    address = f"127.0.0.1:{port}"
    head = _start_node(["--head", f"--port={port}", "--num-cpus=1", "--num-gpus=0", "--include-dashboard=false"],
                       f"{base}/head", env)
    worker = None
    try:
        deadline = time.monotonic() + 60
        while subprocess.run([RAY_BIN, "status", f"--address={address}"], env=env,
                             capture_output=True).returncode != 0:
            if time.monotonic() > deadline or head.poll() is not None:
                raise RuntimeError("the head node did not come up")
            time.sleep(0.5)
        worker = _start_node([f"--address={address}", "--num-cpus=1", "--num-gpus=0"], f"{base}/worker", env)
        ray.init(address=address, log_to_driver=False)
        while len([n for n in ray.nodes() if n["Alive"]]) < 2:
            if time.monotonic() > deadline or worker.poll() is not None:
                raise RuntimeError("the second node did not join")
            time.sleep(0.5)
        yield {"address": address, "worker": worker, "head": head}
    finally:
        if ray.is_initialized():
            ray.shutdown()
        for proc in (worker, head):
            if proc is not None:
                proc.send_signal(signal.SIGTERM)  # `ray start --block` stops its node's processes
        for proc in (worker, head):
            if proc is not None:
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
                _kill_node(proc, signal.SIGKILL)
        _kill_leftovers(base)
        shutil.rmtree(base, ignore_errors=True)


def _start_together(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hold the first assignment until both actors are up, so both nodes really hold work when one dies
    (otherwise the actor that starts first may score everything before the other has imported torch)."""
    real = driver_mod._Pool._assign

    def assign(self: Any) -> None:
        if not getattr(self, "_both_up", False):
            if not all(s.state == "idle" for s in self.slots):
                return
            self._both_up = True
        real(self)

    monkeypatch.setattr(driver_mod._Pool, "_assign", assign)


def test_node_lost_mid_run_leaves_complete_duplicate_free_table(
    two_nodes: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _start_together(monkeypatch)
    killed: list[int] = []
    worker = two_nodes["worker"]

    def progress(done: int, total: int, rate: Any, eta: Any) -> None:
        if done >= 1 and not killed:
            _kill_node(worker, signal.SIGKILL)  # the machine "fails": raylet and its actor die at once
            killed.append(done)

    # one CPU per node and per actor: the two actors necessarily sit on different nodes
    cfg = tiny_score_config(tmp_path, sample=8, workers=2, cpus_per_worker=1.0, address=two_nodes["address"])
    # the driver attaches to the running cluster (already initialised here, as `ray submit` scripts do)
    summary = run_scoring_from_dict(cfg, progress_callback=progress)
    assert killed, "the worker node was never removed"
    assert len({a["node_id"] for a in summary["actors"]}) == 2  # work really was spread over both nodes
    assert summary["failed_shards"] == [] and summary["error_rows"] == 0
    assert summary["retries"] >= 1  # the lost node's shard was scored again on the survivor
    assert_complete(tmp_path, select_ids(create_space("nb201"), ScoreConfig.from_dict(cfg)))
    alive = [n for n in ray.nodes() if n["Alive"]]
    assert len(alive) == 1
