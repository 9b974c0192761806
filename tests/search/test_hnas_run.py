"""``run_hnas_search``: search directory, progress, refusal to overwrite, exact resume after a crash, the hybrid
(ASHA) wiring. The score store and the oracle are replaced by the synthetic pool and a lookup oracle."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest

import raynas.search.runner as runner
import raynas.search.session as session
from raynas.errors import OracleError, StoreError, UnknownNameError
from raynas.search import CandidatePool
from raynas.search.hnas_run import run_hnas_search
from raynas.testing import FakeOracle, hnas_pool_table

FAST = {"budget": 4, "max_iters": 5, "seed": 0, "resume": False, "oracle": "nb201", "metric": "ntk_trace"}


@pytest.fixture
def fake_scores(monkeypatch):
    table, acc = hnas_pool_table(31, 0, "target")
    wide = pa.table({**table, "arch": [f"arch{i}" for i in table["arch_index"]]})
    oracles = []

    def load_checked_pool(scores, metrics, transform="none", *, allow_incomplete=False,
                          optional=()):
        return runner.LoadedPool(CandidatePool.from_table(wide, metrics, transform), wide, {"space": "nb201"}, ())

    def make_oracle(name, score_cfg, seed, options=None):
        oracles.append(FakeOracle(table["arch_index"], acc))
        return oracles[-1]

    monkeypatch.setattr(session, "load_checked_pool", load_checked_pool)
    monkeypatch.setattr(session, "make_oracle", make_oracle)
    return table, acc, oracles


def test_writes_the_search_dir_and_reports_progress(tmp_path, fake_scores):
    table, acc, oracles = fake_scores
    progress = []
    r = run_hnas_search({**FAST, "scores": "runs/x", "out": str(tmp_path / "h")}, lambda d, t: progress.append((d, t)))
    assert {p.name for p in (tmp_path / "h").iterdir()} >= {"search.json", "state.parquet", "result.json"}
    saved = json.loads((tmp_path / "h" / "result.json").read_text())
    assert saved["arch_index"] == r["arch_index"] and saved["arch"] == f"arch{r['arch_index']}"
    assert r["value"] == max(r["values"]) and r["queries"] == 4 and len(r["trace"]) == r["steps"]
    assert progress[-1] == (4, 4) and [d for d, _ in progress] == sorted(d for d, _ in progress)
    with pytest.raises(StoreError, match="already holds a search"):
        run_hnas_search({**FAST, "scores": "runs/x", "out": str(tmp_path / "h")})


def test_resume_after_a_crash_matches_an_uninterrupted_run(tmp_path, fake_scores, monkeypatch):
    table, acc, oracles = fake_scores
    full = run_hnas_search({**FAST, "scores": "s", "out": str(tmp_path / "full")})

    real = FakeOracle.query

    def crash_on_third(self, arch_index):
        if len(self.calls) == 2:
            raise OracleError("node lost")
        return real(self, arch_index)

    monkeypatch.setattr(FakeOracle, "query", crash_on_third)
    with pytest.raises(OracleError):
        run_hnas_search({**FAST, "scores": "s", "out": str(tmp_path / "cut")})
    monkeypatch.setattr(FakeOracle, "query", real)
    resumed = run_hnas_search({**FAST, "scores": "s", "out": str(tmp_path / "cut"), "resume": True})
    assert resumed["queried"] == full["queried"] and resumed["trace"] == full["trace"]
    assert oracles[-1].calls == full["queried"][2:]  # only the missing queries were asked again


def test_takes_the_typed_config(tmp_path, fake_scores):
    from raynas.search.hnas_run import HNASSearchConfig

    typed = run_hnas_search(HNASSearchConfig(scores="s", out=str(tmp_path / "t"), **FAST))
    mapped = run_hnas_search({**FAST, "scores": "s", "out": str(tmp_path / "m")})
    assert typed["trace"] == mapped["trace"] and typed["arch_index"] == mapped["arch_index"]


def test_unknown_measure_is_rejected_before_reading_scores(tmp_path):
    with pytest.raises(UnknownNameError, match="grad_nrom"):
        run_hnas_search({**FAST, "scores": "does/not/exist", "out": str(tmp_path), "metric": "grad_nrom"})


def test_hybrid_runs_asha_over_the_top_k_of_the_learned_objective(tmp_path, fake_scores, monkeypatch):
    import raynas.tune.asha as asha

    calls = {}

    def fake_run_asha(archs, space, dataset, train_cfg, max_epochs, **kw):
        calls.update(archs=list(archs), max_epochs=max_epochs, train=train_cfg, **kw)
        # pretend the second-ranked arch trains best
        return [asha.TrialResult(a, 50.0 + (10.0 if i == 1 else 0.0), max_epochs if i < 2 else 1, i >= 2,
                                 f"/ckpt/{i}", "completed" if i < 2 else "stopped") for i, a in enumerate(archs)]

    monkeypatch.setattr(asha, "run_asha", fake_run_asha)
    r = run_hnas_search({**FAST, "scores": "s", "out": str(tmp_path / "h"), "oracle": "train", "top_k": 3,
                         "oracle_options": {"dataset": "digits", "input_size": 8, "space_kwargs": {"C": 4, "N": 1},
                                            "train_cfg": {"epochs": 2, "batch_size": 16}}})
    top = r["asha"]["trials"]
    assert len(calls["archs"]) == 3 and calls["max_epochs"] == 6  # default: 3x the query epochs
    assert calls["train"].batch_size == 16 and calls["space_kwargs"] == {"C": 4, "N": 1}
    # A*(t*, c*) of the best BO point is the best queried arch, so it heads the top-k
    assert calls["archs"][0] == f"arch{r['bo_arch_index']}" and r["bo_arch_index"] != r["arch_index"]
    assert r["arch"] == calls["archs"][1] and r["value"] == 60.0 and r["asha"]["checkpoint"] == "/ckpt/1"
    assert [t["status"] for t in top] == ["completed", "completed", "stopped"]
    assert np.isclose(r["bo_value"], max(r["values"]))
