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


@pytest.fixture(scope="session")
def nb201_table_path() -> Path:
    p = data_root() / "nb201" / "nb201_cifar10.parquet"
    if not p.exists():
        pytest.skip(f"NAS-Bench-201 ground truth not found at {p} (set RAYNAS_DATA)")
    return p
