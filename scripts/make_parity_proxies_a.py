"""Reference values of AZ-NAS's terms, ZiCo and MeCo on the parity fixture (``values_proxies_a.json``).

Runs the authors' code on the fixture's networks (``tests/parity/fixture/weights.npz``: built by
:func:`raynas.spaces.parity.build_network`, weights loaded strictly) and batch, in a scratch environment outside
this repository (a venv with torch, numpy and pyyaml; this worktree on ``sys.path`` only to build the networks).
Nothing of the authors' code is copied here: it is loaded from local checkouts given on the command line.
``values.json`` and ``weights.npz`` are read, never written.

Usage:

    python scripts/make_parity_proxies_a.py --az-nas /path/to/AZ-NAS --zico /path/to/ZiCo --meco /path/to/MeCo \
        [--out tests/parity/fixture/values_proxies_a.json]

References, per metric (CPU shims: ``Module.cuda`` / ``Tensor.cuda`` are the identity):
    AZ-NAS (cvlab-yonsei/AZ-NAS, ``NB201/ZeroShotProxy/compute_az_nas_score.py`` ``compute_nas_score``):
    az_nas_expressivity, az_nas_progressivity, az_nas_trainability. It calls ``model.extract_cell_features``,
    a method of the authors' NB201 network (``NB201/custom/tss_model.py``), which reads ``self.stem`` and
    ``self.cells`` as raynas's NB201 network has them: that one method is taken from the file's syntax tree and
    bound to the fixture's network. ``torch.manual_seed(0)`` before the call (the engine's seed): the Kaiming
    re-initialisation the function applies inside the call (its ``init_model``), the Gaussian input and the +-1
    probes are the draws raynas makes. Run twice: as the authors run it (the values of raynas's ``az_nas_*``
    metrics, which re-initialise as the function does), and with ``init_model`` replaced by the identity (the
    section ``az_given_weights``: the formula on the fixture's own weights, raynas's ``_az.az_terms``). The reference's -inf (its NaN sentinel and its identity-cell score) is recorded as null:
    raynas records status ``nan``. NB201 cases only: the file's ``extract_cell_features`` calls each cell with
    one input, and DARTS cells take two.
    AZ-NAS's complexity (``NB201/xautodl/utils/flop_benchmark.py`` ``get_model_infos``, the counter behind the
    NAS-Bench-201 API's ``flops``): az_nas_complexity, on a ``[1, 3, 32, 32]`` input, every case.
    ZiCo (SLDGroup/ZiCo ``ZeroShotProxy/compute_zico.py`` ``getzico``, taken from the syntax tree: the module
    imports the repository's model zoo at import): zico, with the two halves of the batch as its loader's two
    batches, network and batch in float64 (as raynas computes it: float32 rounding moves ZiCo by percents, see
    ``raynas/metrics/zico.py``). Where it fails (a Conv2d/Linear without gradient: the file reads ``weight.grad.data``), AZ-NAS's
    NB201 revision of the same file (``NB201/ZeroShotProxy/compute_zico_score.py``, which skips those layers) is
    run instead, and where both run they must agree. A reference 0 from no contributing layer is recorded as
    null (raynas: status ``nan``, ZiCo undefined).
    MeCo (HamsterMimi/MeCo ``correlation/foresight/pruners/measures/meco.py`` ``compute_meco``, loaded under a stub
    ``measures`` package whose ``measure`` decorator returns the function): meco, ``torch.manual_seed(0)`` before
    the call, every case.
"""

from __future__ import annotations

import argparse
import ast
import copy
import importlib.util
import json
import math
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from raynas.spaces.parity import CASES, NUM_CLASSES, fixture_network  # noqa: E402

FIXTURE = REPO / "tests" / "parity" / "fixture"
SEED = 0
AZ_TERMS = ("expressivity", "progressivity", "trainability")


def _commit(checkout: Path) -> str:
    return subprocess.run(["git", "-C", str(checkout), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()


def _load_file(path: Path, name: str) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


def _functions(path: Path, names: set[str], ns: dict[str, Any]) -> dict[str, Any]:
    """Execute only the top-level (or class-level) ``def``s called ``names`` of ``path`` in namespace ``ns``."""
    tree = ast.parse(path.read_text())
    defs = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name in names]
    exec(compile(ast.Module(body=defs, type_ignores=[]), str(path), "exec"), ns)  # noqa: S102
    return {n: ns[n] for n in names}



def _finite(v: float) -> float | None:
    return float(v) if math.isfinite(v) else None


def az_values(checkout: Path, net: nn.Module, inputs: torch.Tensor, reinit: bool = True) -> dict[str, float | None]:
    """AZ-NAS's three feature terms of ``net`` by ``compute_nas_score``; ``reinit=False``: its ``init_model``
    replaced by the identity (the terms of the weights ``net`` has)."""
    mod = _load_file(checkout / "NB201" / "ZeroShotProxy" / "compute_az_nas_score.py", "ref_az_nas")
    if not reinit:
        mod.init_model = lambda model, method="kaiming_norm_fanin": model  # keep the fixture's weights
    (extract,) = _functions(checkout / "NB201" / "custom" / "tss_model.py", {"extract_cell_features"}, {}).values()
    model = copy.deepcopy(net).train()
    model.extract_cell_features = types.MethodType(extract, model)
    torch.manual_seed(SEED)
    info = mod.compute_nas_score(model, gpu=None, trainloader=None, resolution=inputs.shape[2],
                                 batch_size=inputs.shape[0])
    return {f"az_nas_{k}": _finite(info[k]) for k in AZ_TERMS}


def complexity_value(checkout: Path, net: nn.Module) -> float:
    mod = _load_file(checkout / "NB201" / "xautodl" / "utils" / "flop_benchmark.py", "ref_flop_benchmark")
    flops, _params = mod.get_model_infos(copy.deepcopy(net), (1, 3, 32, 32))
    return float(flops)


def zico_value(zico_checkout: Path, az_checkout: Path, net: nn.Module, inputs: torch.Tensor,
               labels: torch.Tensor) -> tuple[float | None, str]:
    half = inputs.shape[0] // 2
    net, inputs = copy.deepcopy(net).double(), inputs.double()
    loader = [(inputs[:half], labels[:half]), (inputs[half:], labels[half:])]
    ns: dict[str, Any] = {"torch": torch, "nn": nn, "np": np}
    fns = _functions(zico_checkout / "ZeroShotProxy" / "compute_zico.py", {"getgrad", "caculate_zico", "getzico"}, ns)
    model = copy.deepcopy(net)
    try:
        original: float | None = float(fns["getzico"](model, loader, nn.CrossEntropyLoss()))
    except AttributeError:  # a layer without gradient: ``None.data``
        original = None
    revised_mod = _load_file(az_checkout / "NB201" / "ZeroShotProxy" / "compute_zico_score.py", "ref_zico_az")

    class TupleOut(nn.Module):  # the NB201 revision expects ``(features, logits)``
        def __init__(self, inner: nn.Module):
            super().__init__()
            self.inner = inner

        def forward(self, x: torch.Tensor) -> tuple[None, torch.Tensor]:
            return None, self.inner(x)

    revised = float(revised_mod.compute_nas_score(TupleOut(copy.deepcopy(net)), gpu=None, trainloader=loader,
                                                  resolution=32, batch_size=half)["zico"])
    if original is not None:
        assert abs(original - revised) <= 1e-6 * abs(original), (original, revised)
        value, source = original, "original"
    else:
        value, source = revised, "AZ-NAS NB201 revision"
    return (None if value == 0.0 else value), source


def meco_value(checkout: Path, net: nn.Module, inputs: torch.Tensor, labels: torch.Tensor) -> float | None:
    measures_dir = checkout / "correlation" / "foresight" / "pruners" / "measures"
    stub = types.ModuleType("ref_meco_measures")
    stub.__path__ = [str(measures_dir)]  # type: ignore[attr-defined]
    stub.measure = lambda name, **kw: (lambda fn: fn)  # type: ignore[attr-defined]
    sys.modules["ref_meco_measures"] = stub
    spec = importlib.util.spec_from_file_location("ref_meco_measures.meco", measures_dir / "meco.py")
    mod = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    model = copy.deepcopy(net).train()
    torch.manual_seed(SEED)
    value = mod.compute_meco(model, inputs.clone(), labels.clone())
    return _finite(value) if isinstance(value, float) else None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--az-nas", type=Path, required=True, help="checkout of cvlab-yonsei/AZ-NAS")
    p.add_argument("--zico", type=Path, required=True, help="checkout of SLDGroup/ZiCo")
    p.add_argument("--meco", type=Path, required=True, help="checkout of HamsterMimi/MeCo")
    p.add_argument("--out", type=Path, default=FIXTURE / "values_proxies_a.json")
    args = p.parse_args(argv)

    torch.set_num_threads(1)
    nn.Module.cuda = lambda self, *a, **k: self  # type: ignore[method-assign]
    torch.Tensor.cuda = lambda self, *a, **k: self  # type: ignore[method-assign]
    with np.load(FIXTURE / "weights.npz", allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    inputs, labels = torch.from_numpy(arrays["batch/inputs"]), torch.from_numpy(arrays["batch/labels"])
    assert int(labels.max()) < NUM_CLASSES

    cases: dict[str, Any] = {}
    zico_sources: dict[str, str] = {}
    given: dict[str, dict[str, float | None]] = {}
    for case, (space, _arch) in sorted(CASES.items()):
        net = fixture_network(arrays, case)
        values: dict[str, float | None] = {}
        if space == "nb201":
            values.update(az_values(args.az_nas, net, inputs))
            given[case] = az_values(args.az_nas, net, inputs, reinit=False)
        values["az_nas_complexity"] = complexity_value(args.az_nas, net)
        values["zico"], zico_sources[case] = zico_value(args.zico, args.az_nas, net, inputs, labels)
        values["meco"] = meco_value(args.meco, net, inputs, labels)
        cases[case] = {"values": values}
        print(case, values, zico_sources[case], flush=True)

    az, zc, mc = (f"{r}@{_commit(c)}" for r, c in (("cvlab-yonsei/AZ-NAS", args.az_nas),
                                                    ("SLDGroup/ZiCo", args.zico), ("HamsterMimi/MeCo", args.meco)))
    refs = {f"az_nas_{k}": f"{az}: NB201/ZeroShotProxy/compute_az_nas_score.py (compute_nas_score, its Kaiming "
                           "re-initialisation included)" for k in AZ_TERMS}
    refs["az_nas_complexity"] = f"{az}: NB201/xautodl/utils/flop_benchmark.py (get_model_infos)"
    revised = sorted(c for c, s in zico_sources.items() if s != "original")
    refs["zico"] = f"{zc}: ZeroShotProxy/compute_zico.py (getzico), float64"
    if revised:
        refs["zico"] += f"; for {', '.join(revised)}: {az}: NB201/ZeroShotProxy/compute_zico_score.py"
    refs["meco"] = f"{mc}: correlation/foresight/pruners/measures/meco.py"
    out = {"cases": cases, "references": refs, "float64": [], "torch": torch.__version__,
           # the formula on the fixture's weights: compute_nas_score with init_model replaced by the identity
           "az_given_weights": {"cases": given, "reference": f"{az}: NB201/ZeroShotProxy/compute_az_nas_score.py "
                                                             "(compute_nas_score, init_model replaced by the identity)"}}
    args.out.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
