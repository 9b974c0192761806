"""Issue 13: closed stdout (defect 11), `list oracles` (11), `show` counting NaN-valued ok rows as nan (9),
and `raynas export` (15)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

from raynas.cli.main import main
from raynas.store import results_to_table
from raynas.testing import metric_results, planned_score_run

REPO = Path(__file__).resolve().parents[2]


def make_run(tmp_path: Path, ids=(0, 1, 2, 3), shard_size: int = 2) -> Path:
    return planned_score_run(tmp_path / "run", ids, lambda a: {"params": 10.0 * a, "snip": a + 0.5},
                             shard_size=shard_size, data="d")


# --- closed stdout ------------------------------------------------------------------------------------------


def run_into_closed_pipe(*args: str) -> subprocess.CompletedProcess:
    """Run the CLI with stdout a pipe whose reading end is already closed (what `| head` leaves behind)."""
    r, w = os.pipe()
    os.close(r)
    try:
        return subprocess.run([sys.executable, "-m", "raynas.cli.main", *args], stdout=w, stderr=subprocess.PIPE,
                              cwd=REPO, timeout=300, text=True)
    finally:
        os.close(w)


@pytest.mark.parametrize("cmd", [["list", "metrics"], ["--help"], ["show", "RUN"]])
def test_closed_stdout_exits_0_quietly(tmp_path, cmd):
    cmd = [str(make_run(tmp_path)) if c == "RUN" else c for c in cmd]
    p = run_into_closed_pipe(*cmd)
    assert p.returncode == 0, p.stderr
    assert p.stderr == ""


def test_broken_pipe_not_from_stdout_is_still_a_failure(monkeypatch, capsys):
    import raynas.api

    def boom(what):  # type: ignore[no-untyped-def]
        raise BrokenPipeError(32, "Broken pipe (a worker's socket)")

    monkeypatch.setattr(raynas.api, "describe_registry", boom)
    assert main(["list", "metrics"]) == 1
    assert "BrokenPipeError" in capsys.readouterr().err


# --- list oracles -------------------------------------------------------------------------------------------


def test_list_oracles_names_what_the_cli_accepts(capsys):
    from raynas.errors import OracleError
    from raynas.search.runner import make_oracle
    from raynas.spaces import create_benchmark, create_space, list_benchmarks

    assert main(["list", "oracles"]) == 0
    lines = capsys.readouterr().out.splitlines()
    names = [line.split()[0] for line in lines]
    assert names == sorted([*list_benchmarks(), "train"]) and {"nb101", "nb201", "train"} <= set(names)
    assert all(len(line.split()) > 1 for line in lines)  # each with a description
    for name in names:  # every listed name is one `--oracle NAME` accepts (for its benchmark's space)
        space = create_benchmark(name).space if name in list_benchmarks() else "nb201"
        cfg: dict = {"space": space}
        if name in list_benchmarks() and create_benchmark(name).default_dataset in create_space(space).task_names():
            cfg["space_kwargs"] = {"task": create_benchmark(name).default_dataset}  # a per-task table: its task's run
        try:
            make_oracle(name, cfg, 0)
        except OracleError:  # a benchmark table may be absent on this machine; the name itself was accepted
            assert name in list_benchmarks()
    with pytest.raises(TypeError):  # "callable" wraps a Python function: no command line can name one
        make_oracle("callable", {"space": "nb201"}, 0)


# --- show and NaN values stored as ok -----------------------------------------------------------------------


def test_show_counts_nonfinite_ok_rows_as_nan(tmp_path, capsys):
    run = make_run(tmp_path, ids=(0, 1), shard_size=2)
    bad = results_to_table("nb201", 0, "arch0", 0, "d", metric_results({"params": 1.0, "snip": float("nan")}), "h")
    bad = pa.concat_tables([bad, results_to_table("nb201", 1, "arch1", 0, "d",
                                                  metric_results({"params": float("inf"), "snip": 2.0}), "h")])
    pq.write_table(bad, run / "scores" / "shard-000000.parquet")  # as a buggy writer left it
    assert main(["show", str(run)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    head = next(i for i, line in enumerate(lines) if line.strip().startswith("status"))
    cols = lines[head].split()[1:]
    table = {ln.split()[0]: dict(zip(cols, map(int, ln.split()[1:]))) for ln in lines[head + 2:head + 4]}
    assert table == {"params": {"nan": 1, "ok": 1}, "snip": {"nan": 1, "ok": 1}}
    assert "failed rows: 2" in out


# --- export -------------------------------------------------------------------------------------------------


def test_export_csv_and_parquet(tmp_path, capsys):
    run = make_run(tmp_path)
    out_csv = tmp_path / "x" / "wide.csv"
    assert main(["export", str(run), "--format", "csv", "--out", str(out_csv)]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == str(out_csv)
    t = pcsv.read_csv(out_csv)
    assert t.column_names == ["space", "arch_index", "arch", "seed", "params", "snip"]
    assert t.column("arch_index").to_pylist() == [0, 1, 2, 3]
    assert t.column("params").to_pylist() == [0.0, 10.0, 20.0, 30.0]
    assert t.column("snip").to_pylist() == [0.5, 1.5, 2.5, 3.5]
    assert t.column("arch").to_pylist() == ["arch0", "arch1", "arch2", "arch3"]

    assert main(["export", str(run), "--format", "parquet"]) == 0
    default = Path(capsys.readouterr().out.strip().splitlines()[-1])
    assert default.parent == run and default.suffix == ".parquet"
    p = pq.read_table(default)
    assert p.column_names == t.column_names and p.column("snip").to_pylist() == [0.5, 1.5, 2.5, 3.5]
    assert p.schema.field("arch_index").type == pa.int64() and p.schema.field("params").type == pa.float64()
    # the format follows --out's suffix when --format is not given
    assert main(["export", str(run), "--out", str(tmp_path / "w.parquet")]) == 0
    assert pq.read_table(tmp_path / "w.parquet").equals(p)


def test_export_is_atomic(tmp_path, monkeypatch, capsys):
    run = make_run(tmp_path)
    dest = tmp_path / "wide.csv"
    dest.write_text("old content\n")

    def crash(src, dst):  # type: ignore[no-untyped-def]
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", crash)
    rc = main(["export", str(run), "--out", str(dest)])
    monkeypatch.undo()
    err = capsys.readouterr().err
    assert rc == 2 and "No space left" in err and err.count("\n") == 1
    assert dest.read_text() == "old content\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run", "wide.csv"]  # no temp file left


def test_export_errors_exit_2(tmp_path, capsys):
    assert main(["export", str(tmp_path / "nope"), "--format", "csv"]) == 2
    assert "not a score run" in capsys.readouterr().err
    run = make_run(tmp_path)
    assert main(["export", str(run), "--out", str(tmp_path / "w.txt")]) == 2
    assert "--format" in capsys.readouterr().err
    with pytest.raises(SystemExit) as ei:
        main(["export", str(run), "--format", "xlsx"])
    assert ei.value.code == 2


def test_export_warns_about_incomplete_run(tmp_path, capsys, caplog):
    run = make_run(tmp_path)
    (run / "scores" / "shard-000001.parquet").unlink()
    assert main(["export", str(run), "--out", str(tmp_path / "w.csv")]) == 0
    assert pcsv.read_csv(tmp_path / "w.csv").num_rows == 2
    assert "1 of 2 planned shards missing" in caplog.text


def test_show_states_completeness(tmp_path, capsys):
    run = make_run(tmp_path, ids=(0, 1, 2, 3, 4, 5), shard_size=2)
    (run / "scores" / "shard-000001.parquet").write_bytes(b"garbage")
    (run / "scores" / "shard-000002.parquet").unlink()
    assert main(["show", str(run)]) == 0
    out = capsys.readouterr().out
    assert "shards: 1 done, 1 missing, 1 corrupt" in out
    assert "archs 2 of 6 planned" in out and "corrupt shard shard-000001.parquet" in out
    assert "1 of 3 planned shards missing (2)" in out and "archs scored: 2" in out
