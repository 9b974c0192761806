"""score_ids on a fake space with hand-countable networks; error rows for archs that cannot be built."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.nn as nn

from raynas.data.batch import Batch
from raynas.errors import InvalidArchitectureError, UnknownNameError
from raynas.parallel.scoring import drop_done_rows, failed_table, score_ids


class FakeSpace:
    """Arch ``a`` is Flatten -> Linear(4, k) -> ReLU -> Linear(k, classes), k = (a + 1) * mult; arch 3 is broken.

    With 3 classes ``params = 4k + k + 3k + 3 = 8k + 3``.
    """

    name = "fake"
    size = 5

    def index_to_arch(self, index: int) -> int:
        if not 0 <= index < self.size:
            raise InvalidArchitectureError(f"index {index} out of range")
        return index

    def format(self, arch: int) -> str:
        return f"arch{arch}"

    def thin_kwargs(self) -> dict[str, Any]:
        return {}

    def to_module(self, arch: int, num_classes: int, mult: int = 1) -> nn.Module:
        if arch == 3:
            raise InvalidArchitectureError("arch 3 has no path from input to output")
        k = (arch + 1) * mult
        return nn.Sequential(nn.Flatten(), nn.Linear(4, k), nn.ReLU(), nn.Linear(k, num_classes))


@pytest.fixture()
def batch() -> Batch:
    g = torch.Generator().manual_seed(0)
    return Batch(torch.randn(4, 1, 2, 2, generator=g), torch.tensor([0, 1, 2, 0]), 3, "tiny")


def test_score_ids_values_and_error_rows(batch: Batch) -> None:
    seen: list[tuple[int, int]] = []
    t = score_ids(FakeSpace(), [0, 3, 2], ["params", "grad_norm"], batch, seed=5, data_name="d", host="h",
                  space_kwargs={"mult": 1}, progress=lambda d, n: seen.append((d, n)))
    rows = t.to_pylist()
    assert [(r["arch_index"], r["metric"]) for r in rows] == [
        (0, "params"), (0, "grad_norm"), (3, "params"), (3, "grad_norm"), (2, "params"), (2, "grad_norm")]
    assert rows[0]["value"] == 11.0 and rows[4]["value"] == 27.0  # 8k + 3 with k = 1, 3
    assert rows[1]["status"] == "ok" and rows[1]["value"] > 0
    assert [r["status"] for r in rows[2:4]] == ["error", "error"]
    assert all(r["value"] is None and "arch 3 has no path" in r["error"] for r in rows[2:4])
    assert {(r["seed"], r["data"], r["host"]) for r in rows} == {(5, "d", "h")}
    assert seen == [(1, 3), (2, 3), (3, 3)]


def test_score_ids_passes_space_kwargs_and_is_reproducible(batch: Batch) -> None:
    kw = dict(data_name="d", host="h")
    a = score_ids(FakeSpace(), [1], ["params", "grad_norm"], batch, seed=1, space_kwargs={"mult": 2}, **kw)
    b = score_ids(FakeSpace(), [1], ["params", "grad_norm"], batch, seed=1, space_kwargs={"mult": 2}, **kw)
    assert a.column("value").to_pylist()[0] == 35.0  # k = 4
    assert a.column("value").equals(b.column("value"))  # same seed -> identical values (seeded init)
    c = score_ids(FakeSpace(), [1], ["grad_norm"], batch, seed=2, space_kwargs={"mult": 2}, **kw)
    assert c.column("value")[0].as_py() != a.column("value")[1].as_py()


def test_unknown_metric_is_a_config_error_not_an_error_row(batch: Batch) -> None:
    with pytest.raises(UnknownNameError):
        score_ids(FakeSpace(), [0], ["parms"], batch, seed=0)


def test_failed_table_and_drop_done_rows() -> None:
    t = failed_table(FakeSpace(), [0, 9], ["a", "b"], 3, "d", "boom")
    assert t.num_rows == 4 and set(t.column("status").to_pylist()) == {"error"}
    assert t.column("error").to_pylist() == ["boom"] * 4
    assert t.column("arch").to_pylist() == ["arch0", "arch0", None, None]  # index 9 has no arch
    kept = drop_done_rows(t, {(0, "b", 3), (9, "a", 4)})
    assert [(r["arch_index"], r["metric"]) for r in kept.to_pylist()] == [(0, "a"), (9, "a"), (9, "b")]
