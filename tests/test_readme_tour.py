"""The README's tour (score -> show -> search -> report -> export) executed command by command, as written but for
a smaller sample (3 archs instead of 20, to keep the suite short), so the documented commands cannot drift."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def tour_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    block = re.search(r"## A ten-line tour.*?```bash\n(.*?)\n```", text, flags=re.S)
    assert block, "the README has no tour block"
    lines = [ln.split("  #")[0].strip() for ln in block.group(1).splitlines()]
    return [ln for ln in lines if ln and not ln.startswith("#")]


@pytest.mark.slow
def test_the_readme_tour_runs(tmp_path, nb201_table_path):  # noqa: ARG001 - --oracle nb201 reads the table
    cmds = tour_commands()
    assert [c.split()[1] for c in cmds] == ["score", "show", "search", "search", "report", "export"]
    raynas = str(Path(sys.executable).with_name("raynas"))
    env = {**os.environ, "RAYNAS_DATA": str(nb201_table_path.parents[1])}
    for cmd in cmds:
        argv = shlex.split(cmd.replace("--sample 20", "--sample 3"))
        p = subprocess.run([raynas, *argv[1:]], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
        assert p.returncode == 0, (cmd, p.stderr[-2000:])
    assert (tmp_path / "runs" / "tour_robot" / "result.json").is_file()
    assert (tmp_path / "runs" / "tour_zs" / "result.json").is_file()
    assert (tmp_path / "runs" / "tour" / "report" / "report.md").is_file()
    assert len((tmp_path / "runs" / "tour" / "scores_wide.csv").read_text().splitlines()) == 4  # header + 3 archs
