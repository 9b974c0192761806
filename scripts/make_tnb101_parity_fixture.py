"""Regenerate the TransNAS-Bench-101 parity fixture from NASLib's zero-cost measures.

For every case of :mod:`raynas.testing.tnb101_parity` (18 networks: 7 tasks x micro / macro, ``C = 8``), runs
NASLib's ``find_measures`` (automl/NASLib ``naslib/predictors/utils/pruners/predictive.py``, one measure per
call, as NAS-Bench-Suite-Zero's ``ZeroCost`` predictor called it) on raynas's network with the fixture's weights
and the task's fixture batch, with the loss NASLib's TransNAS-Bench-101 search spaces give that task
(``get_loss_fn`` of ``naslib/search_spaces/transbench101/graph.py``, executed from its syntax tree:
SoftmaxCrossEntropyWithLogits for class_scene / class_object, L1 for autoencoder / normal, MSE for room_layout,
cross-entropy for jigsaw and segmentsemantic). Nothing of NASLib is copied here: it is loaded from a local
checkout given on the command line and run in a scratch environment outside this repository.

Usage:

    python scripts/make_tnb101_parity_fixture.py --naslib /path/to/NASLib [--out tests/parity/fixture]

Files written: ``tnb101_batches.npz`` (``"images"``, ``"tiles"``, ``"<task>/targets"``: see
:func:`raynas.testing.tnb101_parity.make_batch_arrays`) and ``tnb101_values.json``
(per case: the architecture, the weights' signature, NASLib's values under NASLib's measure names, the
``sum |terms|`` scales of the per-weight measures, the measures NASLib fails on with its error). The weights are
not stored but made by the rule of :func:`raynas.testing.tnb101_parity.fill_weights` (the dense decoders alone
hold 7-19 M weights).

Stubs and shims (none changes what a measure computes):
    * ``naslib``, ``naslib.predictors`` and ``naslib.predictors.utils`` are empty packages pointing at the
      checkout's folders, so that their ``__init__`` (which imports the whole library and its dependencies) does
      not run; ``naslib.predictors.utils.models`` (the NB101/NB201/DARTS model zoo ``p_utils`` star-imports,
      unused) and ``tensorwatch`` (``model_stats``, used only for flops / params) are empty modules.
    * ``SoftmaxCrossEntropyWithLogits`` is loaded from ``naslib/search_spaces/transbench101/loss.py`` as a file.
    * zen calls ``net.forward_before_global_avg_pool``, a method of NASLib's TransNAS-Bench-101 graph: for
      class_scene / class_object / room_layout / jigsaw its ``_forward_before_global_avg_pool`` (executed from
      graph.py's syntax tree, on a wrapper whose ``forward(x, *args)`` ignores the graph's extra argument), for
      segmentsemantic / normal / autoencoder its ``_forward_before_last_conv`` restated for raynas's module names:
      the input of the decoder's last layer (NASLib: ``decoder.model[-1]`` / ``decoder.conv14``; raynas:
      ``decoder[-1]``).
    * ``nwot`` is run twice: as is (``nwot``: its filter hooks every module whose type name contains "ReLU" and
      not "naslib", so raynas's composite ``ReLUConvBN`` is hooked too), and with raynas's ``ReLUConvBN`` class
      given a ``naslib`` module name while it runs (``nwot_naslib_units``): the units NASLib counts on its own
      network, where that class is NASLib's and excluded (each nn.ReLU / nn.LeakyReLU call once).

class_scene / class_object are run with NASLib's ``SoftmaxCrossEntropyWithLogits`` unmodified, ``-sum p
log(softmax(z) + 1e-5)`` (TransNAS-Bench-101's own ``lib/losses/all.py`` has the same formula): raynas's task loss
for them is that loss (``softmax_ce_eps``, :mod:`raynas.tasks`), so no patched loss is needed. (Fixtures made
before that change also held ``values_exact_soft_ce``: the loss-based measures with the exact soft cross-entropy.)
"""

from __future__ import annotations

import argparse
import ast
import importlib
import importlib.util
import json
import math
import subprocess
import sys
import types
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from raynas.testing import tnb101_parity as P  # noqa: E402
from raynas.spaces.tnb101 import model as tnb101_model  # noqa: E402

SEED = 0
#: NASLib's measure names, in the order NAS-Bench-Suite-Zero lists them (``nwot_naslib_units``: see above)
MEASURES = ("grad_norm", "snip", "grasp", "fisher", "jacov", "nwot", "nwot_naslib_units", "synflow", "plain",
            "l2_norm", "zen", "epe_nas")
#: measures NASLib returns as per-weight arrays (find_measures sums them)
PER_WEIGHT = ("grad_norm", "snip", "grasp", "fisher", "synflow", "plain", "l2_norm")
GAP_TASKS = ("class_scene", "class_object", "room_layout", "jigsaw")
#: measures also run in float64 (network and batch), see main()
FLOAT64_MEASURES = ("jacov", "epe_nas")


def load_naslib(checkout: Path) -> tuple[Any, Callable[[str], Any]]:
    """NASLib's ``predictive`` module and a ``task -> loss_fn`` of its TransNAS-Bench-101 ``get_loss_fn``."""
    for name, rel in (("naslib", "naslib"), ("naslib.predictors", "naslib/predictors"),
                      ("naslib.predictors.utils", "naslib/predictors/utils")):
        pkg = types.ModuleType(name)
        pkg.__path__ = [str(checkout / rel)]  # type: ignore[attr-defined]
        sys.modules[name] = pkg
    sys.modules["naslib.predictors.utils.models"] = types.ModuleType("naslib.predictors.utils.models")
    tw = types.ModuleType("tensorwatch")
    tw.ModelStats = None  # type: ignore[attr-defined]
    sys.modules["tensorwatch"] = tw
    predictive = importlib.import_module("naslib.predictors.utils.pruners.predictive")

    spec = importlib.util.spec_from_file_location("naslib_tnb101_loss",
                                                  checkout / "naslib/search_spaces/transbench101/loss.py")
    loss_mod = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(loss_mod)  # type: ignore[union-attr]
    graph = checkout / "naslib/search_spaces/transbench101/graph.py"
    source = graph.read_text()
    defs = [n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.FunctionDef) and n.name == "get_loss_fn"]
    bodies = {ast.dump(n) for n in defs}
    assert len(defs) == 2 and len(bodies) == 1, "micro and macro get_loss_fn should be one function"
    ns: dict[str, Any] = {"torch": torch, "nn": nn, "F": F,
                          "SoftmaxCrossEntropyWithLogits": loss_mod.SoftmaxCrossEntropyWithLogits}
    exec(compile(ast.Module(body=[defs[0]], type_ignores=[]), str(graph), "exec"), ns)  # noqa: S102 - NASLib's code
    gap_defs = [n for n in ast.walk(ast.parse(source))
                if isinstance(n, ast.FunctionDef) and n.name == "_forward_before_global_avg_pool"]
    exec(compile(ast.Module(body=[gap_defs[0]], type_ignores=[]), str(graph), "exec"), ns)  # noqa: S102
    predictive._naslib_gap = ns["_forward_before_global_avg_pool"]
    return predictive, lambda task: ns["get_loss_fn"](types.SimpleNamespace(dataset=task))


class GraphLike(nn.Module):
    """raynas's network as NASLib's graph is called: ``forward(x, *args)`` and ``forward_before_global_avg_pool``."""

    def __init__(self, net: nn.Module, task: str, gap: Callable[..., Any]):
        super().__init__()
        self.net, self.task, self._gap = net, task, gap

    def forward(self, x: torch.Tensor, *_args: Any) -> torch.Tensor:
        return self.net(x)

    def forward_before_global_avg_pool(self, x: torch.Tensor) -> torch.Tensor:
        if self.task in GAP_TASKS:
            return self._gap(self, x)
        # NASLib's _forward_before_last_conv: the input of the decoder's last layer
        outputs: list[torch.Tensor] = []
        self.net.decoder[-1].register_forward_hook(lambda _m, inputs, _o: outputs.append(inputs[0]))
        self.forward(x, None)
        assert len(outputs) == 1
        return outputs[0]


def run_measure(predictive: Any, case: str, measure: str, inputs: torch.Tensor, targets: torch.Tensor,
                loss_fn: Callable[..., Any], n_classes: int,
                float64: bool = False) -> tuple[float | None, float | None]:
    """NASLib's ``find_measures`` of one measure on a fresh copy of the case's network: (value, sum |terms|);
    ``float64``: network and inputs in float64."""
    task = P.CASES[case][2]
    net = GraphLike(P.case_network(case), task, predictive._naslib_gap)
    if float64:
        net, inputs = net.double(), inputs.double()
    loader = [(inputs.clone(), targets.clone())]
    name = "nwot" if measure == "nwot_naslib_units" else measure
    module = tnb101_model.ReLUConvBN.__module__
    if measure == "nwot_naslib_units":  # the class NASLib's own network has is a naslib class: not hooked
        tnb101_model.ReLUConvBN.__module__ = "naslib.search_spaces.transbench101.tnb101.models.net_ops.cell_ops"
    try:
        torch.manual_seed(SEED)
        arrays = predictive.find_measures_arrays(net, loader, ("random", 1, n_classes), torch.device("cpu"),
                                                 measure_names=[name], loss_fn=loss_fn)
        value = predictive.find_measures(net, loader, ("random", 1, n_classes), torch.device("cpu"), loss_fn,
                                         measure_names=[name], measures_arr=arrays)
    finally:
        tnb101_model.ReLUConvBN.__module__ = module
    scale = None
    if measure in PER_WEIGHT:
        scale = float(sum(float(torch.sum(torch.abs(a.double()))) for a in arrays[name]))
    value = float(value)
    return (value if math.isfinite(value) else None), scale


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--naslib", type=Path, required=True, help="checkout of automl/NASLib")
    p.add_argument("--out", type=Path, default=REPO / "tests" / "parity" / "fixture")
    p.add_argument("--cases", nargs="*", default=None, help="only these cases (default: all)")
    args = p.parse_args(argv)

    torch.set_num_threads(1)
    predictive, naslib_loss = load_naslib(args.naslib)
    arrays = P.make_batch_arrays()
    try:
        commit = subprocess.run(["git", "-C", str(args.naslib), "rev-parse", "HEAD"], capture_output=True,
                                text=True, check=True).stdout.strip()
    except (subprocess.CalledProcessError, FileNotFoundError):
        commit = (args.naslib / "COMMIT").read_text().strip() if (args.naslib / "COMMIT").exists() else "unknown"
    cases: dict[str, Any] = {}
    for case, (space, arch, task) in P.CASES.items():
        if args.cases and case not in args.cases:
            continue
        b = P.fixture_batch(arrays, task)  # the stored arrays in the task's dtypes, as the test reads them
        inputs, targets = b.inputs, b.targets
        n_classes = P.TASKS[task].num_classes or -1
        params, abs_sum = P.weights_signature(P.case_network(case))
        entry: dict[str, Any] = {"space": space, "arch": arch, "task": task, "params": params, "abs_sum": abs_sum,
                                 "values": {}, "scales": {}, "errors": {}}
        for m in MEASURES:
            try:
                value, scale = run_measure(predictive, case, m, inputs, targets, naslib_loss(task), n_classes)
            except Exception as exc:  # noqa: BLE001 - NASLib failing on a case is recorded, not fatal
                entry["errors"][m] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
                value, scale = None, None
            entry["values"][m] = value
            if scale is not None:
                entry["scales"][m] = scale
        # jacov and epe_nas read correlations of input Jacobians near 0 (log(|c| + 1e-5), 1 / (v + 1e-5)): float32
        # does not resolve them on these networks, so their definitions are also compared in float64
        entry["values_float64"] = {}
        for m in FLOAT64_MEASURES:
            try:
                entry["values_float64"][m] = run_measure(predictive, case, m, inputs, targets, naslib_loss(task),
                                                         n_classes, float64=True)[0]
            except Exception as exc:  # noqa: BLE001 - recorded as in float32
                entry["errors"][m + "_float64"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
        cases[case] = entry
        sys.stderr.write(f"{case}: {entry['values']} errors={entry['errors']}\n")

    args.out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out / "tnb101_batches.npz", **arrays)
    meta = {
        "reference": f"automl/NASLib@{commit}: naslib/predictors/utils/pruners/predictive.py (find_measures), "
                     "measures/*.py; losses: naslib/search_spaces/transbench101/graph.py (get_loss_fn), loss.py",
        "torch": torch.__version__,
        "numpy": np.__version__,
        "sizes": {"C": P.C, "batch": P.BATCH, "image": P.IMAGE, "tile": P.TILE},
        "seed": SEED,
        "cases": cases,
    }
    (args.out / "tnb101_values.json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
