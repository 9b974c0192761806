"""The documented Python API (issue 13, defect 14): raynas.score / search / score_models / read_scores /
export_scores, and the README's example, executed as written so it cannot drift."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest
import torch
import torch.nn as nn

import raynas
from raynas.errors import ConfigError, StoreError

REPO = Path(__file__).resolve().parents[1]


def readme_python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(), flags=re.S)


def test_readme_python_example_runs(tmp_path):
    blocks = readme_python_blocks()
    assert len(blocks) == 1, "the README holds exactly one runnable python example"
    script = tmp_path / "example.py"
    script.write_text(blocks[0])
    p = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    out = p.stdout
    assert "scored 6 archs" in out
    # ScoreStore(run) alone reads the plan the run stored with its config (issue 29 item 7: it said INCOMPLETE)
    assert "complete: archs 6 of 6 planned have stored rows" in out and "INCOMPLETE" not in out
    assert re.search(r"robot chose arch \d+", out)
    assert re.search(r"my_cnn +params=\d+", out)
    assert (tmp_path / "runs" / "api_demo" / "scores").is_dir()
    assert (tmp_path / "runs" / "api_demo_wide.csv").is_file()


def test_score_and_read_scores(tmp_path):
    out = tmp_path / "run"
    summary = raynas.score(out, metrics=["params"], ids=[0, 6111], data="noise", batch_size=4,
                           space_kwargs={"C": 4, "N": 1}, workers=0)
    assert summary["scored"] == 2 and summary["error_rows"] == 0
    wide = raynas.read_scores(out)
    assert wide.column_names == ["space", "arch_index", "arch", "seed", "params"]
    assert wide.column("arch_index").to_pylist() == [0, 6111]
    with pytest.raises(StoreError, match="already holds a scoring run"):
        raynas.score(out, metrics=["params"], ids=[0], workers=0)
    with pytest.raises(ConfigError, match="choose exactly one"):
        raynas.score(tmp_path / "r2", metrics=["params"], workers=0)
    path = raynas.export_scores(out, "parquet", tmp_path / "w.parquet")
    assert path == tmp_path / "w.parquet"


def test_search_is_callable_and_still_the_package(tmp_path):
    import raynas.search.runner as runner  # the subpackage still imports as before

    assert callable(raynas.search) and raynas.search.runner is runner
    from raynas.search import CandidatePool  # noqa: F401

    with pytest.raises(ConfigError, match="unknown search method 'robto'"):
        raynas.search("robto", out=str(tmp_path / "s"))
    with pytest.raises(ConfigError):  # options are checked strictly by the method's config
        raynas.search("robot", scores=str(tmp_path), out=str(tmp_path / "s"), no_such_option=1)


def _tiny_cnn() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(4, 10))


def test_score_models_modules_and_factories():
    nets = {"a": _tiny_cnn(), "b": _tiny_cnn}
    table = raynas.score_models(nets, metrics=["params", "grad_norm"], data="noise", batch_size=4)
    assert isinstance(table, pa.Table) and table.num_rows == 4
    rows = table.to_pylist()
    assert [(r["arch"], r["metric"]) for r in rows] == [("a", "params"), ("a", "grad_norm"),
                                                         ("b", "params"), ("b", "grad_norm")]
    n_params = sum(p.numel() for p in _tiny_cnn().parameters())
    assert all(r["status"] == "ok" for r in rows)
    assert rows[0]["value"] == n_params and rows[2]["value"] == n_params
    assert [r["arch_index"] for r in rows] == [0, 0, 1, 1] and rows[0]["space"] == "custom"
    # a plain list is named by position; the scored module itself is left untouched
    m = _tiny_cnn()
    before = [p.detach().clone() for p in m.parameters()]
    t = raynas.score_models([m], metrics=["synflow"], data="noise", batch_size=4)
    assert t.column("arch").to_pylist() == ["0"]
    assert all(torch.equal(a, b) for a, b in zip(before, m.parameters()))
    with pytest.raises(ConfigError, match="nn.Module or a callable"):
        raynas.score_models([42], metrics=["params"])
