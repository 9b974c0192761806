"""arch_batch: the scorer's groups of K archs (batched engine) give the rows of one-arch-at-a-time scoring."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from raynas.cli.main import build_parser
from raynas.cli.score_cmd import config_from_args
from raynas.data.batch import Batch
from raynas.errors import ConfigError
from raynas.parallel import ScoreConfig, run_scoring_from_dict
from raynas.parallel.scoring import iter_scored, score_ids
from raynas.spaces import create_space
from raynas.store import VOLATILE_KEYS
from raynas.testing import tiny_score_config
from raynas.testing.runs import score_rows

METRICS = ["grad_norm", "snip", "synflow", "params", "naswot", "jacob_cov", "flops"]


def _batch() -> Batch:
    g = torch.Generator().manual_seed(0)
    return Batch(torch.randn(6, 3, 8, 8, generator=g), torch.randint(0, 4, (6,), generator=g), 4, "tiny")


def _rows(table):  # type: ignore[no-untyped-def]
    return list(zip(*(table.column(c).to_pylist() for c in ("arch_index", "metric", "status", "value", "error"))))


@pytest.mark.parametrize("k", [3, 8])
def test_arch_batch_gives_the_per_arch_rows(k: int) -> None:
    space = create_space("nb201")
    ids = [0, 6111, 15625, 9930, 1, 12345, 13714]  # 15625: out of range -> error rows in both
    one = _rows(score_ids(space, ids, METRICS, _batch(), 0, space_kwargs={"C": 4, "N": 1}))
    many = _rows(score_ids(space, ids, METRICS, _batch(), 0, space_kwargs={"C": 4, "N": 1}, arch_batch=k))
    assert [r[:3] for r in one] == [r[:3] for r in many]
    assert [r[4] for r in one] == [r[4] for r in many]
    for a, b in zip(one, many):
        if a[3] is not None:
            assert b[3] == pytest.approx(a[3], rel=1e-5), a[:2]
    assert {r[2] for r in many if r[0] == 15625} == {"error"}


def test_iter_scored_yields_each_arch_in_order() -> None:
    space = create_space("nb201")
    got = [i for i, _ in iter_scored(space, [5, 4, 3, 2, 1], ["params"], _batch(), 0,
                                     space_kwargs={"C": 4, "N": 1}, arch_batch=2)]
    assert got == [5, 4, 3, 2, 1]
    with pytest.raises(ConfigError, match="arch_batch"):
        next(iter_scored(space, [1], ["params"], _batch(), 0, arch_batch=0))


def test_score_config_arch_batch_is_validated_and_volatile(tmp_path: Path) -> None:
    assert "arch_batch" in VOLATILE_KEYS
    cfg = ScoreConfig.from_dict(tiny_score_config(tmp_path, arch_batch=4))
    assert cfg.arch_batch == 4 and cfg.resolved()["volatile"]["arch_batch"] == 4
    assert "arch_batch" not in cfg.identity()
    for bad in (0, -1, True, 2.5):
        with pytest.raises(ConfigError, match="arch_batch"):
            ScoreConfig.from_dict(tiny_score_config(tmp_path, arch_batch=bad))


def test_run_scored_in_arch_batches_resumes_with_another_k(tmp_path: Path) -> None:
    ref = tmp_path / "ref"
    run_scoring_from_dict(tiny_score_config(ref, arch_batch=1))
    out = tmp_path / "run"
    summary = run_scoring_from_dict(tiny_score_config(out, arch_batch=4, shard_size=3))
    assert summary["rows"]["ok"] > 0
    # a resume with another K is the same run (arch_batch is volatile): accepted, nothing rescored
    run_scoring_from_dict(tiny_score_config(out, arch_batch=2, shard_size=3, resume=True))
    assert len(score_rows(out)) == len(score_rows(ref))
    full = {(a, m): (v, s) for a, m, _seed, v, s in score_rows(ref)}
    for a, m, _seed, v, s in score_rows(out):
        assert s == full[(a, m)][1]
        if v is not None:
            assert v == pytest.approx(full[(a, m)][0], rel=1e-5)


def test_cli_arch_batch_flag(tmp_path: Path) -> None:
    args = build_parser().parse_args(["score", "--out", str(tmp_path), "--sample", "2", "--arch-batch", "16"])
    assert config_from_args(args)["arch_batch"] == 16
    args = build_parser().parse_args(["score", "--out", str(tmp_path), "--sample", "2"])
    assert "arch_batch" not in config_from_args(args)
