"""Issue 13, defect 7: searching an incomplete score run needs ``--allow-incomplete``; results state the pool.

A run here is planned by a real scoring config (8 NB201 archs, shards of 2) and its shards are written by hand,
so each test damages exactly one thing: the config, a shard's bytes, a shard file, or a shard's rows.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from raynas.cli.main import main
from raynas.errors import RaynasError, SearchError
from raynas.search.runner import load_pool, run_robot_search
from raynas.store import ScoreStore
from raynas.testing import planned_score_run

IDS = tuple(range(8))
FAST = {"metrics": "params,snip", "budget": 3, "seed": 0}


def make_run(tmp_path: Path, failed: dict[int, str] | None = None) -> Path:
    """A complete run of IDS in 4 shards; ``failed[arch] = status`` stores that arch's snip row as failed."""
    failed = failed or {}
    return planned_score_run(tmp_path / "run", IDS, lambda a: {"params": 10.0 * a + 1.0, "snip": (a * 37) % 11 + 0.5},
                             status=lambda a: {"snip": failed[a]} if a in failed else None)


def robot_args(run: Path, out: Path, *extra: str) -> list[str]:
    return ["search", "robot", "--scores", str(run), "--metrics", FAST["metrics"], "--budget", str(FAST["budget"]),
            "--out", str(out), "--no-progress", *extra]


def corrupt(run: Path, *shards: int) -> list[str]:
    names = []
    for sid in shards:
        p = ScoreStore(run).shard_path(sid)
        p.write_bytes(b"not a parquet file")
        names.append(p.name)
    return names


def test_missing_config_and_corrupt_shards_are_refused_naming_them(tmp_path, capsys):
    run = make_run(tmp_path)
    (run / "config.json").unlink()
    names = corrupt(run, 1, 2)
    out = tmp_path / "search"
    with pytest.raises(SearchError) as e:
        run_robot_search({"scores": str(run), "out": str(out), **FAST})
    from raynas.search.runner import IncompleteRunError

    assert isinstance(e.value, IncompleteRunError) and isinstance(e.value, RaynasError)  # typed: the CLI exits 2
    msg = str(e.value)
    assert "config.json missing" in msg and all(n in msg for n in names) and "--allow-incomplete" in msg
    assert "the 4 archs that were read" in msg
    assert not out.exists()  # nothing written for a refused search
    rc = main(robot_args(run, out))
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and all(n in err for n in names) and "config.json missing" in err


@pytest.mark.parametrize("damage, expect", [
    (lambda run: ScoreStore(run).shard_path(3).unlink(), "1 of 4 planned shards missing (3)"),
    (lambda run: corrupt(run, 0), "corrupt shard shard-000000.parquet"),
    (lambda run: (run / "config.json").write_text("{oops"), "config unusable"),
])
def test_each_kind_of_damage_is_refused(tmp_path, damage, expect):
    run = make_run(tmp_path)
    damage(run)
    with pytest.raises(SearchError, match="incomplete score run") as e:
        load_pool(str(run), ["params", "snip"])
    assert expect in str(e.value)


def test_failed_shard_is_refused(tmp_path):
    run = make_run(tmp_path, failed={5: "error"})
    with pytest.raises(SearchError, match=r"failed rows \(error/oom\) in shard 2"):
        run_robot_search({"scores": str(run), "out": str(tmp_path / "s"), **FAST})


def test_allow_incomplete_searches_and_the_result_states_the_pool(tmp_path, capsys, nb201_table_path):
    run = make_run(tmp_path)
    (run / "config.json").unlink()
    names = corrupt(run, 1, 2)
    out = tmp_path / "search"
    rc = main(robot_args(run, out, "--allow-incomplete"))
    stdout = capsys.readouterr().out
    assert rc == 0
    result = json.loads((out / "result.json").read_text())
    pool = result["pool"]
    assert pool["size"] == 4 and pool["complete"] is False
    (r,) = pool["runs"]
    assert r["corrupt_shards"] == names and r["config_present"] is False and not r["complete"]
    assert any("config.json missing" in p for p in r["problems"])
    assert result["space"] == "nb201"  # taken from the rows: there is no config to say it
    assert "pool: 4 archs searched, INCOMPLETE score run" in stdout
    assert all(n in stdout for n in names) and "config.json missing" in stdout


def test_complete_run_is_searched_and_says_so(tmp_path, capsys, nb201_table_path):
    run = make_run(tmp_path)
    out = tmp_path / "search"
    assert main(robot_args(run, out)) == 0
    stdout = capsys.readouterr().out
    result = json.loads((out / "result.json").read_text())
    assert result["pool"]["size"] == 8 and result["pool"]["complete"] is True
    assert result["pool"]["runs"][0]["problems"] == []
    assert "pool: 8 archs searched, complete score run" in stdout
    # the flag is no part of the search's identity: a resume may add or drop it
    assert main(robot_args(run, out, "--resume", "--allow-incomplete")) == 0


def test_one_incomplete_run_of_a_join_is_named(tmp_path):
    a = make_run(tmp_path / "a")
    b = make_run(tmp_path / "b")
    ScoreStore(b).shard_path(0).unlink()
    with pytest.raises(SearchError) as e:
        load_pool(f"{a}:{b}", ["params", "snip"])
    assert str(b) in str(e.value) and f"{a}:" not in str(e.value)


def make_ntk_run(tmp_path: Path) -> Path:
    """A complete HNAS-ready run of IDS (ntk_trace, ntk_cond) in 4 shards."""
    return planned_score_run(tmp_path / "ntk_run", IDS,
                             lambda a: {"ntk_trace": 1.0 + (a * 7) % 5, "ntk_cond": 10.0 + a})


def test_hnas_refuses_an_incomplete_run_unless_allowed_and_states_pool_and_answer(tmp_path, nb201_table_path):
    from raynas.search.hnas_run import run_hnas_search
    from raynas.search.runner import IncompleteRunError

    run = make_ntk_run(tmp_path)
    names = corrupt(run, 2)
    cfg = {"scores": str(run), "out": str(tmp_path / "hnas"), "budget": 3, "seed": 0}
    with pytest.raises(IncompleteRunError, match=names[0]):
        run_hnas_search(cfg)
    assert not (tmp_path / "hnas").exists()
    result = run_hnas_search({**cfg, "allow_incomplete": True})
    assert result["pool"]["size"] == 6 and result["pool"]["complete"] is False
    assert result["space"] == "nb201" and result["benchmark"]["line"].startswith(f"NB201 index {result['arch_index']}:")
    rc = main(["search", "hnas", "--scores", str(run), "--budget", "3", "--out", str(tmp_path / "h2"), "--no-progress",
               "--allow-incomplete"])
    assert rc == 0
