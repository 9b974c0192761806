"""Reference values of the proxies of group B (``tests/parity/fixture/values_proxies_b.json``).

Runs the authors' code on the committed fixture's networks and batch (``weights.npz``, written by
``scripts/make_parity_fixture.py``, which this script never rewrites) and stores what it computes, in the
layout ``tests/parity/test_parity.py`` merges (``cases.<case>.values``, ``references``). Nothing of the authors'
code is copied here: it is loaded from local checkouts given on the command line, in a scratch environment
outside this repository (a venv with torch, numpy and pyyaml; raynas on ``PYTHONPATH``).

    python scripts/make_parity_proxies_b.py --naslib /path/NASLib --zennas /path/ZenNAS --swap /path/SWAP

References run, per metric:
    NASLib (automl/NASLib, naslib/predictors/utils/pruners/measures/{epe_nas,l2_norm,plain}.py): epe_nas,
    l2_norm, plain. The three measure files are imported as they are under a stub of their package: ``measure``
    (the registering decorator) returns the function unchanged, and ``p_utils`` holds only its own
    ``get_layer_metric_array`` (taken from its syntax tree: the real module imports all of NASLib's search
    spaces). The values are summed as ``find_measures`` sums them (``sum_arr``; epe_nas is a number already),
    each on a fresh copy of the network in train mode (``get_prunable_copy(bn=True)`` is a deep copy).

    Zen-NAS (idstcv/ZenNAS, ZeroShotProxy/compute_zen_score.py): zen. ``network_weight_gaussian_init`` and
    ``compute_nas_score`` are taken from the file's syntax tree (its module imports the repository's model
    loader); ``repeat=1``, ``mixup_gamma=1e-2``, resolution 32 and batch 16 (the fixture batch's shape), after
    ``torch.manual_seed(0)`` as the engine seeds. The network gets the ``forward_pre_GAP`` the function calls,
    written out per network class below (NB201: stem, cells, lastact; DARTS: stem, cells on (s0, s1)).

    VKDNW (ondratybl/VKDNW, NB201/ZeroShotProxy/compute_vkdnw_score.py): vkdnw, the ``vkdnw_entropy`` of its
    ``compute_nas_score`` with ``params_grad_len=128, p=1`` (its NB201 driver, which picks them, is not in the
    repository; ``p=0``, the default, selects no weight). Its functions are taken from the syntax tree (the module
    imports functorch's removed ``make_functional_with_buffers``); one shim: ``params[k].flatten()`` is cloned
    before the in-place write of the selected weight (torch 2 refuses that write into a captured tensor under
    ``jacrev``; the values are the same). The network returns ``(logits, logits)`` (it reads ``[1]``),
    ``model.cuda()`` is the identity; ``torch.manual_seed(0)`` before the call (its Kaiming re-initialisation).
    Network and batch in float64, as raynas registers vkdnw (float32 values move by 2e-5 with the thread count);
    second shim for that: its float32 quantile levels ``arange(0.1, 1, 0.1)`` are cast to float64 (quantile()
    refuses mixed dtypes), the same levels raynas uses.

    VKDNW in float32 (the same file, unshimmed but for the clone): vkdnw_f32, the network and batch as the fixture
    holds them (float32), one thread (``torch.set_num_threads(1)``: the float32 value moves by 2e-5 relative with
    the thread count, and the parity suite runs on one thread too).

    SWAP (pym1024/SWAP, src/metrics/swap.py): swap. The ``SWAP`` class as the file defines it
    (``regular=False``), on the fixture batch, network in train mode and as initialised (the 32 Gaussian
    re-initialisations of its ``correlation.py`` are that script's benchmarking protocol; see raynas's swap).
    Its regularised score, ``SWAP(regular=True, mu, sigma)`` with :data:`SWAP_REG` (no published value: chosen so
    the factor lies between 0.1 and 1 on the fixture's networks), goes to the file's ``swap_reg`` section: it is
    the ``swap_reg`` zero-shot rule over the ``swap`` and ``params`` columns, not a metric. One shim: its
    ``count_parameters`` (``src/utils/utilities.py``) sums with the builtin ``sum`` where it calls
    ``np.sum(generator)``, an error in numpy 2 (older numpy did the same builtin sum, with a warning).

    ``--rule-out``: VKDNW's population ranking (``ImageNet_MBV2/evolution_search_vkdnw.py``, the loop summing
    ``log(rankdata / l)`` over its five terms, executed as the file writes it) on a seeded synthetic pool with ties
    and failed (-inf) terms, for raynas's ``vkdnw`` zero-shot rule (``tests/search/data/zero_shot_vkdnw.json``).
"""

from __future__ import annotations

import argparse
import ast
import copy
import importlib
import json
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from raynas.spaces.parity import CASES, NUM_CLASSES, fixture_network

SEED = 0
FIXTURE = REPO / "tests" / "parity" / "fixture"
#: ``mu``, ``sigma`` of the regularised SWAP on the fixture (thousands of parameters; its networks have 11-92 K)
SWAP_REG = {"mu": 50.0, "sigma": 1000.0}
#: raynas's metric for each of VKDNW's five ranked terms, in the order its loop adds them
VKDNW_TERMS = {"complexity": "az_nas_complexity", "expressivity": "az_nas_expressivity",
               "progressivity": "az_nas_progressivity", "vkdnw_entropy": "vkdnw", "trainability": "az_nas_trainability"}


def fixture_arrays() -> dict[str, np.ndarray]:
    with np.load(FIXTURE / "weights.npz", allow_pickle=False) as z:
        return {k: z[k] for k in z.files}



def _functions(path: Path, names: set[str], namespace: dict[str, Any],
               replace: tuple[tuple[str, str], ...] = ()) -> dict[str, Any]:
    """Execute the top-level function definitions called ``names`` of ``path`` in ``namespace`` (after the
    literal source replacements ``replace``, each of which must apply)."""
    source = path.read_text()
    for old, new in replace:
        if old not in source:
            raise SystemExit(f"{path}: {old!r} not found")
        source = source.replace(old, new)
    nodes = [n for n in ast.parse(source).body if isinstance(n, ast.FunctionDef) and n.name in names]
    for n in nodes:
        exec(compile(ast.get_source_segment(source, n) or "", str(path), "exec"), namespace)  # noqa: S102
    missing = names - set(namespace)
    if missing:
        raise SystemExit(f"{path}: functions {sorted(missing)} not found")
    return namespace


def naslib_measures(checkout: Path) -> dict[str, Any]:
    """NASLib's epe_nas, l2_norm and plain measure functions, imported under a stub package."""
    pruners = checkout / "naslib" / "predictors" / "utils" / "pruners"
    pkg = types.ModuleType("nl_pruners")
    pkg.__path__ = [str(pruners)]  # type: ignore[attr-defined]
    p_utils = types.ModuleType("nl_pruners.p_utils")
    p_utils.get_layer_metric_array = _functions(pruners / "p_utils.py", {"get_layer_metric_array"},
                                                {"nn": nn})["get_layer_metric_array"]
    measures = types.ModuleType("nl_pruners.measures")
    measures.__path__ = [str(pruners / "measures")]  # type: ignore[attr-defined]
    measures.measure = lambda name, **kw: (lambda fn: fn)  # type: ignore[attr-defined]
    sys.modules.update({"nl_pruners": pkg, "nl_pruners.p_utils": p_utils, "nl_pruners.measures": measures})
    return {
        "epe_nas": importlib.import_module("nl_pruners.measures.epe_nas").compute_epe_score,
        "l2_norm": importlib.import_module("nl_pruners.measures.l2_norm").get_l2_norm_array,
        "plain": importlib.import_module("nl_pruners.measures.plain").compute_plain_per_weight,
    }


def naslib_values(checkout: Path, net: nn.Module, inputs: torch.Tensor, labels: torch.Tensor
                  ) -> tuple[dict[str, float | None], dict[str, float]]:
    fns = naslib_measures(checkout)
    out: dict[str, float | None] = {}
    scales: dict[str, float] = {}
    torch.manual_seed(SEED)
    epe = fns["epe_nas"](copy.deepcopy(net).train(), inputs.clone(), labels.clone(), loss_fn=F.cross_entropy)
    out["epe_nas"] = float(epe) if np.isfinite(epe) else None
    torch.manual_seed(SEED)
    arr = fns["l2_norm"](copy.deepcopy(net).train(), inputs.clone(), labels.clone(), mode="param")
    out["l2_norm"] = float(sum(float(torch.sum(a.detach())) for a in arr))
    torch.manual_seed(SEED)
    arr = fns["plain"](copy.deepcopy(net).train(), inputs.clone(), labels.clone(), mode="param",
                       loss_fn=F.cross_entropy)
    value = float(sum(float(torch.sum(a)) for a in arr))
    out["plain"] = value if np.isfinite(value) else None
    scales["plain"] = float(sum(float(torch.sum(torch.abs(a))) for a in arr))  # its signed terms cancel
    return out, scales


def _forward_pre_gap(net: nn.Module) -> Any:
    """The feature map before the global pool, written out for the fixture's two network classes."""
    if hasattr(net, "lastact"):  # NB201Network
        return lambda x: net.lastact(net.cells(net.stem(x)))

    def darts(x: torch.Tensor) -> torch.Tensor:  # DartsNetworkCIFAR
        s0 = s1 = net.stem(x)
        for cell in net.cells:
            s0, s1 = s1, cell(s0, s1)
        return s1

    return darts


def zen_value(checkout: Path, net: nn.Module, inputs: torch.Tensor) -> dict[str, float | None]:
    path = checkout / "ZeroShotProxy" / "compute_zen_score.py"
    ns = _functions(path, {"network_weight_gaussian_init", "compute_nas_score"}, {"torch": torch, "nn": nn, "np": np})
    model = copy.deepcopy(net).train()
    model.forward_pre_GAP = _forward_pre_gap(model)
    torch.manual_seed(SEED)
    try:
        info = ns["compute_nas_score"](gpu=None, model=model, mixup_gamma=1e-2, resolution=inputs.shape[-1],
                                       batch_size=inputs.shape[0], repeat=1, fp16=False)
    except (TypeError, AttributeError, RuntimeError) as exc:  # e.g. a BN without running statistics
        sys.stderr.write(f"zen reference failed: {exc}\n")
        return {"zen": None}
    value = info["avg_nas_score"]
    return {"zen": float(value) if np.isfinite(value) else None}


def swap_value(checkout: Path, net: nn.Module, inputs: torch.Tensor) -> dict[str, float | None]:
    sys.path.insert(0, str(checkout))
    try:
        import src.metrics.swap as swap_module  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(checkout))
    SWAP = swap_module.SWAP
    # numpy 2 refuses np.sum(generator), which older numpy summed with the builtin sum (a DeprecationWarning):
    # the file's count_parameters with the builtin sum, the same number
    utilities = checkout / "src" / "utils" / "utilities.py"
    swap_module.count_parameters = _functions(utilities, {"count_parameters"}, {"np": np},
                                              replace=(("np.sum(np.prod", "sum(np.prod"),))["count_parameters"]
    model = copy.deepcopy(net).train()
    torch.manual_seed(SEED)
    value = SWAP(model=model, inputs=inputs.clone(), device=torch.device("cpu"), seed=SEED).forward()
    model = copy.deepcopy(net).train()  # a fresh copy: SWAP registers its hooks on the model it is given
    torch.manual_seed(SEED)
    reg = SWAP(model=model, inputs=inputs.clone(), device=torch.device("cpu"), seed=SEED, regular=True,
               **SWAP_REG).forward()
    return {"swap": None if value is None else float(value), "swap_reg": None if reg is None else float(reg)}


class _TupleNet(nn.Module):
    """The fixture network as VKDNW's NB201 code calls it: ``(features, logits)`` out (it reads ``[1]``)."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.net(x)
        return logits, logits


def _vkdnw_functions(checkout: Path, float64: bool) -> dict[str, Any]:
    import random

    from torch.func import functional_call, jacrev, vmap

    path = checkout / "NB201" / "ZeroShotProxy" / "compute_vkdnw_score.py"
    # torch >= 2 refuses the in-place write into a captured (detached) parameter under jacrev: the same write into
    # a copy of it (same values; the parameter was only read)
    replace = [("param = params[k].flatten()\n", "param = params[k].flatten().clone()\n")]
    if float64:  # float64 spectrum: quantile() wants its levels in the same dtype
        replace.append(("torch.arange(0.1, 1., 0.1, device=lambdas.device)",
                        "torch.arange(0.1, 1., 0.1, device=lambdas.device).to(lambdas.dtype)"))
    return _functions(path, {"kaiming_normal_fanin_init", "init_model", "get_fisher", "cholesky_covariance",
                             "get_jacobian_index", "compute_nas_score"},
                      {"torch": torch, "nn": nn, "np": np, "gc": __import__("gc"), "random": random,
                       "functional_call": functional_call, "jacrev": jacrev, "vmap": vmap}, replace=tuple(replace))


def vkdnw_value(checkout: Path, net: nn.Module, inputs: torch.Tensor, labels: torch.Tensor) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for name, float64 in (("vkdnw", True), ("vkdnw_f32", False)):
        ns = _vkdnw_functions(checkout, float64)
        # float64 on both sides for vkdnw (see raynas's vkdnw); vkdnw_f32 as the fixture holds it, float32
        model = _TupleNet(copy.deepcopy(net).double() if float64 else copy.deepcopy(net))
        model.cuda = lambda *a, _m=model, **k: _m  # CPU: the function calls model.cuda()
        model.no_reslink = False
        x = inputs.double() if float64 else inputs.clone()
        torch.manual_seed(SEED)
        info = ns["compute_nas_score"](model, gpu=None, trainloader=[(x, labels.clone())],
                                       resolution=inputs.shape[-1], batch_size=inputs.shape[0], params_grad_len=128,
                                       p=1)
        value = info["vkdnw_entropy"]
        out[name] = float(value) if np.isfinite(value) else None
    return out


def vkdnw_rule_values(checkout: Path) -> dict[str, Any]:
    """VKDNW's population ranking loop, as its evolution search runs it, on a seeded synthetic pool."""
    import textwrap

    from scipy import stats

    path = checkout / "ImageNet_MBV2" / "evolution_search_vkdnw.py"
    source = path.read_text()
    start = source.index("        popu_zero_shot_score_list = None\n")
    end = source.index("        popu_zero_shot_score_list = popu_zero_shot_score_list.tolist()\n")
    block = textwrap.dedent(source[start:end])
    if "stats.rankdata(popu_zero_shot_score_dict[key])" not in block:
        raise SystemExit(f"{path}: the ranking loop is not where it was")
    rng = np.random.default_rng(SEED)
    size = 40
    pool: dict[str, list[float]] = {
        "complexity": list(rng.choice([30.6, 55.0, 78.6, 117.0, 184.4], size=size)),  # FLOPs-like, many ties
        "expressivity": list(np.round(rng.normal(200, 30, size=size), 1)),
        "progressivity": list(rng.normal(0.5, 1.0, size=size)),
        "vkdnw_entropy": list(np.round(rng.uniform(0.3, 2.2, size=size), 2)),
        "trainability": list(rng.normal(-1.0, 0.5, size=size)),
    }
    for key, rows in (("expressivity", (3, 17)), ("progressivity", (3, 29)), ("trainability", (5, 17, 31))):
        for r in rows:  # the reference's failed terms (-inf)
            pool[key][r] = -np.inf
    pool["vkdnw_entropy"][11] = pool["vkdnw_entropy"][12]  # a tie on vkdnw too
    ns: dict[str, Any] = {"np": np, "stats": stats, "popu_zero_shot_score_dict": pool}
    exec(compile(block, str(path), "exec"), ns)  # noqa: S102
    aggregate = [float(v) for v in ns["popu_zero_shot_score_list"]]
    return {
        "reference": f"ondratybl/VKDNW@{commit(checkout)}: ImageNet_MBV2/evolution_search_vkdnw.py (the population "
                     "ranking loop)",
        "terms": [[k, v] for k, v in VKDNW_TERMS.items()],  # (theirs, raynas's) in the loop's order
        # null: a failed term (the reference's -inf); raynas's pool holds NaN there
        "pool": {VKDNW_TERMS[k]: [None if not np.isfinite(v) else float(v) for v in vals] for k, vals in pool.items()},
        "aggregate": aggregate,
    }


def commit(path: Path) -> str:
    return subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--naslib", type=Path, required=True, help="checkout of automl/NASLib")
    p.add_argument("--zennas", type=Path, required=True, help="checkout of idstcv/ZenNAS")
    p.add_argument("--swap", type=Path, required=True, help="checkout of pym1024/SWAP")
    p.add_argument("--vkdnw", type=Path, required=True, help="checkout of ondratybl/VKDNW")
    p.add_argument("--out", type=Path, default=FIXTURE / "values_proxies_b.json")
    p.add_argument("--rule-out", type=Path, default=REPO / "tests" / "search" / "data" / "zero_shot_vkdnw.json",
                   help="VKDNW's population ranking on a synthetic pool (the vkdnw zero-shot rule's reference)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    arrays = fixture_arrays()
    inputs, labels = torch.from_numpy(arrays["batch/inputs"]), torch.from_numpy(arrays["batch/labels"])
    if int(labels.max()) >= NUM_CLASSES:
        raise SystemExit("the fixture's labels exceed its number of classes")
    cases: dict[str, Any] = {}
    swap_reg: dict[str, float | None] = {}
    for case in CASES:
        net = fixture_network(arrays, case)
        values, scales = naslib_values(args.naslib, net, inputs, labels)
        values.update(zen_value(args.zennas, net, inputs))
        sw = swap_value(args.swap, net, inputs)
        swap_reg[case] = sw.pop("swap_reg")
        values.update(sw)
        values.update(vkdnw_value(args.vkdnw, net, inputs, labels))
        cases[case] = {"values": values, "scales": scales}
        sys.stderr.write(f"{case}: {values} swap_reg {swap_reg[case]}\n")
    nl, zn, sw, vk = commit(args.naslib), commit(args.zennas), commit(args.swap), commit(args.vkdnw)
    meta = {
        "references": {
            **{m: f"automl/NASLib@{nl}: naslib/predictors/utils/pruners/measures/{m}.py"
               for m in ("epe_nas", "l2_norm", "plain")},
            "zen": f"idstcv/ZenNAS@{zn}: ZeroShotProxy/compute_zen_score.py (repeat=1)",
            "swap": f"pym1024/SWAP@{sw}: src/metrics/swap.py (SWAP, regular=False)",
            "vkdnw": f"ondratybl/VKDNW@{vk}: NB201/ZeroShotProxy/compute_vkdnw_score.py (vkdnw_entropy, "
                     "params_grad_len=128, p=1; float64)",
            "vkdnw_f32": f"ondratybl/VKDNW@{vk}: NB201/ZeroShotProxy/compute_vkdnw_score.py (vkdnw_entropy, "
                         "params_grad_len=128, p=1; float32, one thread)",
        },
        "torch": torch.__version__,
        "cases": cases,
        # the swap_reg zero-shot rule (swap * exp(-(params/1e3 - mu)^2 / sigma)): a rule over two columns, not a metric
        "swap_reg": {**SWAP_REG, "values": swap_reg,
                     "reference": f"pym1024/SWAP@{sw}: src/metrics/swap.py (SWAP, regular=True, "
                                  f"mu={SWAP_REG['mu']}, sigma={SWAP_REG['sigma']})"},
    }
    args.out.write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")
    args.rule_out.write_text(json.dumps(vkdnw_rule_values(args.vkdnw), indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
