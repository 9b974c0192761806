"""ScoreConfig: strict construction, validation, identity vs volatile keys."""

from __future__ import annotations

import pytest

from raynas.errors import ConfigError
from raynas.parallel.config import VOLATILE_KEYS, ScoreConfig


def test_from_dict_normalises_metrics_and_space_kwargs() -> None:
    cfg = ScoreConfig.from_dict({"out": "r", "sample": 4, "metrics": "params, grad_norm", "space_kwargs": {"C": 4}})
    assert cfg.metrics == ("params", "grad_norm")
    assert cfg.space_kwargs == {"C": 4}
    assert ScoreConfig.from_dict({"out": "r", "sample": 4, "metrics": ["params"]}).metrics == ("params",)


@pytest.mark.parametrize(
    "bad",
    [
        {"out": "r"},  # no selection
        {"out": "r", "sample": 3, "all": True},  # two selections
        {"out": "r", "sample": 0},
        {"out": "r", "ids": []},
        {"out": "r", "ids": [-1]},
        {"out": "r", "sample": 3, "workers": -1},
        {"out": "r", "sample": 3, "gpus_per_worker": -0.5},
        {"out": "r", "sample": 3, "gpus_per_worker": 1.5},
        {"out": "r", "sample": 3, "shard_size": 0},
        {"out": "r", "sample": 3, "typo": 1},
        {"out": "r", "sample": "3"},
        {"out": "r", "sample": 3, "space_kwargs": {"C": [1]}},
        {"out": "r", "sample": 3, "shard_timeout_s": 0},
        {"out": "r", "sample": 3, "shard_timeout_s": -5.0},
    ],
)
def test_invalid_configs_raise(bad: dict) -> None:
    with pytest.raises(ConfigError):
        ScoreConfig.from_dict(bad)


def test_resolved_splits_identity_and_volatile() -> None:
    a = ScoreConfig(out="r1", sample=4, metrics=("params",), workers=1)
    b = ScoreConfig(out="r2", sample=4, metrics=("params",), workers=8, gpus_per_worker=0.5, resume=True,
                    address="auto", force=True, cpus_per_worker=2.0, max_retries=0, shard_timeout_s=60.0)
    assert a.identity() == b.identity()
    assert set(a.resolved()["volatile"]) == set(VOLATILE_KEYS)
    assert a.identity()["metrics"] == ["params"]
    assert a.identity() != ScoreConfig(out="r1", sample=4, metrics=("params",), seed=1).identity()
    assert a.identity() != ScoreConfig(out="r1", sample=4, metrics=("params",), shard_size=7).identity()


def test_all_metrics_are_expanded() -> None:
    from raynas.metrics import list_metrics

    from raynas.metrics.registry import group_members

    # ``all`` leaves the raynas-only diagnostic twins out; ``all,diagnostic`` is every registered metric
    assert ScoreConfig(out="r", sample=1).identity()["metrics"] == [n for n in list_metrics()
                                                                     if n not in group_members("diagnostic")]
    assert sorted(ScoreConfig(out="r", sample=1, metrics="all,diagnostic").identity()["metrics"]) == list_metrics()
