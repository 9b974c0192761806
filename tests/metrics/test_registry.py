"""The metric registry sees every built-in metric whichever ``raynas.metrics`` module a process imports first.

The registry does not import its own package (that was an import cycle): it relies on Python running
``raynas/metrics/__init__.py``, which imports every metric module, before any submodule. A fresh interpreter
per entry point checks that, since in this process the package is long imported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from raynas.metrics import list_metrics

REPO = Path(__file__).resolve().parents[2]
PROBE = (
    "import importlib, json, sys\n"
    "importlib.import_module(sys.argv[1])\n"
    "from raynas.metrics.registry import METRICS, get_metric, list_metrics, resolve_metric_names\n"
    "names = resolve_metric_names('all')\n"
    "assert [get_metric(n).name for n in names] == names\n"
    "print(json.dumps({'all': names, 'listed': list_metrics(), 'stored': METRICS.names()}))\n"
)


@pytest.mark.parametrize("first", ["raynas.metrics.registry", "raynas.metrics.engine", "raynas.metrics._ntk"])
def test_every_builtin_metric_is_registered_whichever_module_comes_first(first: str) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", PROBE, first], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    want = list_metrics()
    assert len(want) > 20  # every built-in module registered here too (guards against comparing two empty lists)
    assert got == {"all": want, "listed": want, "stored": want}
