"""Adding a space touches nothing outside its own module: a space and its benchmark defined in a plugin module
(here written by the test) are scored, searched with the default (benchmark table) oracle and reported through
the registries alone. Runs in a subprocess so the plugin's registrations do not leak into other tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

PLUGIN = '''
"""A toy space of 8 archs (conv widths 1..8) and its tabular benchmark, registered as a user would."""
import torch.nn as nn

from raynas.spaces import SPACES
from raynas.spaces.base import SearchSpace
from raynas.spaces.benchmarks import Benchmark, register_benchmark


class WidthSpace(SearchSpace):
    name = "width8"
    size = 8

    def index_to_arch(self, index):
        return int(index)

    def arch_to_index(self, arch):
        return int(arch)

    def parse(self, text):
        return int(text.removeprefix("w"))

    def format(self, arch):
        return f"w{int(arch) + 1}"

    def to_module(self, arch, num_classes, **kwargs):
        w = int(arch) + 1
        return nn.Sequential(nn.Conv2d(3, w, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                             nn.Linear(w, num_classes))


SPACES.add("width8", lambda **kw: WidthSpace())
register_benchmark(Benchmark(name="width8_table", space="width8", title="W8", relpath="width8/table.parquet",
                             query_column="valid", cost_column="seconds", finals={"toy": "test"},
                             default_dataset="toy"))
'''

DRIVER = '''
import json, sys
import pyarrow as pa, pyarrow.parquet as pq
import toy_space_plugin  # noqa: F401 - registers the space and its benchmark
import raynas
from raynas.report import write_report

root = sys.argv[1]
(__import__("pathlib").Path(root) / "data" / "width8").mkdir(parents=True)
# the benchmark's table: wider is better, in the benchmark's own column names
pq.write_table(pa.table({"arch_index": list(range(8)), "valid": [50.0 + i for i in range(8)],
                         "seconds": [10.0] * 8, "test": [60.0 + i for i in range(8)]}),
               f"{root}/data/width8/table.parquet")
scored = raynas.score(f"{root}/run", space="width8", metrics="params,snip", all=True, workers=0, batch_size=8,
                      image_size=8)
found = raynas.search("robot", f"{root}/run/robot", scores=f"{root}/run", budget=3, metrics="params,snip",
                      bo_iters=1)
report = [str(p) for p in write_report(f"{root}/run")]
print(json.dumps({"scored": scored.get("outcome"), "arch": found["arch"], "oracle": json.load(
    open(f"{root}/run/robot/search.json"))["oracle"], "benchmark": found["benchmark"], "report": report}))
'''


def test_a_plugin_space_with_a_benchmark_scores_searches_and_reports(tmp_path):
    (tmp_path / "toy_space_plugin.py").write_text(textwrap.dedent(PLUGIN))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]),
           "RAYNAS_DATA": str(tmp_path / "data")}
    proc = subprocess.run([sys.executable, "-c", DRIVER, str(tmp_path)], env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["oracle"] == "width8_table"  # the default oracle is the scored space's benchmark, recorded by name
    assert out["benchmark"]["line"].startswith("W8 index ")  # the answer read through the benchmark
    assert out["benchmark"]["rank"] >= 1 and out["arch"].startswith("w")
    md = open(out["report"][0]).read()
    assert "space `width8`" in md and "complete: archs 8 of 8 planned" in md
    assert "| params | 8 | 1.000 | 1.000 |" in md  # correlated with the benchmark's final column: wider is better
    assert "**Result**: arch 7 `w8`" in md  # RoBoT's answer queried through the benchmark table
