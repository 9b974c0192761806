"""Reading search pools from ``raynas score`` runs: one run, several runs joined on the architecture; and
``run_robot_search`` on its typed config (saved beside the search, compared on resume, exact resume)."""

from __future__ import annotations

import os

import numpy as np
import pyarrow as pa
import pytest

from raynas.errors import SearchError
from raynas.parallel.config import ScoreConfig
from raynas.search.runner import load_pool, split_runs
from raynas.store import read_scores_wide
from raynas.store import ScoreStore, results_to_table
from raynas.testing import metric_results


def _run(path, space, archs, values, seeds=(0,), names=None, planned=False):
    """A run dir with one shard: ``values(arch, seed) -> {metric: value}``. ``planned``: the config is a real
    scoring config planning exactly these archs in that shard (a complete run), else just ``{"space": ...}``."""
    store = ScoreStore(path)
    tables = [results_to_table(space, a, (names or {}).get(a, f"arch{a}"), s, "digits",
                               metric_results(values(a, s)), "h") for a in archs for s in seeds]
    store.write_shard(0, pa.concat_tables(tables))
    if planned:
        metrics = tuple(sorted(values(archs[0], seeds[0])))
        store.save_config(ScoreConfig(out=str(path), space=space, metrics=metrics, ids=tuple(archs),
                                      shard_size=len(archs), workers=0).resolved())
    else:
        store.save_config({"identity": {"space": space}})
    return str(path)


def test_split_runs_accepts_a_path_a_list_and_pathsep_joined_dirs(tmp_path):
    assert split_runs(tmp_path / "a") == [tmp_path / "a"]
    assert split_runs([tmp_path / "a", str(tmp_path / "b")]) == [tmp_path / "a", tmp_path / "b"]
    assert split_runs(f"{tmp_path}/a{os.pathsep}{tmp_path}/b{os.pathsep}") == [tmp_path / "a", tmp_path / "b"]
    with pytest.raises(SearchError, match="no scores"):
        split_runs("")


def test_one_run_averages_seeds(tmp_path):
    run = _run(tmp_path / "r", "nb201", [3, 1], lambda a, s: {"snip": a + s}, seeds=(0, 1))
    wide, cfg = read_scores_wide(run)
    assert wide.column_names == ["arch_index", "arch", "snip"]
    assert wide.column("arch_index").to_pylist() == [1, 3]
    assert wide.column("snip").to_pylist() == [1.5, 3.5]
    assert cfg == {"space": "nb201"}


def test_runs_join_on_the_archs_scored_in_all_of_them(tmp_path):
    a = _run(tmp_path / "a", "nb201", [0, 1, 2, 3], lambda x, s: {"snip": float(x), "synflow": 10.0 * x},
             planned=True)
    b = _run(tmp_path / "b", "nb201", [1, 2, 3, 4], lambda x, s: {"ntk_cond": 100.0 + x, "synflow": -1.0},
             planned=True)
    wide, _ = read_scores_wide(f"{a}{os.pathsep}{b}")
    assert wide.column("arch_index").to_pylist() == [1, 2, 3]
    assert wide.column("ntk_cond").to_pylist() == [101.0, 102.0, 103.0]
    assert wide.column("synflow").to_pylist() == [10.0, 20.0, 30.0]  # the first run's values win
    pool, _, _ = load_pool([a, b], ["snip", "ntk_cond"])
    assert list(pool.arch_index) == [1, 2, 3]
    np.testing.assert_allclose(pool.raw[:, 1], [101.0, 102.0, 103.0])


def test_join_refuses_other_spaces_other_arch_names_and_disjoint_runs(tmp_path):
    a = _run(tmp_path / "a", "nb201", [0, 1], lambda x, s: {"snip": 1.0})
    other_space = _run(tmp_path / "d", "darts_cifar", [0, 1], lambda x, s: {"fisher": 1.0})
    with pytest.raises(SearchError, match="space"):
        read_scores_wide([a, other_space])
    renamed = _run(tmp_path / "n", "nb201", [0, 1], lambda x, s: {"fisher": 1.0}, names={1: "other"})
    with pytest.raises(SearchError, match="differently"):
        read_scores_wide([a, renamed])
    disjoint = _run(tmp_path / "j", "nb201", [5, 6], lambda x, s: {"fisher": 1.0})
    with pytest.raises(SearchError, match="in common"):
        read_scores_wide([a, disjoint])
    with pytest.raises(SearchError, match="does not exist"):
        read_scores_wide([a, tmp_path / "missing"])
    with pytest.raises(SearchError, match=r"lack metric\(s\) \['grasp'\]"):
        load_pool(a, ["snip", "grasp"])


# --------------------------------------------------------------- run_robot_search: typed config, resume
@pytest.fixture
def robot_scores(monkeypatch):  # type: ignore[no-untyped-def]
    """The synthetic pool as the score store's answer, and a lookup oracle per search (``oracles[-1]``)."""
    import raynas.search.runner as runner
    import raynas.search.session as session
    from raynas.search.pool import CandidatePool
    from raynas.testing import FakeOracle, synthetic_pool_table

    table, acc = synthetic_pool_table(60, 0)
    wide = pa.table({**table, "arch": [f"arch{i}" for i in table["arch_index"]]})
    oracles = []

    def load_checked_pool(scores, metrics, transform="none", *, allow_incomplete=False,  # type: ignore[no-untyped-def]
                          optional=()):
        return runner.LoadedPool(CandidatePool.from_table(wide, metrics, transform), wide, {"space": "toy"}, ())

    def make_oracle(name, score_cfg, seed, options=None):  # type: ignore[no-untyped-def]
        oracles.append(FakeOracle(table["arch_index"], acc))
        return oracles[-1]

    monkeypatch.setattr(session, "load_checked_pool", load_checked_pool)
    monkeypatch.setattr(session, "make_oracle", make_oracle)
    return oracles


def test_robot_runner_takes_the_typed_config_saves_it_and_resumes_exactly(tmp_path, robot_scores, monkeypatch):
    import json

    from raynas.errors import OracleError, StoreError
    from raynas.search.runner import RobotSearchConfig, run_robot_search
    from raynas.testing import FakeOracle

    def cfg(out, **kw):  # type: ignore[no-untyped-def]
        return RobotSearchConfig(scores="s", out=str(tmp_path / out), metrics=("good", "bad", "noise"), budget=6,
                                 bo_iters=4, **kw)

    full = run_robot_search(cfg("full"))
    assert full["metrics"] == ["good", "bad", "noise"] and full["queries"] == 6
    saved = json.loads((tmp_path / "full" / "search.json").read_text())
    assert saved["metrics"] == ["good", "bad", "noise"] and saved["budget"] == 6  # the resolved config

    real = FakeOracle.query

    def crash_on_fourth(self, arch_index):  # type: ignore[no-untyped-def]
        if len(self.calls) == 3:
            raise OracleError("node lost")
        return real(self, arch_index)

    monkeypatch.setattr(FakeOracle, "query", crash_on_fourth)
    with pytest.raises(OracleError):
        run_robot_search(cfg("cut"))
    monkeypatch.setattr(FakeOracle, "query", real)
    with pytest.raises(StoreError, match=r"config differs in \['budget'\]"):
        run_robot_search({"scores": "s", "out": str(tmp_path / "cut"), "metrics": "good,bad,noise", "budget": 7,
                          "bo_iters": 4, "resume": True})
    # the CLI's comma string is the same config as the tuple: the resume is accepted
    resumed = run_robot_search({"scores": "s", "out": str(tmp_path / "cut"), "metrics": "good, bad,noise",
                                "budget": 6, "bo_iters": 4, "resume": True})
    assert resumed["trace"] == full["trace"] and resumed["queried"] == full["queried"]
    assert robot_scores[-1].calls == full["queried"][3:]  # only the missing queries were asked again


def test_a_search_dir_written_before_typed_configs_still_resumes(tmp_path):
    """search.json written before the typed configs (metrics as the CLI's comma string, the default oracle
    spelled out) compares equal to today's config once read back through it; a real difference is still named."""
    import json

    from raynas.config import to_dict
    from raynas.errors import StoreError
    from raynas.search.runner import RobotSearchConfig, oracle_name, typed_config_dict
    from raynas.store import prepare_search

    new = RobotSearchConfig(scores="s", out=str(tmp_path), metrics=("snip", "synflow"), oracle="nb201", budget=6)
    old = {**to_dict(new), "metrics": "snip,synflow"}
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / "search.json").write_text(json.dumps(old))
    with pytest.raises(StoreError, match=r"differs in \['metrics'\]"):
        prepare_search(tmp_path, to_dict(new), resume=True)  # compared as stored
    prepare_search(tmp_path, to_dict(new), resume=True, normalise=typed_config_dict(RobotSearchConfig))
    with pytest.raises(StoreError, match=r"differs in \['budget'\]"):
        prepare_search(tmp_path, {**to_dict(new), "budget": 7}, resume=True,
                       normalise=typed_config_dict(RobotSearchConfig))
    # the default oracle is recorded by name: the scored space's benchmark, None where the space has none
    assert oracle_name(None, {"space": "nb201"}) == "nb201" and oracle_name("train", {"space": "x"}) == "train"
    assert oracle_name(None, {"space": "darts_cifar"}) is None


def test_a_search_dir_written_before_tie_break_resumes_with_the_earliest(tmp_path):
    """search.json of the code before ``tie_break`` (no such key) matches today's default config (the earliest
    of the best, what that code did) and not ``--tie-break latest``."""
    import json

    from raynas.config import to_dict
    from raynas.errors import StoreError
    from raynas.search.runner import RobotSearchConfig, typed_config_dict
    from raynas.store import prepare_search

    new = RobotSearchConfig(scores="s", out=str(tmp_path), oracle="nb201", budget=6)
    old = {k: v for k, v in to_dict(new).items() if k != "tie_break"}
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / "search.json").write_text(json.dumps(old))
    norm = typed_config_dict(RobotSearchConfig)
    prepare_search(tmp_path, to_dict(new), resume=True, normalise=norm)
    with pytest.raises(StoreError, match=r"differs in \['tie_break'\]"):
        prepare_search(tmp_path, {**to_dict(new), "tie_break": "latest"}, resume=True, normalise=norm)
