#!/usr/bin/env python
"""Robustness of the query searches (RoBoT, HNAS) over many pools of real scores, against the authors' own loops.

Every pool is a set of NAS-Bench-201 archs with training-free scores; the NB201 CIFAR-10 table is the oracle
(query = 12-epoch valid acc, reported = 200-epoch test acc). A search answers with its best *query*, so the best
answer any such search can give on a pool is the final accuracy of the pool's top arch by query value (the
pool's *attainable* answer). Per pool and method, over ``--seeds`` (T = ``--budget`` distinct queries), the
script prints: the fraction of runs that end on the attainable answer (``hit``), the mean regret against it,
the mean T0 (distinct archs of the BO phase), the mean wall time of one search and the mean / last wall time of
one BO step (the step must not grow with the queries left; ``--step-check`` also times a 1000-budget search on a
40-arch pool, the case that once took 196 s per step).

Pools (``real`` = CIFAR-10 scores computed by NASLib, ``digits`` = scored by raynas on the embedded digits batch):

* ``nbsz`` (real): the 725 NB201 archs of NAS-Bench-Suite-Zero (``$RAYNAS_DATA/nbsz/nb201_cifar10.parquet``),
  NASLib's ``jacov`` read as ``jacob_cov`` and ``nwot`` as ``naswot``;
* ``nbsz/subK`` (real): ``--subpools`` sub-pools of it, drawn without replacement (a pool holds an arch once)
  with fixed seeds ``F..F+K-1`` (``F`` = ``--subpool-first``, default 0), sizes uniform in ``--subpool-sizes``;
* ``--digits [NAME=]RUN[:RUN...][@m1,m2,...]`` (digits, repeatable): score runs of ``raynas score`` (joined on the
  arch), RoBoT over the listed metrics (default: every scored metric but ``params``).

Methods: raynas RoBoT for each ``--robot-settings`` entry (``transform/kernel/acquisition/n_init[/tie_break]``,
tie_break ``earliest`` when left out; the library default is marked ``*``), random search, the best single
metric (greedy top-T by one metric, the best metric of the pool in hindsight), the zero-shot rules (no query), and the yardstick ``authors``: RoBoT's loop as the
paper's Algorithm 1 and the authors' NB201 script run it, on ``bayes_opt`` (the library's ``robot-reference``
search, :class:`raynas.search.robot_reference.RoBoTReference`: BayesianOptimization over ``w in [-1, 1]^K``, UCB
kappa 2.576, GP Matern-5/2 with alpha 1e-6 and normalize_y, ``init_points=0`` so one random point then
``n_iter = T - 1`` suggestions, raw min-max scores (NaN adds 0), top arch = last of an ascending argsort,
``w*`` = the latest of the best, then greedy exploitation under ``w*`` until T distinct archs).
The authors' script passes ``acq='ucb'`` to ``maximize`` (bayes_opt <= 1.4); 3.4.0 has the same GP, kappa and
normalisation but starts L-BFGS-B from the best 10 of its 10,000 random acquisition samples rather than from 10
random points. ``bayes_opt`` is optional: without it the yardstick is skipped with a message.

HNAS (``--hnas RUN[:RUN...]``, pools with ``ntk_trace`` and ``ntk_cond``, plus ``--hnas-subpools`` sub-pools of
each): raynas HNAS for each ``--hnas-settings`` entry (``acquisition/scale/exclude/n_init``) against the HNAS
paper's NB201 procedure (``shuyao95/HNAS nasbench/nasbench2_search.py``): EI (xi 0) on ``bayes_opt``, 5 initial
probes ``t = linspace(0, 1, 5), c = -2``, scale 5e3, ``c in [-4, 0]``, ``t in [0, 1]``, each step adds 2,000
archs drawn with replacement from the pool to the candidates, queried archs excluded, answer = best query.

    python scripts/bench_search_robustness.py --subpools 3 --robot-settings none/rbf_ard/ucb/3,none/matern_iso/ucb/1 \\
        --digits "digits1000=RUN_A:RUN_B@fisher,naswot,ntk_trace,ntk_cond,linear_regions" \\
        --hnas "digits1000-ntk=RUN_NTK" --hnas-subpools 2 --step-check --json /tmp/robust.json
    python scripts/bench_search_robustness.py --merge /tmp/robust.json /tmp/more.json   # tables of saved runs

Cost: one RoBoT run (T=20) is ~20 BO steps of 0.5-3 s on a loaded 2-core CPU; each setting x pool x 10 seeds is
minutes, so choose ``--robot-settings`` / ``--subpools`` / ``--only-pools`` to fit and ``--merge`` the passes.

Scores are never simulated: a pool is real NASLib scores or a scored raynas run.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from raynas.cli.argtypes import positive_int as _positive, seed_list as _seeds  # noqa: E402

log = logging.getLogger("bench_search_robustness")

from raynas.search.defaults import ROBOT_METRICS  # noqa: E402,F401  (the scripts and tests read it from here)
#: NASLib's column names of raynas metrics in the NB-Suite-Zero tables
NASLIB_NAMES = {"jacob_cov": "jacov", "naswot": "nwot"}
DEFAULT_ROBOT_SETTINGS = ("none/rbf_ard/ucb/3,none/rbf_ard/ucb/3/latest,none/matern_iso/ucb/3,"
                          "signed_log/rbf_ard/ucb/3,none/rbf_ard/logei/3,none/rbf_ard/ucb/1")
DEFAULT_HNAS_SETTINGS = "ucb/max/0/3,ucb/max/1/3,logei/max/1/3"
#: the HNAS paper's NB201 settings (nasbench2_search.py defaults)
HNAS_PAPER = {"scale": 5e3, "n_sample": 2000, "init_portion": 0.25, "t_bounds": (0.0, 1.0), "c_bounds": (-4.0, 0.0)}


# ----------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class RobotSetting:
    """One raynas RoBoT configuration of the grid: ``transform/kernel/acquisition/n_init[/tie_break]`` (tie_break:
    which BO point of the best value is w*, ``earliest`` when left out, and then left out of the name, so the
    names of runs saved before the part existed still mean what they ran)."""

    transform: str = "none"
    kernel: str = "rbf_ard"
    acquisition: str = "ucb"
    n_init: int = 3
    tie_break: str = "earliest"

    @classmethod
    def parse(cls, text: str) -> "RobotSetting":
        from raynas.search.robot import TIE_BREAKS

        parts = [p.strip() for p in text.split("/")]
        if len(parts) not in (4, 5):
            raise ValueError(f"a RoBoT setting is transform/kernel/acquisition/n_init[/tie_break], got {text!r}")
        s = cls(parts[0], parts[1], parts[2], int(parts[3]), *parts[4:])
        if s.transform not in ("none", "signed_log") or s.kernel not in ("rbf_ard", "matern_iso") \
                or s.acquisition not in ("ucb", "logei") or s.n_init < 1 or s.tie_break not in TIE_BREAKS:
            raise ValueError(f"unknown RoBoT setting {text!r}")
        return s

    @property
    def name(self) -> str:
        name = f"{self.transform}/{self.kernel}/{self.acquisition}/{self.n_init}"
        return name if self.tie_break == "earliest" else f"{name}/{self.tie_break}"


@dataclass(frozen=True)
class HnasSetting:
    """One raynas HNAS configuration: ``acquisition/scale/exclude_queried(0|1)/n_init``."""

    acquisition: str = "ucb"
    scale: str = "max"
    exclude_queried: bool = False
    n_init: int = 3

    @classmethod
    def parse(cls, text: str) -> "HnasSetting":
        parts = [p.strip() for p in text.split("/")]
        if len(parts) != 4 or parts[2] not in ("0", "1"):
            raise ValueError(f"an HNAS setting is acquisition/scale/exclude(0|1)/n_init, got {text!r}")
        s = cls(parts[0], parts[1], parts[2] == "1", int(parts[3]))
        if s.acquisition not in ("ucb", "logei") or s.scale not in ("max", "median") or s.n_init < 1:
            raise ValueError(f"unknown HNAS setting {text!r}")
        return s

    @property
    def name(self) -> str:
        return f"{self.acquisition}/{self.scale}/{int(self.exclude_queried)}/{self.n_init}"


def library_robot_setting() -> RobotSetting:
    """The setting ``raynas search robot`` uses when none is given (RobotSearchConfig / RoBoTConfig defaults)."""
    from raynas.search.robot import RoBoTConfig
    from raynas.search.runner import RobotSearchConfig

    c, r = RoBoTConfig(), RobotSearchConfig(scores="-", out="-")
    return RobotSetting(r.transform, r.kernel, c.acquisition, c.n_init, r.tie_break)


def library_hnas_setting() -> HnasSetting:
    from raynas.search.hnas import HNASConfig

    c = HNASConfig()
    return HnasSetting(c.acquisition, c.scale, c.exclude_queried, c.n_init)


def _csv(kind: Callable[[str], Any]) -> Callable[[str], list[Any]]:
    def parse(text: str) -> list[Any]:
        try:
            return [kind(t) for t in text.split(",") if t.strip()]
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
    return parse


def _size_range(text: str) -> tuple[int, int]:
    try:
        lo, hi = (int(v) for v in text.split("-"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LO-HI, got {text!r}") from None
    if not 1 <= lo <= hi:
        raise argparse.ArgumentTypeError(f"expected 1 <= LO <= HI, got {text!r}")
    return lo, hi


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nbsz", type=Path, default=None,
                    help="NB-Suite-Zero NB201 table (default $RAYNAS_DATA/nbsz/nb201_cifar10.parquet)")
    ap.add_argument("--no-nbsz", action="store_true", help="leave out the NB-Suite-Zero pools")
    ap.add_argument("--subpools", type=int, default=6, help="sub-pools of the NB-Suite-Zero table (seeds F..F+K-1, F = --subpool-first)")
    ap.add_argument("--subpool-sizes", type=_size_range, default=(200, 725), help="LO-HI archs per sub-pool")
    ap.add_argument("--subpool-first", type=int, default=0,
                    help="seed of the first sub-pool (a pass of other sizes gets names and draws of its own)")
    ap.add_argument("--digits", action="append", default=[],
                    help="digits pool for RoBoT: [NAME=]RUN[:RUN...][@metric,...] (repeatable)")
    ap.add_argument("--only-pools", type=_csv(str), default=None,
                    help="comma list of RoBoT pool names to run (e.g. nbsz,nbsz/sub1); default: all")
    ap.add_argument("--truth", type=Path, default=None, help="nb201_cifar10.parquet (default: $RAYNAS_DATA)")
    ap.add_argument("--budget", type=_positive, default=20, help="T: distinct queries per search")
    ap.add_argument("--seeds", type=_seeds, default=_seeds("10-19"), help="e.g. 10-19 (inclusive) or 1,2,3")
    ap.add_argument("--robot-settings", type=_csv(RobotSetting.parse), default=_csv(RobotSetting.parse)(
        DEFAULT_ROBOT_SETTINGS), help="comma list of transform/kernel/acquisition/n_init[/tie_break]")
    ap.add_argument("--zero-shot-rules", default="az,rank_sum", help="zero-shot rules over the pool's metrics")
    ap.add_argument("--no-authors", action="store_true", help="skip the bayes_opt yardsticks")
    ap.add_argument("--hnas", action="append", default=[], help="HNAS pool: [NAME=]RUN[:RUN...] with ntk_trace, ntk_cond (repeatable)")
    ap.add_argument("--hnas-subpools", type=int, default=3, help="sub-pools of each HNAS pool")
    ap.add_argument("--hnas-no-full", action="store_true", help="only the sub-pools of each HNAS pool")
    ap.add_argument("--hnas-subpool-sizes", type=_size_range, default=(200, 1000))
    ap.add_argument("--hnas-settings", type=_csv(HnasSetting.parse), default=_csv(HnasSetting.parse)(
        DEFAULT_HNAS_SETTINGS), help="comma list of acquisition/scale/exclude(0|1)/n_init")
    ap.add_argument("--step-check", action="store_true",
                    help="also time the BO steps of a 1000-budget RoBoT search on a 40-arch sub-pool")
    ap.add_argument("--json", type=Path, default=None, help="also write every row and run here")
    ap.add_argument("--merge", type=Path, nargs="+", default=None,
                    help="print the tables of earlier --json files (rows recomputed from their runs) and exit")
    return ap


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    args = build_parser().parse_args(argv)
    args.zero_shot_rules = [r.strip() for r in args.zero_shot_rules.split(",") if r.strip()]
    if args.subpools < 0 or args.hnas_subpools < 0 or args.subpool_first < 0:
        build_parser().error("--subpools, --hnas-subpools and --subpool-first must be >= 0")
    return args


# ----------------------------------------------------------------------------- pools
@dataclass
class Pool:
    """A named pool: ``table`` (``arch_index`` + one array per metric), the metrics searched, real or digits."""

    name: str
    source: str  # "real" | "digits"
    table: dict[str, np.ndarray]
    metrics: tuple[str, ...]
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.table["arch_index"])


def read_nbsz_table(path: Path | None = None) -> dict[str, np.ndarray]:
    """The NB-Suite-Zero NB201 table as ``arch_index`` + raynas metric names (NASLib's ``jacov`` -> ``jacob_cov``,
    ``nwot`` -> ``naswot``; other proxy columns keep their name, ``*_seconds`` and keys are dropped)."""
    import pyarrow.parquet as pq

    from raynas.spaces.benchmarks import data_root

    src = path if path is not None else data_root() / "nbsz" / "nb201_cifar10.parquet"
    t = pq.read_table(src)
    back = {v: k for k, v in NASLIB_NAMES.items()}
    out: dict[str, np.ndarray] = {"arch_index": t.column("arch_index").to_numpy().astype(np.int64)}
    for c in t.column_names:
        if c in ("arch_index", "naslib_key", "arch_str", "val_accuracy") or c.endswith("_seconds"):
            continue
        out[back.get(c, c)] = t.column(c).to_numpy(zero_copy_only=False).astype(np.float64)
    return out


def subpool_sizes(k: int, lo: int, hi: int, n: int, first: int = 0) -> list[int]:
    """Sizes of sub-pools ``first..first+k-1``, sub-pool ``i``'s drawn by ``default_rng(i)`` uniformly in
    ``[lo, min(hi, n)]``."""
    hi = min(hi, n)
    lo = min(lo, hi)
    return [int(np.random.default_rng(i).integers(lo, hi + 1)) for i in range(first, first + k)]


def subpool(table: dict[str, np.ndarray], size: int, seed: int) -> dict[str, np.ndarray]:
    """``size`` rows of ``table`` drawn without replacement by ``default_rng(1000 + seed)``, in row order."""
    n = len(table["arch_index"])
    if not 1 <= size <= n:
        raise ValueError(f"sub-pool size {size} outside 1..{n}")
    rows = np.sort(np.random.default_rng(1000 + seed).choice(n, size=size, replace=False))
    return {k: np.asarray(v)[rows] for k, v in table.items()}


def read_run_table(spec: str) -> tuple[dict[str, np.ndarray], tuple[str, ...] | None]:
    """``RUN[:RUN...][@m1,m2]`` -> (wide table of the joined runs as arrays, the metrics after ``@`` or None)."""
    from raynas.search.runner import read_scores_wide

    runs, _, metrics = spec.partition("@")
    wide = read_scores_wide(runs)[0]
    table = {c: wide.column(c).to_numpy(zero_copy_only=False) for c in wide.column_names
             if c not in ("space", "arch", "seed")}
    table["arch_index"] = table["arch_index"].astype(np.int64)
    names = tuple(m.strip() for m in metrics.split(",") if m.strip()) or None
    return {k: (v if k == "arch_index" else np.asarray(v, dtype=np.float64)) for k, v in table.items()}, names


def pool_name(spec: str) -> tuple[str, str]:
    """``[NAME=]RUN[:RUN...][@metrics]`` -> (NAME, or ``digits:`` + the first run's folder name; the rest)."""
    name, eq, rest = spec.partition("=")
    if eq and name and "/" not in name:
        return name, rest
    return f"digits:{Path(spec.split('@')[0].split(':')[0]).name}", spec


def in_oracle(table: dict[str, np.ndarray], oracle: Any) -> dict[str, np.ndarray]:
    """The rows of ``table`` the oracle can answer (all, for NB201 archs)."""
    ok = np.array([0 <= int(a) < len(oracle) for a in table["arch_index"]], dtype=bool)
    return {k: np.asarray(v)[ok] for k, v in table.items()}


def attainable(arch_index: Sequence[int], oracle: Any) -> tuple[int, float, float]:
    """``(top arch by query value, its final, the pool's best final)``; ties in query value: smallest index."""
    ids = sorted(int(i) for i in arch_index)
    top = max(ids, key=lambda i: (oracle.query(i).value, -i))
    return top, oracle.final(top), max(oracle.final(i) for i in ids)


# ----------------------------------------------------------------------------- the authors' RoBoT loop
#: the loop's pure steps, which moved into the library with it (raynas.search.robot_reference), by their old names
_LIBRARY_STEPS = ("authors_top", "authors_normalize", "authors_exploit")


def __getattr__(name: str) -> Any:
    # resolved on first use: importing raynas.search (BoTorch) at load would slow every --help and --merge
    if name in _LIBRARY_STEPS:
        from raynas.search import robot_reference

        return getattr(robot_reference, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def have_bayes_opt() -> bool:
    try:
        import bayes_opt  # noqa: F401
    except ImportError:
        return False
    return True


def authors_robot(table: dict[str, np.ndarray], metrics: Sequence[str], oracle: Any, budget: int,
                  seed: int) -> dict[str, Any]:
    """RoBoT as the authors run it (module docstring): :class:`raynas.search.robot_reference.RoBoTReference` on
    the table's archs (sorted by ``arch_index``), timed as :func:`timed_run`; the same result keys as raynas's."""
    from raynas.search import CandidatePool
    from raynas.search.robot_reference import RoBoTReference

    pool = CandidatePool.from_table(table, list(metrics), "none")
    r = timed_run(RoBoTReference(pool, oracle, budget=budget, seed=seed))
    return {k: r[k] for k in ("arch_index", "final", "queried", "values", "t0", "wall", "bo_steps")}


# ----------------------------------------------------------------------------- the HNAS paper's procedure
def hnas_paper_score(M: np.ndarray, kappa: np.ndarray, t: float, c: float, scale: float) -> np.ndarray:
    """The released script's ``10^c * |M^2 - (t*scale)^2| + kappa / (M + 1e-6)`` (M as stored, no abs)."""
    M = np.asarray(M, dtype=np.float64)
    return 10.0 ** c * np.abs(M * M - (t * scale) ** 2) + np.asarray(kappa, dtype=np.float64) / (M + 1e-6)


def grow_candidates(cands: list[int], rng: np.random.RandomState, n: int, n_sample: int,
                    queried: Sequence[int]) -> list[int]:
    """One step of the script's candidate set: ``n_sample`` positions drawn with replacement from ``n`` added to
    ``cands`` (first occurrences kept, in order), then the queried positions removed."""
    new = rng.choice(n, n_sample).tolist()
    out = list(dict.fromkeys([*cands, *new]))
    q = set(int(p) for p in queried)
    return [p for p in out if p not in q]


def hnas_paper(table: dict[str, np.ndarray], metric: str, oracle: Any, budget: int, seed: int) -> dict[str, Any]:
    """The HNAS paper's NB201 search (module docstring) on ``bayes_opt``, over the archs with finite scores."""
    from bayes_opt import BayesianOptimization
    from bayes_opt.acquisition import ExpectedImprovement

    M = np.asarray(table[metric], dtype=np.float64)
    K = np.asarray(table["ntk_cond"], dtype=np.float64)
    ok = np.isfinite(M) & np.isfinite(K)  # the script keeps the archs whose measures exist
    idx, M, K = np.asarray(table["arch_index"], dtype=np.int64)[ok], M[ok], K[ok]
    budget = min(budget, len(idx))
    rng = np.random.RandomState(seed)  # the script's global np.random.seed(args.seed)
    state: dict[str, list[int]] = {"cands": [], "queried": []}
    stamps: list[float] = []

    def f(target_metric: float, target_coeff: float) -> float:
        state["cands"] = grow_candidates(state["cands"], rng, len(idx), HNAS_PAPER["n_sample"], state["queried"])
        if not state["cands"]:
            return float("nan")
        F = hnas_paper_score(M[state["cands"]], K[state["cands"]], target_metric, target_coeff, HNAS_PAPER["scale"])
        pos = state["cands"][int(np.argsort(F)[0])]
        state["queried"].append(pos)
        stamps.append(time.perf_counter())
        return oracle.query(int(idx[pos])).value

    t0 = time.perf_counter()
    lo_t, hi_t = HNAS_PAPER["t_bounds"]
    opt = BayesianOptimization(f=f, pbounds={"target_metric": HNAS_PAPER["t_bounds"],
                                             "target_coeff": HNAS_PAPER["c_bounds"]},
                               random_state=seed, verbose=0, acquisition_function=ExpectedImprovement(xi=0.0))
    n_init = min(int(budget * HNAS_PAPER["init_portion"]), 10)
    for t in np.linspace(lo_t, hi_t, n_init):
        opt.probe(params={"target_metric": float(t), "target_coeff": -2.0}, lazy=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        opt.maximize(init_points=0, n_iter=budget - n_init)
    archs = [int(idx[p]) for p in state["queried"]]
    values = [oracle.query(a).value for a in archs]
    pick = archs[int(np.argmax(values))]
    steps = np.diff([t0, *stamps])
    return {"arch_index": pick, "final": oracle.final(pick), "queried": archs, "values": values, "t0": None,
            "wall": time.perf_counter() - t0, "bo_steps": [float(s) for s in steps]}


# ----------------------------------------------------------------------------- raynas runs
def timed_run(search: Any) -> dict[str, Any]:
    """``search.run()`` with the wall time of the whole search and of every BO step (one per told row)."""
    stamps: list[tuple[str, float]] = []
    t0 = time.perf_counter()
    r = search.run(on_step=lambda row: stamps.append((row["kind"], time.perf_counter())))
    r["wall"] = time.perf_counter() - t0
    times = np.diff([t0, *[s for _, s in stamps]])
    r["bo_steps"] = [float(d) for (k, _), d in zip(stamps, times) if k == "bo"]
    return r


# ----------------------------------------------------------------------------- summary
def summarize(method: str, results: list[dict[str, Any]], target: float) -> dict[str, Any]:
    """Per method on one pool: runs, hit fraction (final >= ``target``, the attainable answer; above it only
    when the search never queried the pool's top arch by query value), mean regret against it (negative: such a
    lucky answer), mean final, mean T0 (None when no run has one), mean wall per search and mean / last BO step."""
    finals = np.array([r["final"] for r in results], dtype=np.float64)
    t0s = [r["t0"] for r in results if r.get("t0") is not None]
    steps = [r.get("bo_steps") or [] for r in results]
    flat = [s for ss in steps for s in ss]
    last = [ss[-1] for ss in steps if ss]
    return {"method": method, "runs": len(results),
            "hit": float(np.mean(finals >= target - 1e-9)),
            "regret": float(np.mean(target - finals)), "final_mean": float(finals.mean()),
            "final_std": float(finals.std()),
            "t0": float(np.mean(t0s)) if t0s else None,
            "wall": float(np.mean([r.get("wall", 0.0) for r in results])),
            "step_ms": 1e3 * float(np.mean(flat)) if flat else None,
            "last_step_ms": 1e3 * float(np.mean(last)) if last else None}


def format_table(pool_rows: list[tuple[Pool, dict[str, Any], list[dict[str, Any]]]]) -> str:
    """Markdown: one line per (pool, method)."""
    head = ("| pool | source | archs | method | hit | regret | final | T0 | wall (s) | BO step ms (mean / last) |\n"
            "|---|---|---:|---|---:|---:|---:|---:|---:|---:|")
    lines = [head]
    for pool, info, rows in pool_rows:
        for r in rows:
            t0 = f"{r['t0']:.1f}" if r["t0"] is not None else "-"
            st = f"{r['step_ms']:.0f} / {r['last_step_ms']:.0f}" if r["step_ms"] is not None else "-"
            lines.append(f"| {pool.name} | {pool.source} | {len(pool)} | {r['method']} | {r['hit']:.2f} | "
                         f"{r['regret']:.3f} | {r['final_mean']:.2f} ± {r['final_std']:.2f} | {t0} | "
                         f"{r['wall']:.2f} | {st} |")
    return "\n".join(lines)


def overall(pool_rows: list[tuple[Pool, dict[str, Any], list[dict[str, Any]]]], yardstick: str) -> str:
    """Per method over all pools: min hit, mean hit, pools under 95 % hits, mean regret, pools with a mean regret
    above the yardstick's on the same pool (``-`` without a yardstick)."""
    by: dict[str, list[tuple[dict[str, Any], dict[str, Any] | None]]] = {}
    for _, _, rows in pool_rows:
        ref = next((r for r in rows if r["method"] == yardstick), None)
        for r in rows:
            # the best single metric is a different metric per pool: one row for all of them
            key = "best single (per pool)" if r["method"].startswith("best single") else r["method"]
            by.setdefault(key, []).append((r, ref))
    lines = ["| method | pools | min hit | mean hit | pools < 95 % | mean regret | pools worse than "
             f"{yardstick} |", "|---|---:|---:|---:|---:|---:|---:|"]
    for m, items in by.items():
        hits = [r["hit"] for r, _ in items]
        refs = [(r, ref) for r, ref in items if ref is not None]
        worse = sum(r["regret"] > ref["regret"] + 1e-9 for r, ref in refs) if refs else None
        lines.append(f"| {m} | {len(items)} | {min(hits):.2f} | {np.mean(hits):.2f} | "
                     f"{sum(h < 0.95 for h in hits)} | {np.mean([r['regret'] for r, _ in items]):.3f} | "
                     f"{'-' if worse is None else f'{worse} of {len(refs)}'} |")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- benchmark
def robot_pool(pool: Pool, oracle: Any, args: argparse.Namespace, default: RobotSetting,
               authors: bool) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, list[dict[str, Any]]]]:
    from raynas.metrics import get_metric
    from raynas.search import CandidatePool, RoBoT, random_search, single_metric_greedy
    from raynas.search.zero_shot import rank_pool

    top, att, best = attainable(pool.table["arch_index"], oracle)
    info = {"top_query_arch": top, "attainable": att, "pool_best": best, "size": len(pool)}
    runs: dict[str, list[dict[str, Any]]] = {}
    pools = {}
    for s in args.robot_settings:
        cp = pools.setdefault(s.transform, CandidatePool.from_table(pool.table, pool.metrics, s.transform))
        label = f"RoBoT {s.name}{' *' if s == default else ''}"
        runs[label] = [timed_run(RoBoT(cp, oracle, budget=args.budget, seed=seed, n_init=s.n_init,
                                       acquisition=s.acquisition, kernel=s.kernel,  # type: ignore[arg-type]
                                       tie_break=s.tie_break))  # type: ignore[arg-type]
                       for seed in args.seeds]
    if authors:
        runs["authors (bayes_opt)"] = [authors_robot(pool.table, pool.metrics, oracle, args.budget, seed)
                                       for seed in args.seeds]
    cp = pools.get("none") or CandidatePool.from_table(pool.table, pool.metrics, "none")
    runs["random"] = [random_search(cp, oracle, args.budget, seed=seed) for seed in args.seeds]
    greedy = {m: single_metric_greedy(cp, oracle, args.budget, m, get_metric(m).higher_is_better)
              for m in pool.metrics}
    bm = max(greedy, key=lambda m: greedy[m]["final"])
    runs[f"best single ({bm})"] = [greedy[bm]] * len(args.seeds)
    directions = [get_metric(m).higher_is_better for m in pool.metrics]
    for rule in args.zero_shot_rules:
        _, order = rank_pool(cp, rule, directions)
        a = int(cp.arch_index[order[0]])
        runs[f"zero-shot {rule}"] = [{"arch_index": a, "final": oracle.final(a), "t0": None}] * len(args.seeds)
    rows = [summarize(m, rs, att) for m, rs in runs.items()]
    return info, rows, runs


def hnas_pool(pool: Pool, oracle: Any, args: argparse.Namespace, default: HnasSetting,
              authors: bool) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, list[dict[str, Any]]]]:
    from raynas.search import random_search
    from raynas.search.hnas import HNAS

    cp = HNAS.pool_from_table(pool.table, "ntk_trace")
    valid = np.isfinite(cp.raw).all(axis=1) & (cp.raw[:, 0] != 0)
    top, att, best = attainable(cp.arch_index[valid], oracle)
    info = {"top_query_arch": top, "attainable": att, "pool_best": best, "size": len(pool)}
    runs: dict[str, list[dict[str, Any]]] = {}
    for s in args.hnas_settings:
        label = f"HNAS {s.name}{' *' if s == default else ''}"
        runs[label] = [timed_run(HNAS(cp, oracle, metric="ntk_trace", budget=args.budget, seed=seed,
                                      n_init=s.n_init, acquisition=s.acquisition, scale=s.scale,
                                      exclude_queried=s.exclude_queried)) for seed in args.seeds]
    if authors:
        runs["HNAS paper (bayes_opt)"] = [hnas_paper(pool.table, "ntk_trace", oracle, args.budget, seed)
                                          for seed in args.seeds]
    runs["random"] = [random_search(cp, oracle, args.budget, seed=seed) for seed in args.seeds]
    rows = [summarize(m, rs, att) for m, rs in runs.items()]
    return info, rows, runs


def step_check(table: dict[str, np.ndarray], metrics: Sequence[str], oracle: Any) -> dict[str, Any]:
    """A 1000-budget RoBoT search (library defaults) on a 40-arch sub-pool: its BO steps' wall times."""
    from raynas.search import CandidatePool, RoBoT

    cp = CandidatePool.from_table(subpool(table, 40, 0), metrics)
    r = timed_run(RoBoT(cp, oracle, budget=1000, seed=0))
    s = r["bo_steps"]
    half = len(s) // 2
    return {"bo_steps": len(s), "steps": r["steps"], "wall": r["wall"], "first_half_ms": 1e3 * float(np.mean(s[:half]))
            if half else None, "second_half_ms": 1e3 * float(np.mean(s[half:])) if s else None,
            "max_ms": 1e3 * float(max(s)) if s else None, "bo_stop": r.get("bo_stop")}


def robot_pools(args: argparse.Namespace, oracle: Any) -> list[Pool]:
    pools: list[Pool] = []
    if not args.no_nbsz:
        t = in_oracle(read_nbsz_table(args.nbsz), oracle)
        pools.append(Pool("nbsz", "real", t, ROBOT_METRICS, "NB-Suite-Zero NB201 CIFAR-10 (NASLib)"))
        sizes = subpool_sizes(args.subpools, *args.subpool_sizes, len(t["arch_index"]), args.subpool_first)
        for i, n in enumerate(sizes, start=args.subpool_first):
            pools.append(Pool(f"nbsz/sub{i}", "real", subpool(t, n, i), ROBOT_METRICS))
    for spec in args.digits:
        from raynas.search.runner import searched_metrics

        name, spec = pool_name(spec)
        t, names = read_run_table(spec)
        metrics = names or searched_metrics([c for c in t if c != "arch_index"])
        pools.append(Pool(name, "digits", in_oracle(t, oracle), tuple(metrics), spec))
    if args.only_pools is not None:
        unknown = sorted(set(args.only_pools) - {p.name for p in pools})
        if unknown:
            raise SystemExit(f"--only-pools: no pool named {unknown} (pools: {[p.name for p in pools]})")
        pools = [p for p in pools if p.name in args.only_pools]
    return pools


def merge(paths: Sequence[Path]) -> str:
    """The RoBoT and HNAS tables of several ``--json`` files, each pool's rows recomputed from its runs by
    :func:`summarize` (the same pool in several files: its methods are joined, a later file's run of a method
    replaces an earlier one)."""
    text = []
    for kind, yard in (("robot", "authors (bayes_opt)"), ("hnas", "HNAS paper (bayes_opt)")):
        pools: dict[str, tuple[Pool, dict[str, Any], dict[str, list[dict[str, Any]]]]] = {}
        for path in paths:
            for p in json.loads(Path(path).read_text()).get(kind, []):
                pool = Pool(p["pool"], p["source"], {"arch_index": np.zeros(p["size"])}, tuple(p.get("metrics", ())))
                entry = pools.setdefault(p["pool"], (pool, {"attainable": p["attainable"]}, {}))
                entry[2].update(p["runs"])
        if pools:
            res = [(pool, info, [summarize(m, rs, info["attainable"]) for m, rs in runs.items()])
                   for pool, info, runs in pools.values()]
            text += [f"\n## {'RoBoT' if kind == 'robot' else 'HNAS'}\n", format_table(res), "", overall(res, yard)]
    return "\n".join(text)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.merge:
        print(merge(args.merge))
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("raynas").setLevel(logging.WARNING)
    from raynas.search import BenchmarkTableOracle

    oracle = BenchmarkTableOracle("nb201", args.truth)
    authors = not args.no_authors and have_bayes_opt()
    if not args.no_authors and not authors:
        print("bayes_opt is not installed (pip install bayesian-optimization): the authors' loops are skipped")
    out: dict[str, Any] = {"budget": args.budget, "seeds": args.seeds, "robot": [], "hnas": []}
    dflt = library_robot_setting()
    print(f"\nNB201 CIFAR-10 table oracle, T={args.budget}, seeds {args.seeds[0]}..{args.seeds[-1]}; "
          f"library RoBoT default (*): {dflt.name}; hit = an answer at least the pool's attainable one")
    results = []
    t_all = time.perf_counter()
    for pool in robot_pools(args, oracle):
        t = time.perf_counter()
        info, rows, runs = robot_pool(pool, oracle, args, dflt, authors)
        log.info("RoBoT pool %s (%d archs, %s): %.0f s", pool.name, len(pool), ",".join(pool.metrics),
                 time.perf_counter() - t)
        results.append((pool, info, rows))
        out["robot"].append({"pool": pool.name, "source": pool.source, "metrics": list(pool.metrics),
                             "notes": pool.notes, **info, "rows": rows, "runs": runs})
        _dump(args.json, out)
    if results:
        print("\n## RoBoT\n")
        print(format_table(results))
        print("\n" + overall(results, "authors (bayes_opt)"))
    hdflt = library_hnas_setting()
    hres = []
    for spec in args.hnas:
        name, spec = pool_name(spec)
        t, _ = read_run_table(spec)
        t = in_oracle(t, oracle)
        hp = [] if args.hnas_no_full else [Pool(name, "digits", t, ("ntk_trace", "ntk_cond"), spec)]
        for i, n in enumerate(subpool_sizes(args.hnas_subpools, *args.hnas_subpool_sizes, len(t["arch_index"]))):
            hp.append(Pool(f"{name}/sub{i}", "digits", subpool(t, n, i), ("ntk_trace", "ntk_cond")))
        for pool in hp:
            tt = time.perf_counter()
            info, rows, runs = hnas_pool(pool, oracle, args, hdflt, authors)
            log.info("HNAS pool %s: %.0f s", pool.name, time.perf_counter() - tt)
            hres.append((pool, info, rows))
            out["hnas"].append({"pool": pool.name, "source": pool.source, **info, "rows": rows, "runs": runs})
            _dump(args.json, out)
    if hres:
        print(f"\n## HNAS (library default *: {hdflt.name})\n")
        print(format_table(hres))
        print("\n" + overall(hres, "HNAS paper (bayes_opt)"))
    if args.step_check:
        sc = step_check(read_nbsz_table(args.nbsz), ROBOT_METRICS, oracle)
        out["step_check"] = sc
        print(f"\nstep check: RoBoT budget 1000 on a 40-arch nbsz sub-pool: {sc['bo_steps']} BO steps "
              f"(BO ended: {sc['bo_stop']}), {sc['steps']} steps in {sc['wall']:.1f} s; BO step mean "
              f"{sc['first_half_ms']:.0f} ms (first half) / {sc['second_half_ms']:.0f} ms (second half), "
              f"max {sc['max_ms']:.0f} ms")
    print(f"\ntotal {time.perf_counter() - t_all:.0f} s")
    _dump(args.json, out)
    return 0


def _dump(path: Path | None, out: dict[str, Any]) -> None:
    """Write ``out`` to ``path`` (after every pool, so a long run keeps what it measured)."""
    if path is not None:
        path.write_text(json.dumps(out, indent=1, default=float))


if __name__ == "__main__":
    sys.exit(main())
