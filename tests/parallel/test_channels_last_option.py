"""``channels_last`` as a scoring option: ``raynas score --channels-last`` / ``ScoreConfig.channels_last`` reaches the
engine (``compute_metrics(..., channels_last=True)``) for every arch, a resume keeps the stored setting, and the
rows equal the contiguous run's within float32 rounding (the tolerance of ``tests/metrics/test_memory_format.py``:
a few times the contiguous value's own float32 error against float64, or 1000 float32 ulps)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

import raynas.metrics.engine as engine
from raynas.cli.main import build_parser
from raynas.cli.score_cmd import config_from_args
from raynas.data.batch import Batch
from raynas.errors import ConfigError
from raynas.metrics.batched import per_arch_metrics
from raynas.parallel import ScoreConfig, run_scoring_from_dict
from raynas.parallel.scoring import iter_scored, score_ids
from raynas.spaces import create_space
from raynas.store import VOLATILE_KEYS, ScoreStore
from raynas.testing import tiny_score_config

#: convolution-heavy metrics of each kind (gradient, Jacobian, activation codes, a re-initialising one), cheap at C=4 N=1
METRICS = ["grad_norm", "snip", "synflow", "naswot", "jacob_cov", "zen", "vkdnw"]
EPS32 = torch.finfo(torch.float32).eps
F32_ERROR_FACTOR, F32_ULPS = 4.0, 1000  # as tests/metrics/test_memory_format.py
SPACE_KW = {"C": 4, "N": 1}


def _batch() -> Batch:
    g = torch.Generator().manual_seed(0)
    return Batch(torch.randn(6, 3, 8, 8, generator=g), torch.randint(0, 4, (6,), generator=g), 4, "tiny")


def test_flag_config_and_volatility(tmp_path: Path) -> None:
    parser = build_parser()
    given = config_from_args(parser.parse_args(["score", "--sample", "2", "--out", str(tmp_path), "--channels-last"]))
    assert given["channels_last"] is True
    plain = config_from_args(parser.parse_args(["score", "--sample", "2", "--out", str(tmp_path)]))
    assert "channels_last" not in plain  # not given: the config's default (off), or the stored run's on resume
    assert ScoreConfig.from_dict(tiny_score_config(tmp_path)).channels_last is False
    cfg = ScoreConfig.from_dict(tiny_score_config(tmp_path, channels_last=True))
    assert "channels_last" in VOLATILE_KEYS and "channels_last" not in cfg.identity()
    assert cfg.resolved()["volatile"]["channels_last"] is True
    with pytest.raises(ConfigError, match="channels_last"):
        ScoreConfig.from_dict(tiny_score_config(tmp_path, channels_last="yes"))
    with pytest.raises(ConfigError, match="arch_batch"):
        ScoreConfig.from_dict(tiny_score_config(tmp_path, channels_last=True, arch_batch=2))
    with pytest.raises(ConfigError, match="arch_batch"):
        next(iter_scored(create_space("nb201"), [1], ["params"], _batch(), 0, arch_batch=2, channels_last=True))


def test_the_option_reaches_the_engine_and_a_resume_keeps_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[bool] = []
    real = engine.compute_metrics

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(kwargs.get("channels_last", False))
        return real(*args, **kwargs)

    monkeypatch.setattr(engine, "compute_metrics", spy)
    cfg = tiny_score_config(tmp_path, sample=2, channels_last=True)
    assert run_scoring_from_dict(cfg)["scored"] == 2
    assert seen == [True, True]
    ScoreStore(tmp_path).shard_files()[0].unlink()  # lost: the resume scores that arch again
    seen.clear()
    summary = run_scoring_from_dict({"out": str(tmp_path), "resume": True})  # every other key from the stored config
    assert summary["scored"] == 1 and seen == [True]


def test_rows_equal_the_contiguous_run_within_float32_rounding() -> None:
    space = create_space("nb201")
    ids = [0, 6111, 13714]
    rows = {}
    for cl in (False, True):
        t = score_ids(space, ids, METRICS, _batch(), 0, space_kwargs=SPACE_KW, channels_last=cl)
        rows[cl] = {(a, m): (s, v) for a, m, s, v in zip(*(t.column(c).to_pylist()
                                                         for c in ("arch_index", "metric", "status", "value")))}
    assert rows[False].keys() == rows[True].keys()
    for idx in ids:
        arch = space.index_to_arch(idx)
        f64 = {r.metric: r.value for r in per_arch_metrics(lambda: space.to_module(arch, 4, **SPACE_KW), _batch(),
                                                           METRICS, dtype=torch.float64, seed=0)}
        for name in METRICS:
            (sa, a), (sb, b) = rows[False][(idx, name)], rows[True][(idx, name)]
            assert sa == sb, (idx, name, sa, sb)
            if sa != "ok":
                continue
            assert a is not None and b is not None and f64[name] is not None
            tol = max(F32_ERROR_FACTOR * abs(a - f64[name]), F32_ULPS * EPS32 * abs(a))
            assert abs(a - b) <= tol, (idx, name, a, b, f64[name])


def test_the_ray_actors_get_the_option(tmp_path: Path) -> None:
    """``create_actor`` hands ``channels_last`` to each scoring actor (which passes it to ``iter_scored``)."""
    from raynas.parallel.actor import create_actor

    class Fake:  # stands for the ray.remote actor class: records the constructor's keyword arguments
        @classmethod
        def options(cls, **_resources: Any) -> type["Fake"]:
            return cls

        @classmethod
        def remote(cls, *_args: Any, **kwargs: Any) -> dict[str, Any]:
            return kwargs

    for on in (False, True):
        cfg = ScoreConfig.from_dict(tiny_score_config(tmp_path, channels_last=on))
        assert create_actor(cfg, ["params"], "digits", actor_cls=Fake)["channels_last"] is on
