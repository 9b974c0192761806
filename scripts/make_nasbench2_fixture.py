"""Regenerate ``tests/parity/fixture/nasbench2.npz``: zero-cost-nas's ``nasbench2`` network vs raynas's.

zero-cost-nas, HNAS and RoBoT score NAS-Bench-201 cells on ``foresight/models/nasbench2.py`` of
SamsungLabs/zero-cost-nas, not on the benchmark's network. raynas builds that network with
``NB201Space.to_module(arch, num_classes, network="zero_cost_nas")``. This script proves the two are the same
function: for each case it builds the reference network with the reference's own constructor
(``get_model_from_arch_str``), gives its BatchNorms non-trivial affine parameters and running statistics,
copies every parameter and buffer into raynas's network through an explicit name mapping (one to one, equal
shapes; anything unmatched is an error), and records the reference's logits on one batch in train and in eval
mode. ``tests/parity/test_nasbench2_network.py`` rebuilds raynas's network from the stored state dict alone
and asserts the same logits.

Nothing of the reference is copied here: it is imported from a local checkout given on the command line, in a
scratch environment outside this repository (a venv with torch and numpy, raynas installed ``--no-deps``):

    python scripts/make_nasbench2_fixture.py --zero-cost-nas /path/to/zero-cost-nas \
        [--out tests/parity/fixture/nasbench2.npz]

The reference fixes ``N=5`` cells per stage (its constructor has no option for it) and takes the width as
``init_channels``; ``C=4`` keeps the file small (the all-``nor_conv_3x3`` case dominates it).

What is not mapped, on purpose: the reference's cells instantiate all five candidate ops on every edge and run
only the chosen one (``keep_mask``). The other ops' parameters are dead: they are checked to receive no
gradient and are left out (raynas builds only the chosen op). Every other reference entry must map.

File layout (``np.load(..., allow_pickle=False)``): ``inputs`` ``[8, 3, 32, 32]`` float32; per case
``{case}/state/{raynas state_dict key}``, ``{case}/logits_train`` and ``{case}/logits_eval``
``[8, NUM_CLASSES]`` float32; ``meta`` a JSON string (cases with their arch strings, the settings, the
reference commit).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from raynas.spaces.nb201.space import NB201Arch, NB201Space  # noqa: E402

#: the reference hard-codes five cells per stage
C, N, NUM_CLASSES, BATCH, SEED = 4, 5, 10, 8, 0
#: case -> edge ops (1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2); ``official_0`` is filled in from the space
CASES: dict[str, tuple[str, ...] | None] = {
    "official_0": None,  # avg_pool, nor_conv_1x1 and skip_connect
    "all_conv3x3": ("nor_conv_3x3",) * 6,
    "skip_none": ("skip_connect", "none", "skip_connect", "none", "none", "skip_connect"),
    "avg_pool_mix": ("avg_pool_3x3", "nor_conv_1x1", "avg_pool_3x3", "none", "nor_conv_3x3", "avg_pool_3x3"),
    "all_avg_pool": ("avg_pool_3x3",) * 6,
}


def _reference_module(checkout: Path) -> Any:
    sys.path.insert(0, str(checkout))
    from foresight.models import nasbench2  # type: ignore[import-not-found]

    return nasbench2


def _randomise_bns(net: nn.Module, gen: torch.Generator) -> None:
    """Non-trivial BN weights and biases, and running statistics of the activations' own scale.

    A mis-mapped BN must change the logits, so the affine parameters are drawn at random; the running
    statistics are the cumulative averages over a few random batches (``momentum=None`` for those passes),
    so eval-mode logits stay of the train-mode scale instead of exploding through the stacked skip cells
    (which the default statistics 0 / 1 would do, hiding any difference under a huge magnitude).
    """
    bns = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    with torch.no_grad():
        for m in bns:
            if m.affine:
                m.weight.copy_(torch.empty_like(m.weight).uniform_(0.5, 1.5, generator=gen))
                m.bias.copy_(torch.empty_like(m.bias).normal_(0.0, 0.2, generator=gen))
        momenta = [m.momentum for m in bns]
        for m in bns:
            m.momentum = None
        net.train()
        for _ in range(3):
            net(torch.randn(BATCH, 3, 32, 32, generator=gen))
        for m, momentum in zip(bns, momenta):
            m.momentum = momentum


def map_names(
    ref_keys: list[str], arch: NB201Arch, ref_ops: list[str], n_cells: int
) -> tuple[dict[str, str], list[str]]:
    """``(reference key -> raynas key, dead reference keys)``.

    Reference layout (``nasbench2.NAS201Model``): ``stem.net.{0,1}``, ``stack_cell{s}.{n}.options.{k}.op.{1,2}``
    with ``k = edge * len(ref_ops) + ref_ops.index(op)``, ``reduction{r}.conv_{a,b}.op.{1,2}``,
    ``reduction{r}.residual.1``, ``top.lastact.0``, ``top.classifier``. raynas (``NB201Network``): ``stem.{0,1}``,
    ``cells.{i}`` (stage ``s`` cell ``n`` at ``i = s * (N + 1) + n``, the reduction before stage ``s`` at
    ``s * (N + 1) - 1``) with ``edge_ops.{edge}.{1,2}``, ``conv_{a,b}.{1,2}``, ``downsample.1``; ``lastact.0``,
    ``classifier``. Raises ``SystemExit`` for a key that fits no rule.
    """
    kept = {e * len(ref_ops) + ref_ops.index(op): e for e, op in enumerate(arch.ops)}
    mapping: dict[str, str] = {}
    dead: list[str] = []
    for key in ref_keys:
        if m := re.fullmatch(r"stem\.net\.([01])\.(\w+)", key):
            mapping[key] = f"stem.{m[1]}.{m[2]}"
        elif m := re.fullmatch(r"stack_cell([123])\.(\d+)\.options\.(\d+)\.op\.([12])\.(\w+)", key):
            stage, cell, k = int(m[1]) - 1, int(m[2]), int(m[3])
            if k not in kept:
                dead.append(key)
                continue
            mapping[key] = f"cells.{stage * (n_cells + 1) + cell}.edge_ops.{kept[k]}.{m[4]}.{m[5]}"
        elif m := re.fullmatch(r"reduction([12])\.(conv_[ab])\.op\.([12])\.(\w+)", key):
            mapping[key] = f"cells.{int(m[1]) * (n_cells + 1) - 1}.{m[2]}.{m[3]}.{m[4]}"
        elif m := re.fullmatch(r"reduction([12])\.residual\.1\.(\w+)", key):
            mapping[key] = f"cells.{int(m[1]) * (n_cells + 1) - 1}.downsample.1.{m[2]}"
        elif m := re.fullmatch(r"top\.lastact\.0\.(\w+)", key):
            mapping[key] = f"lastact.0.{m[1]}"
        elif m := re.fullmatch(r"top\.classifier\.(\w+)", key):
            mapping[key] = f"classifier.{m[1]}"
        else:
            raise SystemExit(f"reference key {key!r} fits no mapping rule")
    return mapping, dead


def build_case(nb2: Any, space: NB201Space, name: str, arch: NB201Arch, inputs: torch.Tensor) -> dict[str, Any]:
    torch.manual_seed(SEED)
    ref = nb2.get_model_from_arch_str(str(arch), NUM_CLASSES, init_channels=C)
    _randomise_bns(ref, torch.Generator().manual_seed(SEED + 1))
    ref_state = {k: v.clone() for k, v in ref.state_dict().items()}  # state_dict() aliases the live tensors

    ours = space.to_module(arch, NUM_CLASSES, C=C, N=N, network="zero_cost_nas")
    our_state = ours.state_dict()
    mapping, dead = map_names(list(ref_state), arch, list(nb2.OPS), N)
    targets = list(mapping.values())
    if len(set(targets)) != len(targets):
        raise SystemExit(f"{name}: two reference entries map onto one raynas entry")
    missing, extra = sorted(set(our_state) - set(targets)), sorted(set(targets) - set(our_state))
    if missing or extra:
        raise SystemExit(f"{name}: raynas entries without a reference entry {missing}; mapped to nothing {extra}")
    for rk, ok in mapping.items():
        if ref_state[rk].shape != our_state[ok].shape or ref_state[rk].dtype != our_state[ok].dtype:
            raise SystemExit(f"{name}: {rk} {tuple(ref_state[rk].shape)} vs {ok} {tuple(our_state[ok].shape)}")
    state = {ok: ref_state[rk].clone() for rk, ok in mapping.items()}
    ours.load_state_dict(state, strict=True)

    # eval first: a train-mode forward updates the running statistics the eval pass reads
    ref.eval()
    ours.eval()
    with torch.no_grad():
        ref_eval, our_eval = ref(inputs), ours(inputs)
    ref.load_state_dict(ref_state)
    ref.train()
    ref_train = ref(inputs)
    ref_train.sum().backward()  # the dead candidate ops must not see a gradient
    ref_params = dict(ref.named_parameters())
    live_dead = [k for k in dead if k in ref_params and ref_params[k].grad is not None]
    if live_dead:
        raise SystemExit(f"{name}: reference entries left unmapped but used in the forward pass: {live_dead}")
    ours.load_state_dict(state, strict=True)
    ours.train()
    with torch.no_grad():
        our_train = ours(inputs)
    diffs = {
        "train": float((our_train - ref_train.detach()).abs().max()),
        "eval": float((our_eval - ref_eval).abs().max()),
    }
    sys.stdout.write(
        f"{name:14s} {arch!s}\n  mapped {len(mapping)} entries, {len(dead)} dead; "
        f"max |logits| train {float(ref_train.detach().abs().max()):.4g} eval {float(ref_eval.abs().max()):.4g}; "
        f"max abs diff train {diffs['train']:.3g} eval {diffs['eval']:.3g}\n"
    )
    return {
        "state": {k: v.detach().cpu().numpy() for k, v in state.items()},
        "logits_train": ref_train.detach().cpu().numpy(),
        "logits_eval": ref_eval.cpu().numpy(),
        "diffs": diffs,
        "n_dead": len(dead),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--zero-cost-nas", type=Path, required=True, help="checkout of SamsungLabs/zero-cost-nas")
    p.add_argument("--out", type=Path, default=REPO / "tests" / "parity" / "fixture" / "nasbench2.npz")
    args = p.parse_args(argv)

    nb2 = _reference_module(args.zero_cost_nas.resolve())
    commit = subprocess.run(["git", "-C", str(args.zero_cost_nas), "rev-parse", "HEAD"], capture_output=True,
                            text=True, check=True).stdout.strip()
    space = NB201Space()
    inputs = torch.randn(BATCH, 3, 32, 32, generator=torch.Generator().manual_seed(SEED))
    arrays: dict[str, np.ndarray] = {"inputs": inputs.numpy()}
    meta: dict[str, Any] = {"C": C, "N": N, "num_classes": NUM_CLASSES, "network": "zero_cost_nas",
                            "reference": {"repo": "SamsungLabs/zero-cost-nas", "commit": commit,
                                          "file": "foresight/models/nasbench2.py"},
                            "cases": {}}
    for name, ops in CASES.items():
        arch = space.index_to_arch(0) if ops is None else NB201Arch(ops)
        out = build_case(nb2, space, name, arch, inputs)
        for k, v in out["state"].items():
            arrays[f"{name}/state/{k}"] = v
        arrays[f"{name}/logits_train"] = out["logits_train"]
        arrays[f"{name}/logits_eval"] = out["logits_eval"]
        meta["cases"][name] = {"arch": str(arch), "dead_reference_entries": out["n_dead"],
                               "max_abs_diff_at_generation": out["diffs"]}
    arrays["meta"] = np.array(json.dumps(meta, indent=1, sort_keys=True))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **arrays)
    sys.stdout.write(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB)\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
