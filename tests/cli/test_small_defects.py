"""Issue 29 item 9: the smaller new-user defects, each through the CLI or the call the CLI makes."""

from __future__ import annotations

import pytest

from raynas.cli.main import main
from raynas.errors import UnknownNameError
from raynas.oracles import create_oracle
from raynas.spaces import create_benchmark


def test_show_of_a_missing_path_says_it_does_not_exist(tmp_path, capsys):
    assert main(["show", str(tmp_path / "nope")]) == 2
    assert f"{tmp_path / 'nope'} does not exist" in capsys.readouterr().err
    (tmp_path / "file").write_text("x")
    assert main(["show", str(tmp_path / "file")]) == 2
    assert "is not a directory" in capsys.readouterr().err


def test_export_refuses_a_format_that_contradicts_the_file_name(tmp_path, capsys):
    out = tmp_path / "x.parquet"
    assert main(["export", str(tmp_path), "--format", "csv", "--out", str(out)]) == 2
    assert "--format csv contradicts --out" in capsys.readouterr().err and not out.exists()


def test_an_unknown_oracle_lists_the_names_oracle_accepts():
    with pytest.raises(UnknownNameError) as e:
        create_oracle("trian")
    assert "'train'" in str(e.value) and "callable" not in str(e.value)  # callable wraps a Python function


def test_list_benchmarks_says_whether_each_table_is_there_and_how_to_make_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RAYNAS_DATA", str(tmp_path))  # an empty data folder: no table present
    assert main(["list", "benchmarks"]) == 0
    lines = {ln.split()[0]: ln for ln in capsys.readouterr().out.splitlines()}
    assert "(absent: make it from the official nasbench_only108.tfrecord" in lines["nb101"]
    assert "convert_nb101(" in lines["nb101"]
    assert f"(absent: set RAYNAS_DATA to a folder that holds {create_benchmark('nb201').relpath})" in lines["nb201"]
    (tmp_path / "nb201").mkdir()
    (tmp_path / create_benchmark("nb201").relpath).write_bytes(b"")
    assert main(["list", "benchmarks"]) == 0
    assert "(present)" in [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("nb201")][0]


def test_a_missing_table_error_names_how_to_make_it(tmp_path, monkeypatch):
    monkeypatch.setenv("RAYNAS_DATA", str(tmp_path))
    with pytest.raises(Exception, match="convert_nb101"):
        create_oracle("nb101").query(0)


def test_rank_sum_names_its_default_metrics(capsys):
    from raynas.search.zero_shot import get_rule

    with pytest.raises(SystemExit):
        main(["search", "zero-shot", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "az and rank_sum: the four az_nas_* terms" in help_text
    assert "default metrics: AZ-NAS's four terms" in get_rule("rank_sum").doc
