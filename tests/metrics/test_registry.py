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
    "names = resolve_metric_names('all,diagnostic')\n"
    "assert [get_metric(n).name for n in names] == names\n"
    "names = sorted(names)\n"
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


def test_all_is_each_reference_definition_once_and_diagnostic_twins_are_opt_in() -> None:
    from raynas.errors import ConfigError, UnknownNameError
    from raynas.metrics import get_metric, register_metric, resolve_metric_names
    from raynas.metrics.registry import GROUPS, group_members

    every = list_metrics()
    twins = group_members("diagnostic")
    assert set(twins) == {n for n in every if get_metric(n).variant_of}
    # the four raynas-only twins known today, each of a registered metric that is itself in ``all``
    assert {"ntk_cond_jacobian", "ntk_trace_jacobian", "vkdnw_f32", "linear_regions_gaussian"} <= set(twins)
    assert all(get_metric(n).variant_of in resolve_metric_names("all") for n in twins)
    assert resolve_metric_names("all") == [n for n in every if n not in twins]
    assert sorted(resolve_metric_names("all,diagnostic")) == every
    # a twin by name, a group after a name: order kept, duplicates dropped
    assert resolve_metric_names(["vkdnw_f32", "diagnostic"]) == ["vkdnw_f32", *[t for t in twins if t != "vkdnw_f32"]]
    with pytest.raises(UnknownNameError, match="did you mean 'diagnostic'"):
        resolve_metric_names("diagnostc")
    with pytest.raises(ConfigError, match="group"):
        register_metric(next(iter(GROUPS)))(lambda model, batch: 0.0)


def test_list_metrics_shows_each_metrics_group(capsys: pytest.CaptureFixture[str]) -> None:
    from raynas.cli.main import main
    from raynas.metrics import get_metric

    assert main(["list", "metrics"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("groups: all: ") and "diagnostic: " in lines[0]
    assert lines[1].startswith("cost: seconds per nb201 arch at ")
    rows = {line.split()[0]: line.split()[1:5] for line in lines[2:]}
    assert sorted(rows) == list_metrics()
    for name, (group, *rest) in rows.items():
        twin = get_metric(name).variant_of
        assert group == ("diagnostic" if twin else "all"), name
        if twin:
            assert rest[:3] == ["(twin", "of", f"{twin})"], (name, rest)
    # the measured seconds per NB201 arch of a metric the cost table knows
    from raynas.spaces.costs import metric_costs

    nb201 = metric_costs("nb201")
    assert nb201 is not None
    assert f"nb201 {nb201.seconds['vkdnw_f32']:.3g} s" in next(line for line in lines if line.startswith("vkdnw_f32 "))
