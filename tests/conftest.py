"""Shared pytest set-up: thread limits, the real-data location, Ray hygiene, and the test-only helpers."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

# Tests run on 2 cores; more intra-op threads only add contention.
torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]

# Test-only helpers (``raynas_tests``: NB201 networks, process killers, misbehaving actors). With
# ``--import-mode=importlib`` nothing under tests/ is importable by default, so their folder goes on sys.path.
SUPPORT = Path(__file__).resolve().parent / "_support"
if str(SUPPORT) not in sys.path:
    sys.path.insert(0, str(SUPPORT))


def data_root() -> Path:
    return Path(os.environ.get("RAYNAS_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="module", autouse=True)
def ray_session_ends_with_its_module():  # type: ignore[no-untyped-def]
    """Ray hygiene: no Ray session outlives the test module that started it.

    The integration modules start a local Ray in a module fixture and shut it down at its end; a test that starts
    one otherwise and leaves it running (or is stopped by its time limit before its own shutdown) would hand it to
    every later module: their runs would attach to a cluster of another shape, and a call interrupted inside Ray
    leaves that session unusable. Torn down after the module's own fixtures, this only stops what they left.
    Ray is not imported for that: a module that never imported it started nothing."""
    yield
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        ray.shutdown()


@pytest.fixture(scope="session")
def nb201_table_path() -> Path:
    p = data_root() / "nb201" / "nb201_cifar10.parquet"
    if not p.exists():
        pytest.skip(f"NAS-Bench-201 ground truth not found at {p} (set RAYNAS_DATA)")
    return p
