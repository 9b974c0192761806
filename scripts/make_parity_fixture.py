"""Regenerate the parity fixture (``tests/parity/fixture/``) from the authors' own code.

The fixture holds small NAS-Bench-201 and DARTS networks built by raynas (their weights, BN buffers included),
one batch, and the value each metric's reference implementation gives on exactly those networks and that
batch. ``tests/parity/`` asserts that raynas computes the same values. Nothing of the authors' code is copied
here: it is imported from local checkouts whose paths are given on the command line, and run in a scratch
environment outside this repository (its own venv with torch and numpy, raynas installed with ``--no-deps``).

Usage (each checkout is a plain clone of the public repository):

    python scripts/make_parity_fixture.py --zero-cost-nas /path/to/zero-cost-nas --hnas /path/to/HNAS \
        [--out tests/parity/fixture]

References run, per metric:
    zero-cost-nas (SamsungLabs/zero-cost-nas, foresight/pruners/measures/*.py): grad_norm, snip, grasp, fisher,
    jacob_cov, synflow (its ``synflow`` measure: BN forward replaced by the identity, float64, all-ones input).
    HNAS (shuyao95/HNAS, foresight/pruners/measures/ntk_trace.py, condnum.py, tools/autograd_hacks.py):
    ntk_trace, ntk_cond. Two shims, no change to what they compute: HNAS's ``measures/__init__.py`` imports
    modules its repository does not contain (``ntk``, ``naswot_sim``), so the two measure files are loaded under
    a stub package; ``torch.symeig`` (removed in torch 2) is given as ``torch.linalg.eigvalsh``, the same
    ascending float32 eigenvalues.

    Revisit (taoyang1122/Revisit_TrainingFree_NAS, evaluate_anglefc.py): lwt_angle, lwt_loss. That file is a script
    (it parses arguments and loads CIFAR at import), so its two functions ``short_train`` and
    ``get_weights_by_layer`` are taken from its syntax tree and executed; the few lines of its main loop that turn
    them into the angle and loss scores (trivial nets: 0 and -100) are restated in :func:`revisit_values`. CPU
    shims: ``Tensor.cuda`` is the identity, the loader's iterator has the ``.next()`` the file calls, and the
    fixed ``range(17)`` over NB201's 17 cells is ``range(len(model.cells))`` for the fixture's smaller networks.
    The networks keep the fixture's weights (the file's Kaiming re-initialisation is not applied, as in raynas).
    Both sides run in float64: 50 SGD steps at lr 0.2 amplify float32 rounding to 5-35 % of the final loss
    (one thread vs two already differ), so only a float64 comparison tests the definition.

    NASWOT (BayesWatch/nas-without-training, search.py with scores.py): naswot_code. Its hook functions and
    ``get_batch_jacobian`` live inside the search script's main loop, so they are taken from the syntax tree
    and executed as that loop uses them (hooks on every module whose type name contains "ReLU", the Jacobian
    forward/backward that marks the visited modules, the counting forward, ``hooklogdet``).

    TE-NAS (VITA-Group/TENAS, lib/procedures/ntk.py ``get_ntk_n``, lib/procedures/linear_region_counter.py
    ``Linear_Region_Collector``): tenas_ntk_cond, linear_regions. The module imports torchvision (for its dataset
    loaders, not used here: the collector is given its input batches) and calls ``.cuda()`` and the
    Python-2 ``loader.next()``: torchvision is stubbed, ``.cuda()`` is the identity, the loaders are
    :class:`_OnceLoader`. The linear-region inputs are the crops raynas draws (3 x 1000 one-channel 3x3 windows
    of the batch, seed 0), handed to the collector as its 3 batches; the count runs on the case's thin network
    (its weights are stored too, as ``"{case}/thin/{key}"``).

Both foresight references ship a package called ``foresight``: each is imported with the other's modules purged.

The networks are small on purpose (NB201 C=8, N=1; DARTS C=4, 5 cells) so the fixture stays under 2 MB; the
metric definitions do not depend on the width. Files written: ``weights.npz`` (``"{case}/{state_dict key}"``
arrays, plus ``"batch/inputs"`` ``[B, 3, 32, 32]`` float32 and ``"batch/labels"`` ``[B]`` int64) and
``values.json`` (the cases, the network settings and the reference values).
"""

from __future__ import annotations

import argparse
import copy
import json
import subprocess
import sys
import textwrap
import types
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from raynas.spaces.parity import CASES, NUM_CLASSES, build_network  # noqa: E402

BATCH, SEED = 16, 0
#: a float32 eigen-solve of a ``[B, B]`` Gram matrix resolves eigenvalues down to about ``B * eps32 * lambda_max``:
#: a reference condition number above this is rounding noise (raynas solves in float64)
FLOAT32_COND_LIMIT = 1.0 / (BATCH * float(np.finfo(np.float32).eps))


def _purge(*prefixes: str) -> None:
    """Forget imported modules under ``prefixes`` (both references name their package ``foresight``)."""
    for name in [m for m in sys.modules if m.split(".")[0] in prefixes]:
        del sys.modules[name]


def _hnas_measures(checkout: Path) -> tuple[Any, Any]:
    """HNAS's ``compute_ntk_trace`` and ``compute_condnum``, imported under a stub ``measures`` package."""
    _purge("foresight", "tools")
    sys.path.insert(0, str(checkout))
    import foresight.pruners  # type: ignore[import-not-found]  # noqa: F401

    stub = types.ModuleType("foresight.pruners.measures")
    stub.__path__ = [str(checkout / "foresight" / "pruners" / "measures")]  # type: ignore[attr-defined]
    stub.measure = lambda name, **kw: (lambda fn: fn)  # type: ignore[attr-defined]  # the functions, unwrapped
    sys.modules["foresight.pruners.measures"] = stub
    # torch 2 keeps a symeig that only raises: the same ascending eigenvalues from eigvalsh
    torch.symeig = lambda a, eigenvectors=False: (torch.linalg.eigvalsh(a), None)  # type: ignore[attr-defined]
    import importlib

    trace = importlib.import_module("foresight.pruners.measures.ntk_trace").compute_ntk_trace
    cond = importlib.import_module("foresight.pruners.measures.condnum").compute_condnum
    sys.path.remove(str(checkout))
    return trace, cond


def hnas_values(checkout: Path, net: nn.Module, inputs: torch.Tensor, labels: torch.Tensor) -> dict[str, float | None]:
    """HNAS's ntk_trace and condnum of ``net`` (train mode, BN kept, as their search scores networks)."""
    trace_fn, cond_fn = _hnas_measures(checkout)
    out: dict[str, float | None] = {}
    for name, fn in (("ntk_trace", trace_fn), ("ntk_cond", cond_fn)):
        model = copy.deepcopy(net).train()
        torch.manual_seed(SEED)
        value = float(fn(model, inputs.clone(), labels.clone(), mode="param", loss_fn=F.cross_entropy))
        # condnum maps NaN to 100000 and inf to the largest float (np.nan_to_num): a singular NTK, for which raynas
        # records status nan (see ntk_cond's docstring)
        singular = name == "ntk_cond" and (value <= 0 or value in (1e5, np.finfo(np.float64).max))
        out[name] = value if np.isfinite(value) and not singular else None
    return out


def unresolved(values: dict[str, float | None]) -> list[str]:
    """The condition numbers beyond the reference's float32 resolution (:data:`FLOAT32_COND_LIMIT`)."""
    return sorted(m for m in ("ntk_cond", "tenas_ntk_cond")
                  if values.get(m) is not None and values[m] > FLOAT32_COND_LIMIT)  # type: ignore[operator]


class _OnceLoader:
    """A loader of one fixed batch whose iterator has the Python-2 ``.next()`` that ``short_train`` calls."""

    def __init__(self, inputs: torch.Tensor, labels: torch.Tensor):
        self.batch = (inputs, labels)

    def __len__(self) -> int:
        return 1

    def __iter__(self) -> "_OnceLoader._It":
        return _OnceLoader._It(self.batch)

    class _It:
        def __init__(self, batch: tuple[torch.Tensor, torch.Tensor]):
            self.batch, self.done = batch, False

        def __iter__(self) -> "_OnceLoader._It":
            return self

        def next(self) -> tuple[torch.Tensor, torch.Tensor]:
            if self.done:
                raise StopIteration
            self.done = True
            return self.batch

        __next__ = next


class _TupleNet(nn.Module):
    """The fixture network as Revisit's code expects it: ``(logits, features)`` out, ``stem``/``cells``/
    ``classifier`` attributes (the same modules), cells with ``in_dim``/``out_dim`` (only shape a placeholder)."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net, self.stem, self.cells, self.classifier = net, net.stem, net.cells, net.classifier
        for cell in net.cells:
            cell.in_dim = cell.out_dim = 1

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.net(x)
        return logits, logits


def _revisit_functions(checkout: Path) -> dict[str, Any]:
    """``short_train`` and ``get_weights_by_layer`` of evaluate_anglefc.py (see the module doc for the shims)."""
    import ast

    source = (checkout / "evaluate_anglefc.py").read_text()
    wanted = {"short_train", "get_weights_by_layer"}
    nodes = [n for n in ast.parse(source).body if isinstance(n, ast.FunctionDef) and n.name in wanted]
    code = "\n\n".join(ast.get_source_segment(source, n) or "" for n in nodes)
    code = code.replace("range(17)", "range(len(model.cells))")
    namespace: dict[str, Any] = {"torch": torch, "nn": nn, "np": np}
    exec(compile(code, str(checkout / "evaluate_anglefc.py"), "exec"), namespace)  # noqa: S102 - the reference
    return namespace


def revisit_values(checkout: Path, net: nn.Module, inputs: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """Revisit's angle score and loss (the negated loss score) of ``net``: its main loop for one network."""
    fns = _revisit_functions(checkout)
    model = _TupleNet(copy.deepcopy(net).double().train())
    inputs = inputs.double()
    cuda, torch.Tensor.cuda = torch.Tensor.cuda, lambda self, *a, **k: self  # type: ignore[method-assign]
    try:
        torch.manual_seed(SEED)
        before, isnan = fns["get_weights_by_layer"](model)
        if isnan:
            return {"lwt_angle": 0.0, "lwt_loss": 100.0}
        loader = _OnceLoader(inputs.clone(), labels.clone())
        loss_score = -fns["short_train"](loader, iter(loader), model, torch.nn.CrossEntropyLoss(), lr=0.2,
                                         num_iter=50)
        after, _ = fns["get_weights_by_layer"](model)
    finally:
        torch.Tensor.cuda = cuda  # type: ignore[method-assign]
    score = float(nn.functional.cosine_similarity(before[-1], after[-1], dim=-1))
    if score < 0.95:
        return {"lwt_angle": score, "lwt_loss": -loss_score}
    return {"lwt_angle": 0.0, "lwt_loss": 100.0}


def _functions_from(path: Path, names: set[str], namespace: dict[str, Any]) -> dict[str, Any]:
    """Execute the function definitions called ``names`` found anywhere in ``path``'s syntax tree."""
    import ast

    source = path.read_text()
    nodes = [n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.FunctionDef) and n.name in names]
    for n in nodes:
        code = ast.get_source_segment(source, n) or ""
        exec(compile(textwrap.dedent(code), str(path), "exec"), namespace)  # noqa: S102 - the reference's code
    missing = names - set(namespace)
    if missing:
        raise SystemExit(f"{path}: functions {sorted(missing)} not found")
    return namespace


def naswot_values(checkout: Path, net: nn.Module, inputs: torch.Tensor, labels: torch.Tensor) -> dict[str, float | None]:
    """Mellor et al.'s hook_logdet score of ``net`` as search.py computes it (train mode, BN kept)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("naswot_scores", checkout / "scores.py")
    scores = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(scores)  # type: ignore[union-attr]
    network = _TupleNet(copy.deepcopy(net).train())
    ns = _functions_from(checkout / "search.py", {"get_batch_jacobian", "counting_forward_hook",
                                                   "counting_backward_hook"}, {"torch": torch, "np": np})
    ns["network"] = network  # the hooks add into the global ``network.K``, as in the search loop
    network.K = np.zeros((inputs.shape[0], inputs.shape[0]))
    for _, module in network.named_modules():
        if "ReLU" in str(type(module)):
            module.register_forward_hook(ns["counting_forward_hook"])
            module.register_backward_hook(ns["counting_backward_hook"])
    torch.manual_seed(SEED)
    x = inputs.clone()
    ns["get_batch_jacobian"](network, x, labels.clone(), torch.device("cpu"))
    network(inputs.clone())
    value = float(scores.hooklogdet(network.K, labels))
    return {"naswot_code": value if np.isfinite(value) else None}


def _tenas_procedures(checkout: Path) -> Any:
    """TE-NAS's ``ntk.py`` and ``linear_region_counter.py`` (loaded as files: the package's ``__init__`` also
    imports its logging helpers), with torchvision and its ``datasets`` stubbed (only the dataset loaders,
    unused here, need them)."""
    _purge("datasets", "torchvision")
    for name in ("torchvision", "torchvision.transforms", "torchvision.datasets"):
        sys.modules[name] = types.ModuleType(name)
    sys.modules["torchvision"].transforms = sys.modules["torchvision.transforms"]  # type: ignore[attr-defined]
    sys.modules["torchvision"].datasets = sys.modules["torchvision.datasets"]  # type: ignore[attr-defined]
    datasets = types.ModuleType("datasets")
    datasets.CUTOUT, datasets.Dataset2Class, datasets.ImageNet16 = object, {}, object  # type: ignore[attr-defined]
    sys.modules["datasets"] = datasets
    procs = types.SimpleNamespace()
    for file, attr in (("ntk.py", "get_ntk_n"), ("linear_region_counter.py", "Linear_Region_Collector")):
        path = checkout / "lib" / "procedures" / file
        # ``res += res.T`` (self-overlapping in-place add) is refused by torch >= 1.5: the out-of-place sum it means
        source = path.read_text().replace("res += res.T", "res = res + res.T")
        module = types.ModuleType(f"tenas_{file[:-3]}")
        exec(compile(source, str(path), "exec"), module.__dict__)  # noqa: S102 - the reference's own code
        setattr(procs, attr, getattr(module, attr))
    torch.symeig = lambda a, eigenvectors=False: (torch.linalg.eigvalsh(a), None)  # type: ignore[attr-defined]
    return procs


def tenas_values(checkout: Path, net: nn.Module, thin: nn.Module, inputs: torch.Tensor) -> dict[str, float | None]:
    """TE-NAS's NTK condition number (train mode, one batch) of ``net`` and its region count of ``thin``."""
    from raynas.metrics._regions import input_channels, region_inputs
    from raynas.metrics.linear_regions import CHUNK, CHUNKS

    procs = _tenas_procedures(checkout)
    cuda, torch.Tensor.cuda = torch.Tensor.cuda, lambda self, *a, **k: self  # type: ignore[method-assign]
    cur = torch.cuda.current_device
    torch.cuda.current_device = lambda: 0  # type: ignore[assignment]
    try:
        loader = _OnceLoader(inputs.clone(), torch.zeros(inputs.shape[0], dtype=torch.long))
        (cond,) = procs.get_ntk_n(loader, [copy.deepcopy(net)], recalbn=0, train_mode=True, num_batch=1)
        channels = input_channels(thin, 1)  # NB201's thin network: 1 (TE-NAS's RandChannel(1))
        crops = region_inputs("crops", CHUNK * CHUNKS, channels, SEED, inputs)
        lrc = procs.Linear_Region_Collector(input_size=(CHUNK, channels, 3, 3), sample_batch=CHUNKS,
                                            dataset="cifar10",
                                            data_path=None, seed=SEED)
        model = copy.deepcopy(thin).train()
        lrc.reinit(models=[model], seed=SEED)
        chunks = iter([(c, None) for c in crops.split(CHUNK)])
        lrc.loader = types.SimpleNamespace(next=lambda: next(chunks))
        (regions,) = lrc.forward_batch_sample()
    finally:
        torch.Tensor.cuda = cuda  # type: ignore[method-assign]
        torch.cuda.current_device = cur  # type: ignore[assignment]
    cond = float(cond)
    singular = cond <= 0 or cond in (1e5, np.finfo(np.float64).max) or not np.isfinite(cond)
    return {"tenas_ntk_cond": None if singular else cond, "linear_regions": float(regions)}


def zero_cost_nas_values(
    checkout: Path, net: nn.Module, inputs: torch.Tensor, labels: torch.Tensor
) -> tuple[dict[str, float | None], dict[str, float]]:
    """The six zero-cost-nas measures of ``net``, summed over weights as ``find_measures`` sums them.

    Also returns each per-weight measure's sum of absolute values: the scale that float32 rounding of the sum
    is relative to (GraSP's signed terms cancel, so its sum can be far smaller than its terms).
    """
    _purge("foresight")
    sys.path.insert(0, str(checkout))
    from foresight.pruners import measures  # type: ignore[import-not-found]
    from foresight.pruners.predictive import copynet  # type: ignore[import-not-found]

    out: dict[str, float | None] = {}
    scales: dict[str, float] = {}
    for name in ("grad_norm", "snip", "grasp", "fisher", "jacob_cov", "synflow"):
        model = copy.deepcopy(net)
        model.get_prunable_copy = types.MethodType(copynet, model)
        torch.manual_seed(SEED)
        arr = measures.calc_measure(name, model, torch.device("cpu"), inputs.clone(), labels.clone(),
                                    loss_fn=F.cross_entropy, split_data=1)
        value = float(arr) if name == "jacob_cov" else float(sum(float(torch.sum(a)) for a in arr))
        out[name] = value if np.isfinite(value) else None  # no finite value: raynas must record status nan
        if name != "jacob_cov":
            scales[name] = float(sum(float(torch.sum(torch.abs(a))) for a in arr))
    sys.path.remove(str(checkout))
    return out, scales


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--zero-cost-nas", type=Path, required=True, help="checkout of SamsungLabs/zero-cost-nas")
    p.add_argument("--hnas", type=Path, required=True, help="checkout of shuyao95/HNAS")
    p.add_argument("--revisit", type=Path, required=True, help="checkout of taoyang1122/Revisit_TrainingFree_NAS")
    p.add_argument("--naswot", type=Path, required=True, help="checkout of BayesWatch/nas-without-training")
    p.add_argument("--tenas", type=Path, required=True, help="checkout of VITA-Group/TENAS")
    p.add_argument("--out", type=Path, default=REPO / "tests" / "parity" / "fixture")
    args = p.parse_args(argv)

    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(SEED)
    inputs = torch.randn(BATCH, 3, 32, 32, generator=gen)
    labels = torch.arange(BATCH) % NUM_CLASSES
    arrays: dict[str, np.ndarray] = {"batch/inputs": inputs.numpy(), "batch/labels": labels.numpy()}
    zc_commit, hnas_commit, revisit_commit, naswot_commit, tenas_commit = (
        subprocess.run(["git", "-C", str(c), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
        for c in (args.zero_cost_nas, args.hnas, args.revisit, args.naswot, args.tenas)
    )
    cases: dict[str, Any] = {}
    for key, (space, arch) in CASES.items():
        torch.manual_seed(SEED)
        net = build_network(space, arch)
        for name, t in net.state_dict().items():
            arrays[f"{key}/{name}"] = t.detach().numpy()
        thin = build_network(space, arch, thin=True)
        for name, t in thin.state_dict().items():
            arrays[f"{key}/thin/{name}"] = t.detach().numpy()
        values, scales = zero_cost_nas_values(args.zero_cost_nas, net, inputs, labels)
        values.update(hnas_values(args.hnas, net, inputs, labels))
        values.update(revisit_values(args.revisit, net, inputs, labels))
        values.update(naswot_values(args.naswot, net, inputs, labels))
        values.update(tenas_values(args.tenas, net, thin, inputs))
        cases[key] = {"space": space, "arch": arch, "values": values, "scales": scales,
                      "float32_unresolved": unresolved(values)}
        sys.stderr.write(f"{key}: {values}\n")
    args.out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out / "weights.npz", **arrays)
    meta = {
        "batch": {"size": BATCH, "seed": SEED, "shape": [3, 32, 32], "num_classes": NUM_CLASSES,
                  "inputs": "torch.randn (Generator seed 0)", "labels": "arange(B) % num_classes"},
        "references": {
            **{m: f"SamsungLabs/zero-cost-nas@{zc_commit}: foresight/pruners/measures/{m}.py"
               for m in ("grad_norm", "snip", "grasp", "fisher", "jacob_cov", "synflow")},
            "ntk_trace": f"shuyao95/HNAS@{hnas_commit}: foresight/pruners/measures/ntk_trace.py",
            "ntk_cond": f"shuyao95/HNAS@{hnas_commit}: foresight/pruners/measures/condnum.py",
            **{m: f"taoyang1122/Revisit_TrainingFree_NAS@{revisit_commit}: evaluate_anglefc.py"
               for m in ("lwt_angle", "lwt_loss")},
            "naswot_code": f"BayesWatch/nas-without-training@{naswot_commit}: search.py (hook_logdet), scores.py",
            "tenas_ntk_cond": f"VITA-Group/TENAS@{tenas_commit}: lib/procedures/ntk.py (get_ntk_n)",
            "linear_regions": f"VITA-Group/TENAS@{tenas_commit}: lib/procedures/linear_region_counter.py",
        },
        "torch": torch.__version__,
        "float32_cond_limit": FLOAT32_COND_LIMIT,
        "float64": ["lwt_angle", "lwt_loss"],  # computed (by both sides) on float64 copies of net and batch
        "cases": cases,
    }
    (args.out / "values.json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
