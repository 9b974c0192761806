"""The scoring actor gets the batch with its calls, not in its constructor (issue 29 item 9).

An actor created with ``max_restarts > 0`` and a constructor argument in Ray's object store (an ObjectRef, or a
value over Ray's inline limit, which Ray puts there itself) makes Ray print a ``core_worker.cc`` error line on
every scoring run. The constructor now carries only small plain values; the batch's reference travels with each
``ready`` ping and scoring call and is fetched once per actor incarnation. Here without Ray (the class is plain);
the terminal of a real run is checked in tests/integration/test_ray_quiet.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from raynas.data.noise import noise_batch
from raynas.parallel import ScoreConfig
from raynas.parallel import actor as actor_mod
from raynas.parallel.actor import MetricProgress, ScoringWorker, create_actor
from raynas.parallel.shards import Shard


class _Ref:
    """Stands for a Ray ObjectRef (what the actor uses of one: its id)."""

    def __init__(self, key: bytes) -> None:
        self.key = key

    def binary(self) -> bytes:
        return self.key


@pytest.fixture
def worker(monkeypatch: pytest.MonkeyPatch) -> ScoringWorker:
    monkeypatch.setattr(ScoringWorker, "gpu_ids", lambda self: [])  # no Ray: no GPUs assigned
    return ScoringWorker("nb201", {"C": 4, "N": 1}, ["params", "grad_norm"], 0, "noise")


@pytest.fixture
def fetches(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Ray's get replaced: each fetch is recorded and answers a batch of a seed named by the ref."""
    seen: list[bytes] = []

    def get(ref: _Ref) -> Any:
        seen.append(ref.binary())
        return noise_batch(batch_size=4, size=8, seed=int(ref.binary()))

    monkeypatch.setattr(actor_mod.ray, "get", get)
    return seen


def _rows(worker: ScoringWorker, batch: Any, ids: tuple[int, ...] = (3, 7)) -> list[tuple]:
    out = []
    for item in worker.stream(Shard(0, ids), batch):
        if isinstance(item, MetricProgress):  # a metric pass starting (progress inside an arch)
            continue
        idx, table = item
        for r in table.to_pylist():
            out.append((idx, r["metric"], r["value"], r["status"]))
    return out


def test_an_actor_without_a_batch_refuses_to_score(worker: ScoringWorker) -> None:
    with pytest.raises(RuntimeError, match="holds no batch"):
        worker.score(Shard(0, (1,)))


def test_the_batch_is_fetched_once_per_reference(worker: ScoringWorker, fetches: list[bytes]) -> None:
    box = [_Ref(b"1")]
    worker.ready(box)
    first = _rows(worker, box)
    again = _rows(worker, box)
    assert fetches == [b"1"]  # the ping fetched it; both scoring calls reused it
    assert first == again and all(s == "ok" for *_, s in first)
    other = _rows(worker, [_Ref(b"2")])  # a new reference (a new run's batch) is fetched and used
    assert fetches == [b"1", b"2"]
    grad = {i: v for i, m, v, _ in first if m == "grad_norm"}
    grad2 = {i: v for i, m, v, _ in other if m == "grad_norm"}
    assert grad.keys() == grad2.keys() and grad != grad2  # grad_norm depends on the batch it was scored on


def test_a_scoring_call_brings_the_batch_to_an_incarnation_that_missed_the_ping(
        worker: ScoringWorker, fetches: list[bytes]) -> None:
    rows = _rows(worker, [_Ref(b"1")])  # no ready() first: as after a restart between ping and call
    assert fetches == [b"1"] and rows
    # same rows as a batch handed over directly (no Ray at all)
    assert _rows(worker, noise_batch(batch_size=4, size=8, seed=1)) == rows


def test_the_constructor_carries_nothing_ray_would_put_in_its_object_store(tmp_path: Any) -> None:
    import cloudpickle

    captured: dict[str, Any] = {}

    class Remote:
        def options(self, **kw: Any) -> "Remote":
            captured["options"] = kw
            return self

        def remote(self, *args: Any, **kwargs: Any) -> str:
            captured["args"], captured["kwargs"] = args, kwargs
            return "handle"

    cfg = ScoreConfig(out=str(tmp_path), sample=1, metrics=("params", "grad_norm"), max_retries=2)
    assert create_actor(cfg, ["params", "grad_norm"], "digits", actor_cls=Remote()) == "handle"
    assert captured["options"]["max_restarts"] == 2  # restarts stay on
    values = [*captured["args"], *captured["kwargs"].values()]
    flat = [v for x in values for v in (x if isinstance(x, (list, tuple)) else [x])]
    assert not any(type(v).__name__ == "ObjectRef" for v in flat)
    # Ray inlines arguments up to 100 KiB (max_direct_call_object_size); larger ones go to the object store
    assert len(cloudpickle.dumps(values)) < 100 * 1024
