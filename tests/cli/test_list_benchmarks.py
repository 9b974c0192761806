"""``raynas list benchmarks``: one line per registered benchmark with its space, columns and table file."""

from __future__ import annotations

from raynas.cli.main import main
from raynas.spaces import create_benchmark, list_benchmarks


def test_list_benchmarks(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("RAYNAS_DATA", str(tmp_path))
    assert main(["list", "benchmarks"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == list_benchmarks()
    b = create_benchmark("nb201")
    line = lines[list_benchmarks().index("nb201")]
    assert "space=nb201" in line and b.label(b.query_column) in line and str(tmp_path / b.relpath) in line
