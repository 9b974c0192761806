"""Issue 29 (2, 3): one writer per run or search directory (an OS lock that dies with its process), and a claim
that ends in an error before anything was stored leaves the directory as it found it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from raynas.errors import StoreError
from raynas.store import LOCK_FILE, DirClaim, DirectoryBusyError, SearchDir, open_store


def _holder(directory: Path) -> subprocess.Popen:
    """A process that claims ``directory`` (as a scoring run), says ``ready`` and sleeps."""
    code = textwrap.dedent(f"""
        import sys, time
        from raynas.store import open_store
        claim = open_store({str(directory)!r}).claim().acquire()
        print("ready", flush=True)
        time.sleep(120)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


def test_a_second_writer_is_refused_with_the_holder_and_gets_in_once_the_holder_dies(tmp_path: Path) -> None:
    run = tmp_path / "run"
    proc = _holder(run)
    try:
        with pytest.raises(DirectoryBusyError) as e:
            open_store(run).claim().acquire()
        msg = str(e.value)
        assert isinstance(e.value, StoreError) and "\n" not in msg
        assert f"raynas pid {proc.pid} on host {socket.gethostname()}" in msg and "scoring run" in msg
        assert json.loads((run / LOCK_FILE).read_text())["pid"] == proc.pid
    finally:
        proc.send_signal(signal.SIGKILL)  # a crash: nothing cleans up, the lock file stays
        proc.wait()
    assert (run / LOCK_FILE).exists()
    with open_store(run).claim() as claim:  # the kernel dropped the lock with the process
        assert json.loads((run / LOCK_FILE).read_text())["pid"] == os.getpid() and claim.held
    assert not (run / LOCK_FILE).exists()  # a finished writer leaves no lock file


def test_two_claims_in_one_process_conflict_too(tmp_path: Path) -> None:
    with SearchDir(tmp_path / "s").claim():
        with pytest.raises(DirectoryBusyError, match=f"raynas pid {os.getpid()}.*this search"):
            SearchDir(tmp_path / "s").claim().acquire()
    SearchDir(tmp_path / "s").claim().acquire().release()


def test_a_failed_claim_of_a_new_directory_removes_what_it_created(tmp_path: Path) -> None:
    run = tmp_path / "a" / "run"
    store = open_store(run)
    with pytest.raises(RuntimeError):
        with store.claim():
            store.save_config({"identity": {"space": "nb201"}})
            raise RuntimeError("cannot connect to the Ray cluster")
    assert not (tmp_path / "a").exists()


def test_a_failed_claim_puts_the_config_back_and_removes_nothing_that_existed(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "notes.txt").write_text("mine")
    store = open_store(run)
    store.save_config({"identity": {"space": "nb201"}})
    before = store.config_path.read_bytes()
    with pytest.raises(KeyboardInterrupt):
        with store.claim():
            store.save_config({"identity": {"space": "darts_cifar"}})  # a forced resume rewrote it
            raise KeyboardInterrupt
    assert store.config_path.read_bytes() == before and (run / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in run.iterdir()) == ["config.json", "notes.txt"]


def test_a_claim_that_stored_something_is_never_undone(tmp_path: Path) -> None:
    from raynas.store import results_to_table
    from raynas.testing import metric_results

    run = tmp_path / "run"
    store = open_store(run)
    with pytest.raises(RuntimeError):
        with store.claim():
            store.save_config({"identity": {"space": "nb201"}})
            store.write_shard(0, results_to_table("nb201", 0, "a", 0, "d", metric_results({"params": 1.0}), "h"))
            raise RuntimeError("the cluster went away after the first shard")
    assert store.config_path.exists() and store.shard_ids() == {0}


def test_a_successful_claim_keeps_its_config(tmp_path: Path) -> None:
    store = open_store(tmp_path / "run")
    with store.claim():
        store.save_config({"identity": {"space": "nb201"}})
    assert store.load_config() == {"identity": {"space": "nb201"}}
    assert not (tmp_path / "run" / LOCK_FILE).exists()


def test_the_lock_file_is_not_a_shard_nor_a_run(tmp_path: Path) -> None:
    run = tmp_path / "run"
    with open_store(run).claim():
        store = open_store(run)
        assert store.shard_ids() == set() and not store.exists() and not SearchDir(run).started()
