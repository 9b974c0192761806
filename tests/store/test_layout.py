"""The store owns the on-disk layout (issue 15): run and search directory paths, and no module outside
``raynas/store/`` spells one of their file names."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import raynas
from raynas.store import ReportDir, RunLayout, SearchDir, find_runs, layout, open_store, search_dir

#: every file name of a run or search directory
FILE_NAMES = {layout.CONFIG_FILE, layout.REPORT_FILE, search_dir.SEARCH_CONFIG, search_dir.STATE_FILE,
              search_dir.RESULT_FILE, search_dir.TRIALS_FILE, search_dir.TENAS_RESULT, search_dir.TENAS_ROUNDS}
#: folder names inside a run or search directory (only flagged where a path is joined with ``/``)
DIR_NAMES = {layout.SCORES_DIR, layout.CORRUPT_DIR, layout.REPORT_DIR, search_dir.TUNE_DIR}


def _literal(node: ast.AST) -> str | None:
    """The text of a string constant, or the literal parts of an f-string joined (``shard-{i}`` -> ``shard-``)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str))
    return None


def layout_spellings(source: str) -> list[tuple[int, str]]:
    """``(line, text)`` of each place ``source`` spells a run/search directory name as a path: a string that is
    exactly a file name, a ``shard-*.parquet`` f-string, or a folder name joined with ``/``. Messages and
    docstrings that merely mention a name are not paths and pass."""
    found = []
    for node in ast.walk(ast.parse(source)):
        text = _literal(node)
        if text is not None and (text in FILE_NAMES or (isinstance(node, ast.JoinedStr) and text.startswith("shard-")
                                                        and text.endswith(".parquet"))):
            found.append((node.lineno, text))
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            right = _literal(node.right)
            if right in DIR_NAMES:
                found.append((node.lineno, right))
    return sorted(found)


def test_the_checker_finds_paths_and_ignores_messages():
    src = ('p = out / "state.parquet"\nq = run / "scores"\nr = d / f"shard-{i:06d}.parquet"\n'
           'cfg = {"scores": 1}\nmsg = "no config.json in RUN"\nname = "result.json"\n')
    assert layout_spellings(src) == [(1, "state.parquet"), (2, "scores"), (3, "shard-.parquet"), (6, "result.json")]


def test_no_module_outside_the_store_spells_a_run_or_search_file_name():
    pkg = Path(raynas.__file__).parent
    offenders = []
    for path in sorted(pkg.rglob("*.py")):
        if path.parent.name == "store" and path.parent.parent == pkg:
            continue
        offenders += [f"{path.relative_to(pkg.parent)}:{line}: {text!r}"
                      for line, text in layout_spellings(path.read_text())]
    assert not offenders, "ask raynas.store (RunLayout, SearchDir, ReportDir) for these paths:\n" + "\n".join(offenders)


def test_run_layout_paths(tmp_path):
    lay = RunLayout(tmp_path)
    assert lay.config_path == tmp_path / "config.json"
    assert lay.shard_path(42) == tmp_path / "scores" / "shard-000042.parquet"
    assert lay.corrupt_dir == tmp_path / "scores" / "corrupt"
    assert lay.export_path("csv") == tmp_path / "scores_wide.csv"
    assert lay.report == ReportDir(tmp_path / "report")
    assert lay.report.markdown == tmp_path / "report" / "report.md"
    assert lay.report.plot("x_trace") == tmp_path / "report" / "x_trace.png"
    assert lay.search("robot") == SearchDir(tmp_path / "robot")
    assert layout.shard_id_of(lay.shard_path(7)) == 7 and layout.shard_id_of(tmp_path / ".shard-000007.tmp") is None


def test_run_exists_and_resumable(tmp_path):
    lay = RunLayout(tmp_path / "run")
    assert not lay.exists() and not lay.resumable()
    store = open_store(lay.run_dir)
    store.save_config({"identity": {"space": "nb201"}})
    assert lay.exists() and lay.resumable() and store.exists()
    scores_only = RunLayout(tmp_path / "other")
    scores_only.scores_dir.mkdir(parents=True)
    assert scores_only.exists() and not scores_only.resumable()


def test_find_runs_covers_the_dir_and_one_level_below(tmp_path):
    RunLayout(tmp_path).scores_dir.mkdir()
    (tmp_path / "report").mkdir()
    robot = SearchDir(tmp_path / "robot").prepare({"method": "robot"}, resume=False)
    assert find_runs(tmp_path) == ([tmp_path], [])  # a search needs its trace too
    robot.save_state([], {"method": "robot"})
    SearchDir(tmp_path / "empty").path.mkdir()
    assert find_runs(tmp_path) == ([tmp_path], [tmp_path / "robot"])


@pytest.mark.parametrize("cls", [RunLayout, SearchDir, ReportDir])
def test_layout_objects_are_frozen(tmp_path, cls):
    import dataclasses

    obj = cls(str(tmp_path))
    assert isinstance(dataclasses.astuple(obj)[0], Path)
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(obj, dataclasses.fields(obj)[0].name, tmp_path)
