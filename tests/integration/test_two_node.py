"""A two-node Ray cluster on loopback (two `ray start` processes): one node is lost mid-run, the run still
ends with every (arch, metric, seed) row exactly once.

Each node runs `ray start --block` in its own session and temp dir, so the test can kill exactly one node
(SIGKILL to every process of its session: raylet, workers, agents, as in a machine failure) and, in teardown,
exactly the processes it started (`ray stop --force` would kill every Ray process on the machine, including
clusters of other users or of concurrent test runs). The driver runs in its own process too, as under
`ray submit`; a fresh process also keeps this cluster's auth setting apart from any Ray session the test
process had before (Ray caches its auth mode per process: switching it fails every actor creation).

No step is bounded by how long it takes on an idle machine (a busy one starts a Ray node or actor in tens of
seconds): the tests wait for the event they need (a node up or gone, a job held at its second search step) with a
deadline only a broken run reaches.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterator

import pytest

pytest.importorskip("ray")

from raynas.parallel import ScoreConfig  # noqa: E402
from raynas.parallel.shards import select_ids  # noqa: E402
from raynas.spaces import create_space  # noqa: E402
from raynas.testing import assert_complete, tiny_score_config  # noqa: E402
from raynas_tests import SUPPORT_DIR  # noqa: E402
from raynas_tests.processes import finish, kill_session, start_logged  # noqa: E402
from raynas_tests.waits import TEST_LIMIT_S, WAIT_S, wait_for  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.timeout(TEST_LIMIT_S)]

RAY_BIN = str(Path(sys.executable).with_name("ray"))
REPO = Path(__file__).resolve().parents[2]
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
def two_nodes() -> Iterator[dict[str, Any]]:
    base = tempfile.mkdtemp(prefix="rn2n", dir="/tmp")  # short: Ray's unix socket paths are length-limited
    env = {**os.environ, **CLUSTER_ENV}
    port = _free_port()
    address = f"127.0.0.1:{port}"
    head = _start_node(["--head", f"--port={port}", "--num-cpus=1", "--num-gpus=0", "--include-dashboard=false"],
                       f"{base}/head", env)
    worker = None
    try:
        wait_for(lambda: subprocess.run([RAY_BIN, "status", f"--address={address}"], env=env,
                                        capture_output=True).returncode == 0,
                 "the head node coming up", proc=head, poll=0.5)
        worker = _start_node([f"--address={address}", "--num-cpus=1", "--num-gpus=0"], f"{base}/worker", env)
        yield {"address": address, "worker": worker, "head": head, "env": env}
    finally:
        for proc in (worker, head):
            if proc is not None:
                proc.send_signal(signal.SIGTERM)  # `ray start --block` stops its node's processes
        for proc in (worker, head):
            if proc is not None:
                try:
                    proc.wait(timeout=30)  # a graceful stop if it comes; the node is SIGKILLed next either way
                except subprocess.TimeoutExpired:
                    pass
                _kill_node(proc, signal.SIGKILL)
        _kill_leftovers(base)
        shutil.rmtree(base, ignore_errors=True)


# The driver process: waits for both nodes, holds the first assignment until both actors are up (so both
# nodes really hold work when one dies; otherwise the actor that starts first may score everything before
# the other has imported torch), kills the worker node after the first written shard, prints the summary.
DRIVER = r"""
import json, sys, time
import ray
from raynas.parallel import driver as driver_mod, run_scoring_from_dict
from raynas_tests.processes import kill_session

cfg, worker_sid, wait_s = json.loads(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
ray.init(address=cfg["address"], log_to_driver=False)
deadline = time.monotonic() + wait_s
while len([n for n in ray.nodes() if n["Alive"]]) < 2:
    if time.monotonic() > deadline:
        sys.exit("the second node did not join")
    time.sleep(0.5)

real_assign = driver_mod._Pool._assign
def assign(self):
    if not getattr(self, "_both_up", False):
        if not all(s.state == "idle" for s in self.slots):
            return
        self._both_up = True
    real_assign(self)
driver_mod._Pool._assign = assign

killed = []
def progress(done, total, rate, eta):
    if done >= 1 and not killed:
        kill_session(worker_sid)  # the machine "fails": raylet, agents and its actor die at once
        killed.append(done)

summary = run_scoring_from_dict(cfg, progress_callback=progress)  # reuses the attached Ray
summary["killed_at"] = killed
deadline = time.monotonic() + wait_s  # the head notices the lost node within seconds (fast health checks)
while len([n for n in ray.nodes() if n["Alive"]]) > 1 and time.monotonic() < deadline:
    time.sleep(0.5)
summary["alive_nodes"] = len([n for n in ray.nodes() if n["Alive"]])
ray.shutdown()
print("SUMMARY " + json.dumps(summary))
"""


def test_node_lost_mid_run_leaves_complete_duplicate_free_table(two_nodes: dict[str, Any], tmp_path: Path) -> None:
    # one CPU per node and per actor: the two actors necessarily sit on different nodes
    cfg = tiny_score_config(tmp_path / "run", sample=8, workers=2, cpus_per_worker=1.0,
                            address=two_nodes["address"])
    # the driver imports raynas_tests (kill_session) too
    env = {**two_nodes["env"], "PYTHONPATH": os.pathsep.join([str(REPO), str(SUPPORT_DIR)]), "OMP_NUM_THREADS": "1"}
    # the driver's own waits are shorter than this one, so it reports what it waited for in vain
    proc = subprocess.run([sys.executable, "-c", DRIVER, json.dumps(cfg), str(two_nodes["worker"].pid),
                           str(WAIT_S / 4)], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=WAIT_S)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("SUMMARY ")]
    assert proc.returncode == 0 and lines, f"driver failed ({proc.returncode}): {proc.stderr[-3000:]}"
    summary = json.loads(lines[-1][len("SUMMARY "):])
    assert summary["killed_at"], "the worker node was never removed"
    assert len({a["node_id"] for a in summary["actors"]}) == 2  # work really was spread over both nodes
    assert summary["failed_shards"] == [] and summary["error_rows"] == 0
    assert summary["retries"] >= 1  # the lost node's shard was scored again on the survivor
    assert summary["alive_nodes"] == 1
    assert_complete(tmp_path / "run", select_ids(create_space("nb201"), ScoreConfig.from_dict(cfg)))


# The script run as __main__ (as `ray submit` runs it), its RoBoT search given the progress callback
# raynas_tests.gates.hold_at: after its second step (state saved) the job writes the file argv[1] and holds.
HELD = r"""
import runpy, sys
import raynas.search.runner as runner
from raynas_tests.gates import hold_at

held, script = sys.argv[1], sys.argv[2]
real = runner.run_robot_search
runner.run_robot_search = lambda cfg, progress_callback=None: real(cfg, progress_callback=hold_at(2, held))
sys.argv = sys.argv[2:]
runpy.run_path(script, run_name="__main__")
"""


def _pipeline(address: str, out: Path, env: dict[str, str], log_stem: Path,
              hold: Path | None = None) -> subprocess.Popen:
    """``scripts/ray_submit_search.py pipeline`` as ``ray submit`` runs it on the head: the whole job on the
    cluster, RoBoT's real-training queries 4 in flight as Ray tasks (1 CPU each: one per node at a time).
    ``hold``: the job holds itself after its search's second step, having written that file (see ``HELD``)."""
    sets = ["scoring.sample=8", "scoring.C=4", "scoring.N=1", "scoring.batch_size=8", "scoring.workers=2",
            "scoring.metrics=[synflow,params,grad_norm]", "search.budget=6", "search.q=4", "oracle.epochs=1",
            "oracle.C=4", "oracle.N=1", "oracle.device=cpu"]
    script = [str(REPO / "scripts" / "ray_submit_search.py"), "pipeline", "--address", address, "--out", str(out),
              *[a for s in sets for a in ("--set", s)]]
    cmd = [sys.executable, *(["-c", HELD, str(hold)] if hold is not None else []), *script]
    return start_logged(cmd, log_stem, env=env)


def test_pipeline_job_on_two_nodes_resumes_after_the_driver_is_killed(two_nodes: dict[str, Any],
                                                                      tmp_path: Path) -> None:
    from raynas.store.search_state import load_search_state

    # the held job imports raynas_tests (the gate)
    env = {**two_nodes["env"], "PYTHONPATH": os.pathsep.join([str(REPO), str(SUPPORT_DIR)]), "OMP_NUM_THREADS": "1"}
    run, held = tmp_path / "run", tmp_path / "held"
    cut = _pipeline(two_nodes["address"], run, env, tmp_path / "cut", hold=held)
    try:
        wait_for(held.exists, "the job reaching its second search step", proc=cut, poll=0.2)
        assert cut.poll() is None, "the job ended before it could be killed"
    finally:
        # the driver dies mid-search (the cluster stays up); its log is shown if this failed
        print(finish(cut, timeout=WAIT_S, kill=True)[1][-3000:], file=sys.stderr)
    rows = load_search_state(run / "robot" / "state.parquet").rows
    assert 2 <= len(rows) < 6
    shards = sorted((run / "scores").glob("shard-*.parquet"))
    stamps = [p.stat().st_mtime_ns for p in shards]
    again = _pipeline(two_nodes["address"], run, env, tmp_path / "again")
    out, err = finish(again, timeout=WAIT_S)
    assert again.returncode == 0, err[-3000:]
    summary = json.loads(out[out.index("{"):])
    result = json.loads((run / "robot" / "result.json").read_text())
    assert summary["robot"]["queries"] == 6 == len(set(result["queried"])) and result["q"] == 4
    assert [r["arch_index"] for r in result["trace"][:len(rows)]] == [r["arch_index"] for r in rows]  # continued
    assert [p.stat().st_mtime_ns for p in shards] == stamps  # the scoring stage was complete: not redone
    assert (run / "report" / "report.md").exists()
