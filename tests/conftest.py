"""Shared pytest set-up: thread limits, the real-data location, and Ray hygiene."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

# Tests run on 2 cores; more intra-op threads only add contention.
torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]


def data_root() -> Path:
    return Path(os.environ.get("RAYNAS_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def nb201_table_path() -> Path:
    p = data_root() / "nb201" / "nb201_cifar10.parquet"
    if not p.exists():
        pytest.skip(f"NAS-Bench-201 ground truth not found at {p} (set RAYNAS_DATA)")
    return p
