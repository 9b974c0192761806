"""The README's two set-up commands: what `.ci/run` runs is what the README says, and both install the tested
versions (constraints.txt) and work in a new shell."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _bash_block_after(heading: str) -> str:
    text = (REPO / "README.md").read_text()
    start = text.index(heading)
    return re.search(r"```bash\n(.*?)\n```", text[start:], flags=re.S).group(1)  # type: ignore[union-attr]


def test_command_1_installs_the_constraints_and_command_2_activates_its_venv() -> None:
    install = _bash_block_after("**1. Install and run the main job**")
    assert "pip install torch==2.13.0 && pip install -c constraints.txt -e" in install
    test = _bash_block_after("**2. Run the tests**")
    assert test.startswith(". .venv/bin/activate && ") and "python -m pytest" in test


def test_ci_runs_the_readme_test_command_exactly() -> None:
    script = (REPO / ".ci" / "run").read_text()
    # .ci/run extracts the command with this pipeline; run the same extraction here
    line = next(ln for ln in script.splitlines() if ln.startswith("test_cmd="))
    pipeline = line[len("test_cmd=$("):-1]
    got = subprocess.run(["bash", "-c", pipeline], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert got.strip() == _bash_block_after("**2. Run the tests**")
    assert "pip install -q -c constraints.txt -e" in script


def test_constraints_pin_every_installed_requirement_with_a_python_marker() -> None:
    lines = [ln for ln in (REPO / "constraints.txt").read_text().splitlines() if ln and not ln.startswith("#")]
    names = {ln.split("==")[0].lower() for ln in lines}
    for req in ("torch", "ray", "botorch", "gpytorch", "numpy", "scipy", "pyarrow", "pytest", "import-linter"):
        assert req in names, req
    assert all(re.fullmatch(r'[A-Za-z0-9_.\-]+==[^;+ ]+; python_version == "3\.\d+"', ln) for ln in lines), lines
