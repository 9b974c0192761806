"""Queries of a real-training search as Ray tasks on a real local Ray (2 CPUs, 2 *logical* GPUs): q = 4 queries
of real short trainings run 2 at a time on 2 workers with distinct GPUs; a worker killed mid-training is
retried on another worker and the search ends with the same number of distinct queries; a query that raises is a
recorded failed query; a driver killed mid-search resumes to the same answer as an uninterrupted run.

Every "at the same time" and "mid-query" here is made by events, not timing (a busy machine starts a Ray worker
in tens of seconds): queries meet before training, the killed query hangs until it is killed, and the killed
driver holds itself after its second step until the test kills it."""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

ray = pytest.importorskip("ray")

import raynas  # noqa: E402
from raynas.oracles.training import TrainingOracle  # noqa: E402
from raynas.parallel.queries import RayQueryExecutor  # noqa: E402
from raynas.search import RoBoT  # noqa: E402
from raynas.search.runner import load_pool  # noqa: E402
from raynas.store.search_state import load_search_state  # noqa: E402
from raynas_tests import SUPPORT_DIR  # noqa: E402
from raynas_tests.oracles import LoggedTrainingOracle, read_events  # noqa: E402
from raynas_tests.processes import finish, start_logged  # noqa: E402
from raynas_tests.waits import TEST_LIMIT_S, WAIT_S, wait_for  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.timeout(TEST_LIMIT_S)]

REPO = Path(__file__).resolve().parents[2]
METRICS = ["params", "synflow"]
#: a real training of a tiny NB201 network on 64 digits images: about a second on one core
ORACLE = {"space_kwargs": {"C": 4, "N": 1}, "input_size": 16, "max_train": 64, "max_val": 32,
          "train_cfg": {"epochs": 1, "batch_size": 32, "seed": 0}}
FAST = {"num_restarts": 2, "raw_samples": 32}


@pytest.fixture(scope="module")
def scores(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("pool") / "run"
    raynas.score(run, space="nb201", metrics=METRICS, sample=16, seed=0, data="digits", batch_size=8,
                 space_kwargs={"C": 4, "N": 1}, workers=0)
    return run


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    if ray.is_initialized():
        ray.shutdown()
    old = os.environ.get("PYTHONPATH")
    # workers import the logged test oracle: its folder goes to the environment the workers inherit
    os.environ["PYTHONPATH"] = os.pathsep.join([str(REPO), str(SUPPORT_DIR), *([old] if old else [])])
    ray.init(num_cpus=2, num_gpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()
    if old is None:
        os.environ.pop("PYTHONPATH", None)
    else:
        os.environ["PYTHONPATH"] = old


def _search(scores: Path, q: int, budget: int = 6) -> RoBoT:
    pool, _, _ = load_pool(scores, METRICS)
    driver_oracle = TrainingOracle(space="nb201", **ORACLE)
    return RoBoT(pool, driver_oracle, budget=budget, seed=0, q=q, **FAST)


def _executor(log_dir: Path, **kw: Any) -> RayQueryExecutor:
    factory = functools.partial(LoggedTrainingOracle, str(log_dir), space="nb201", **ORACLE, **kw.pop("oracle", {}))
    return RayQueryExecutor(factory, num_cpus=1, num_gpus=1, **kw)


def _overlap(events: list[dict]) -> int:
    """Most queries running at the same time."""
    running = best = 0
    for e in events:
        running += 1 if e["event"] == "start" else -1
        best = max(best, running)
    return best


def test_q4_real_trainings_run_two_at_a_time_on_two_gpu_workers(local_ray: None, scores: Path,
                                                                  tmp_path: Path) -> None:
    search = _search(scores, q=4)
    # each query waits (before training) until two have started: however late the second worker process starts,
    # the first two queries are seen running at once; a third never can be (2 GPUs)
    r = search.run(executor=_executor(tmp_path, oracle={"pause": 0.5, "meet": 2, "meet_timeout": WAIT_S / 2}))
    events = read_events(tmp_path)
    starts = [e for e in events if e["event"] == "start"]
    assert r["queries"] == 6 and len({e["arch"] for e in starts}) == 6 == len(starts)  # no arch trained twice
    assert _overlap(events) == 2  # 2 logical GPUs, 1 per query: two at a time, never more
    assert len({e["pid"] for e in starts}) >= 2 and {g for e in starts for g in e["gpu_ids"]} == {"0", "1"}
    # the driver trained nothing: the workers' answers were handed to its oracle (final needs no training)
    assert sorted(search.oracle._cache) == sorted(r["queried"]) and search.oracle.curves == {}
    assert r["final"] == r["value"] and r["failed_queries"] == []


def test_a_worker_killed_mid_training_is_retried_elsewhere(local_ray: None, scores: Path, tmp_path: Path) -> None:
    killed: dict[str, int] = {}
    done = threading.Event()

    def killer() -> None:
        # the first query hangs after logging its start (until killed): the kill lands mid-query on any machine
        while not done.is_set() and not killed:
            hung = [e for e in read_events(tmp_path) if e["event"] == "start" and e.get("hangs")]
            if hung:
                killed.update(pid=hung[0]["pid"], arch=hung[0]["arch"])
                os.kill(hung[0]["pid"], signal.SIGKILL)
            time.sleep(0.05)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    search = _search(scores, q=4)
    try:
        r = search.run(executor=_executor(tmp_path, oracle={"hang_marker": str(tmp_path / "hung.marker")},
                                          max_retries=2))
    finally:
        done.set()
        thread.join(WAIT_S)
    assert killed, "no query started"
    starts = [e for e in read_events(tmp_path) if e["event"] == "start"]
    again = [e for e in starts if e["arch"] == killed["arch"]]
    assert len(again) == 2 and again[1]["pid"] != killed["pid"]  # re-run on another worker process
    assert r["queries"] == 6 and len(set(r["queried"])) == 6 and killed["arch"] in r["queried"]
    assert r["failed_queries"] == []


def test_a_query_that_raises_is_a_recorded_failed_query(local_ray: None, scores: Path, tmp_path: Path) -> None:
    bad = _search(scores, q=2).ask_batch()[1].arch_index
    search = _search(scores, q=2, budget=4)
    r = search.run(executor=_executor(tmp_path, oracle={"fail_archs": [bad]}))
    f = [f for f in r["failed_queries"] if f["new_query"]]
    assert len(f) == 1 and f[0]["arch_index"] == bad and f[0]["status"] == "error"
    assert "RuntimeError: bogus training of arch" in f[0]["reason"]
    assert r["queries"] == 4 and bad not in r["queried"]
    starts = [e for e in read_events(tmp_path) if e["event"] == "start"]
    assert [e["arch"] for e in starts].count(bad) == 1  # an error is not retried


def _driver(out: Path, scores: Path, resume: bool, hold: Path | None = None) -> subprocess.Popen:
    """``raynas.search`` in its own process and session (own local Ray: 2 CPUs, queries as Ray tasks). ``hold``:
    after its second step (its state saved) the driver writes that file and holds itself there until killed
    (:func:`raynas_tests.gates.hold_at`)."""
    code = (
        "import json, sys, torch; torch.set_num_threads(1)\n"
        "import raynas\n"
        "from raynas_tests.gates import hold_at\n"
        f"progress = hold_at(2, {str(hold)!r}) if {hold is not None} else None\n"
        f"r = raynas.search('robot', {str(out)!r}, scores={str(scores)!r}, oracle='train', budget=5, seed=0,"
        f" resume={resume}, metrics={METRICS!r}, oracle_options={ORACLE!r}, q=2, query_backend='ray',"
        " progress=progress)\n"
        "print('RESULT ' + json.dumps({'arch_index': r['arch_index'], 'queried': r['queried'],"
        " 'trace': r['trace']}))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(SUPPORT_DIR)]), "OMP_NUM_THREADS": "1",
           "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_ADDRESS", None)
    return start_logged([sys.executable, "-c", code], out.parent / f"{out.name}-{'resumed' if resume else 'run'}",
                        env=env)


def _result(proc: subprocess.Popen) -> dict:
    out, err = finish(proc, timeout=WAIT_S)
    assert proc.returncode == 0, err[-3000:]
    line = [ln for ln in out.splitlines() if ln.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


def test_a_killed_driver_resumes_to_the_uninterrupted_answer(scores: Path, tmp_path: Path) -> None:
    if ray.is_initialized():  # the drivers start their own Ray
        ray.shutdown()
    full = _result(_driver(tmp_path / "full", scores, resume=False))
    held = tmp_path / "held"
    cut = _driver(tmp_path / "cut", scores, resume=False, hold=held)
    state = tmp_path / "cut" / "state.parquet"
    try:
        wait_for(held.exists, "the search reaching its second step", proc=cut, poll=0.1)
        assert cut.poll() is None, "the search ended before it could be killed"
    finally:
        # the driver and its local Ray (raylet, workers, mid-query); its log is shown if this failed
        print(finish(cut, timeout=WAIT_S, kill=True)[1][-3000:], file=sys.stderr)
    st = load_search_state(state)
    assert 2 <= len(st.rows) < len(full["trace"])
    resumed = _result(_driver(tmp_path / "cut", scores, resume=True))
    assert resumed["arch_index"] == full["arch_index"] and resumed["queried"] == full["queried"]
    # the same proposals and values, step for step (costs are measured wall seconds: they differ)
    keys = ("step", "kind", "weights", "arch_index", "value", "new_query")
    assert [[r[k] for k in keys] for r in resumed["trace"]] == [[r[k] for k in keys] for r in full["trace"]]
