"""Zero-shot search: rank a scored pool by a rank-aggregation rule of several metrics and answer its top arch.

No query is made: the search reads the pool's scores only (``raynas search zero-shot``). Each metric's column is
first oriented by its registered direction (``-x`` for a lower-is-better metric), so that higher is better for
every rule; a failed score (NaN, +-inf) ranks below every finite one (AZ-NAS's reference records -inf for a
failed term, which ranks last), ties among failed scores share their ranks as other ties do.

Rules (:data:`RULES`, unknown names are :class:`~raynas.errors.UnknownNameError`):

``az``
    AZ-NAS's non-linear rank aggregation (Lee & Ham, CVPR 2024; cvlab-yonsei/AZ-NAS ``tss_general.ipynb`` (NAS-Bench-201 folder)):
    ``sum_k log(rank_k / P)``, ``rank_k`` the average rank (1 = worst, ``P`` = best; ``scipy.stats.rankdata``)
    of metric ``k`` over the ``P`` archs of the pool. Default metrics: AZ-NAS's four terms.
``rank_sum``
    the plain sum of the average ranks (the notebook's TE-NAS combination). Default metrics: AZ-NAS's four terms,
    as ``az`` (named in ``--help``, ``raynas list`` and the result's ``metrics``).
``revisit``
    Revisit's nested ordinal combination (Yang et al., WACV 2023; taoyang1122/Revisit_TrainingFree_NAS
    ``evaluate_anglefc.py``): ``r = ord(m_1)``, then ``r = ord(r) + ord(m_k)`` for each further metric, ``ord`` the
    0-based ordinal rank (``argsort(argsort(x))``; ties broken by ``arch_index`` here, the file's quicksort
    leaves them unspecified). With its metrics ``lwt_angle, lwt_loss, params`` this is the file's
    ``rank_param + ord(ord(angle) + ord(loss))``. Default metrics: those three.
``vkdnw``
    VKDNW's aggregate (Tybl & Neumann, CVPR 2025; ondratybl/VKDNW ``ImageNet_MBV2/evolution_search_vkdnw.py``,
    the ranking of its population, lines 320-327; the NAS-Bench-201 driver its README names, ``tss_general_.py``,
    is not in the repository): ``sum_k log(rank_k / P)`` as ``az`` (``scipy.stats.rankdata``, ascending, average
    ties), accumulated term by term in the file's order ``complexity, expressivity, progressivity,
    vkdnw_entropy, trainability``. Default metrics, in that order: ``az_nas_complexity`` (the file's
    ``complexity`` is the network's FLOPs, ``model.get_FLOPs``; AZ-NAS's NAS-Bench-201 term is the API's FLOPs, which
    raynas's ``az_nas_complexity`` counts), ``az_nas_expressivity``, ``az_nas_progressivity`` (the file's
    ``compute_vkdnw_score`` computes these two and ``trainability`` with AZ-NAS's code), ``vkdnw``,
    ``az_nas_trainability``. Where the reference's SVD fails it scores vkdnw 0; raynas records a failure, ranked
    last.
``swap_reg``
    SWAP-NAS's regularised SWAP-Score (Peng et al., ICLR 2024; pym1024/SWAP ``src/metrics/swap.py``
    ``cal_regular_factor``, ``SWAP(regular=True, mu, sigma)``): ``swap * exp(-(Theta - mu)^2 / sigma)``,
    ``Theta`` the parameter count in thousands (the file's ``count_parameters``: ``numel`` sum / 1e3). Not a
    rank aggregation: the score itself, from the pool's ``swap`` and ``params`` columns (in that order).
    ``mu`` (thousands of parameters) and ``sigma`` (thousands squared) are required options
    (:attr:`ZeroShotConfig.mu`, ``--mu``/``--sigma``): the repository defines no value (its ``SWAP`` defaults
    are ``None``, ``correlation.py`` runs unregularised) and the paper uses the factor to steer the model size
    towards ``mu``, so they are the user's. A failed ``swap`` or ``params`` is -inf.

The top arch is the first maximum of the aggregate in ``arch_index`` order (``np.argmax``, as the authors').
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from scipy.stats import rankdata

from raynas.config import from_dict, to_dict
from raynas.errors import ConfigError, SearchError
from raynas.metrics import get_metric
from raynas.registry import Registry
from raynas.search.pool import CandidatePool
from raynas.search.session import load_checked_pool, pool_answer
from raynas.store import SearchDir, prepare_search

log = logging.getLogger(__name__)

#: ``rule(oriented [P, K], **options) -> aggregate [P]`` (higher is better); ``oriented`` has -inf for failed
#: scores; ``options`` the rule's numeric options (:attr:`RankRule.options`) by name
RuleFn = Callable[..., np.ndarray]


@dataclass(frozen=True)
class RankRule:
    """A registered rank-aggregation rule: its function, default metrics and one-line description; ``options``
    the numeric options it requires (passed to ``fn`` by name; a rule without options refuses them);
    ``n_metrics`` the number of metric columns it takes (None: any)."""

    fn: RuleFn
    default_metrics: tuple[str, ...]
    doc: str
    options: tuple[str, ...] = ()
    n_metrics: int | None = None


RULES: Registry[RankRule] = Registry("zero-shot rule")

AZ_METRICS = ("az_nas_expressivity", "az_nas_progressivity", "az_nas_trainability", "az_nas_complexity")
REVISIT_METRICS = ("lwt_angle", "lwt_loss", "params")
#: VKDNW's five terms in the order its evolution search sums them (complexity, expressivity, progressivity,
#: vkdnw_entropy, trainability)
VKDNW_METRICS = ("az_nas_complexity", "az_nas_expressivity", "az_nas_progressivity", "vkdnw", "az_nas_trainability")
SWAP_REG_METRICS = ("swap", "params")


def average_ranks(x: np.ndarray) -> np.ndarray:
    """Average ranks ``1..P`` of each column of ``x`` ``[P, K]`` (higher value, higher rank; -inf lowest)."""
    return np.stack([rankdata(x[:, k], method="average") for k in range(x.shape[1])], axis=1)


def ordinal_ranks(v: np.ndarray) -> np.ndarray:
    """0-based ordinal ranks of ``v`` ``[P]`` (``argsort(argsort(v))``, ties in position order)."""
    return np.argsort(np.argsort(v, kind="stable"), kind="stable")


def _az(x: np.ndarray) -> np.ndarray:
    return np.log(average_ranks(x) / x.shape[0]).sum(axis=1)


def _rank_sum(x: np.ndarray) -> np.ndarray:
    return average_ranks(x).sum(axis=1)


def _log_rank_sum_in_order(x: np.ndarray) -> np.ndarray:
    """``sum_k log(rank_k / P)`` added column after column (the float order of VKDNW's loop)."""
    ranks = average_ranks(x)
    total = np.log(ranks[:, 0] / x.shape[0])
    for k in range(1, x.shape[1]):
        total = total + np.log(ranks[:, k] / x.shape[0])
    return total


def swap_regular_factor(params: np.ndarray, mu: float, sigma: float) -> np.ndarray:
    """SWAP-NAS's ``exp(-(Theta - mu)^2 / sigma)``, ``Theta = params / 1e3`` (thousands of parameters, as the
    authors' ``count_parameters``)."""
    theta = np.asarray(params, dtype=np.float64) / 1e3
    return np.exp(-((theta - mu) ** 2) / sigma)


def _swap_reg(x: np.ndarray, *, mu: float, sigma: float) -> np.ndarray:
    swap, params = x[:, 0], x[:, 1]
    ok = np.isfinite(swap) & np.isfinite(params)
    with np.errstate(invalid="ignore", over="ignore"):
        value = swap * swap_regular_factor(np.where(ok, params, 0.0), mu, sigma)
    return np.where(ok, value, -np.inf)


def _revisit(x: np.ndarray) -> np.ndarray:
    r = ordinal_ranks(x[:, 0])
    for k in range(1, x.shape[1]):
        r = ordinal_ranks(r) + ordinal_ranks(x[:, k])
    return r.astype(np.float64)


RULES.add("az", RankRule(_az, AZ_METRICS, "AZ-NAS: sum of log(rank / P) (CVPR 2024)"))
RULES.add("rank_sum", RankRule(_rank_sum, AZ_METRICS, "sum of average ranks (default metrics: AZ-NAS's four terms)"))
RULES.add("revisit", RankRule(_revisit, REVISIT_METRICS,
                              "Revisit: nested ordinal rank sums, r = ord(r) + ord(m_k) (WACV 2023)"))
RULES.add("vkdnw", RankRule(_log_rank_sum_in_order, VKDNW_METRICS,
                            "VKDNW: sum of log(rank / P) over FLOPs, AZ-NAS's three feature terms and vkdnw "
                            "(CVPR 2025)"))
RULES.add("swap_reg", RankRule(_swap_reg, SWAP_REG_METRICS,
                               "SWAP-NAS regularised: swap * exp(-(params/1e3 - mu)^2 / sigma) (ICLR 2024; needs "
                               "mu, sigma)", options=("mu", "sigma"), n_metrics=2))


def get_rule(name: str) -> RankRule:
    """The rule ``name`` (unknown: :class:`~raynas.errors.UnknownNameError` with close matches)."""
    return RULES.get(name)


def oriented_scores(pool: CandidatePool, higher_is_better: Sequence[bool]) -> np.ndarray:
    """The pool's raw scores with every column made higher-is-better, failed (non-finite) entries -inf."""
    x = pool.raw * np.where(np.asarray(higher_is_better, dtype=bool), 1.0, -1.0)
    return np.where(np.isfinite(x), x, -np.inf)


def rule_options(rule: str, options: Mapping[str, float | None] | None = None) -> dict[str, float]:
    """The options ``rule`` takes, checked: each required one given (finite; ``sigma`` positive), none that the
    rule does not take (a :class:`~raynas.errors.ConfigError` otherwise)."""
    spec = get_rule(rule)
    given = {k: v for k, v in (options or {}).items() if v is not None}
    extra = sorted(set(given) - set(spec.options))
    if extra:
        raise ConfigError(f"zero-shot rule {rule!r} takes no option {', '.join(extra)}"
                          + (f" (its options: {', '.join(spec.options)})" if spec.options else ""))
    missing = [k for k in spec.options if k not in given]
    if missing:
        raise ConfigError(f"zero-shot rule {rule!r} needs {', '.join(missing)} (no published default)")
    out: dict[str, float] = {}
    for k, v in given.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v):
            raise ConfigError(f"zero-shot rule {rule!r}: {k} must be a finite number, got {v!r}")
        out[k] = float(v)
    if "sigma" in out and out["sigma"] <= 0:
        raise ConfigError(f"zero-shot rule {rule!r}: sigma must be positive, got {out['sigma']!r}")
    return out


def rule_aggregate(rule: str, oriented: np.ndarray, options: Mapping[str, float | None] | None = None) -> np.ndarray:
    """The aggregate ``[P]`` of ``rule`` over ``oriented`` ``[P, K]`` scores (higher is better, failed -inf)."""
    spec = get_rule(rule)
    if spec.n_metrics is not None and oriented.shape[1] != spec.n_metrics:
        raise ConfigError(f"zero-shot rule {rule!r} takes {spec.n_metrics} metric columns "
                          f"({', '.join(spec.default_metrics)}), got {oriented.shape[1]}")
    return np.asarray(spec.fn(oriented, **rule_options(rule, options)), dtype=np.float64)


def rank_pool(pool: CandidatePool, rule: str, higher_is_better: Sequence[bool],
              options: Mapping[str, float | None] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(aggregate [P], positions best-first)`` of ``pool`` under ``rule`` (ties: smaller ``arch_index`` first);
    ``options``: the rule's options (``swap_reg``: ``mu``, ``sigma``)."""
    agg = rule_aggregate(rule, oriented_scores(pool, higher_is_better), options)
    order = np.argsort(-agg, kind="stable")  # positions are in arch_index order
    return agg, order


@dataclass(frozen=True)
class ZeroShotConfig:
    """``raynas search zero-shot``: the pool (``scores``, runs joined with ``:``), the search directory ``out``,
    the rule and its metrics (empty: the rule's defaults; a comma string is normalised to a tuple), ``top``: how
    many of the ranking the result lists; ``mu``, ``sigma``: the ``swap_reg`` rule's options (thousands of
    parameters, thousands squared; required by it, refused by the other rules)."""

    scores: str = field(metadata={"help": "the pool: a run directory written by `raynas score`, several joined "
                                  "with ':', or a published table SOURCE:SPACE:DATASET (nbsz:<space>:cifar10)"})
    out: str = field(metadata={"help": "search directory (search.json, result.json)"})
    rule: str = field(default="az", metadata={
        "help": "az (AZ-NAS: sum of log(rank/P)) | rank_sum | revisit (Revisit's nested ordinal rank sums) | vkdnw "
                "(VKDNW's sum of log(rank/P) over FLOPs, AZ-NAS's three feature terms and vkdnw) | swap_reg "
                "(SWAP-NAS's regularised swap, needs --mu, --sigma)"})
    metrics: tuple[str, ...] | str = field(default=(), metadata={
        "help": "comma-separated metric columns (default: the rule's; az and rank_sum: the four az_nas_* terms, "
                "revisit: lwt_angle,lwt_loss,params, vkdnw: az_nas_complexity,az_nas_expressivity,"
                "az_nas_progressivity,vkdnw,az_nas_trainability, swap_reg: swap,params)"})
    top: int = field(default=10, metadata={"help": "how many of the ranking the result lists", "min": 1})
    resume: bool = field(default=False, metadata={"help": "rerun into the same directory with the same config"})
    allow_incomplete: bool = field(default=False, metadata={
        "help": "search a score run with a missing config or missing, corrupt or failed shards (the result lists "
                "them); without it such a run is refused"})
    mu: float | None = field(default=None, metadata={
        "help": "swap_reg: the centre of exp(-(params/1e3 - mu)^2 / sigma), in thousands of parameters (no "
                "published default)"})
    sigma: float | None = field(default=None, metadata={
        "help": "swap_reg: the width sigma of that factor, in thousands of parameters squared"})

    def __post_init__(self) -> None:
        names = self.metrics.split(",") if isinstance(self.metrics, str) else self.metrics
        object.__setattr__(self, "metrics", tuple(m.strip() for m in names if m.strip()))
        spec = get_rule(self.rule)
        if not isinstance(self.top, int) or self.top < 1:
            raise ConfigError(f"zero-shot: top must be a positive integer, got {self.top!r}")
        rule_options(self.rule, self.options())
        if spec.n_metrics is not None and len(self.resolved_metrics()) != spec.n_metrics:
            raise ConfigError(f"zero-shot rule {self.rule!r} takes {spec.n_metrics} metrics "
                              f"({', '.join(spec.default_metrics)}), got {', '.join(self.metrics)}")

    def resolved_metrics(self) -> tuple[str, ...]:
        return self.metrics or get_rule(self.rule).default_metrics

    def options(self) -> dict[str, float | None]:
        """The rule options set (``None``: not given)."""
        return {"mu": self.mu, "sigma": self.sigma}


def _normalise(stored: Mapping[str, Any]) -> dict[str, Any]:
    """A stored config read back through :class:`ZeroShotConfig` (as stored when it is not one)."""
    try:
        return to_dict(from_dict(ZeroShotConfig, dict(stored)))
    except (ConfigError, SearchError):
        return dict(stored)


def run_zero_shot_search(cfg: ZeroShotConfig | Mapping[str, Any],
                         progress_callback: Callable[..., None] | None = None) -> dict[str, Any]:
    """Rank the pool scored in ``cfg.scores`` by ``cfg.rule`` and return (and write) the result.

    The result (``result.json`` of the search directory, beside ``search.json``) holds ``method``, ``rule``,
    ``metrics``, ``higher_is_better``, the top arch (``arch_index``, ``arch``, ``score``: its aggregate),
    ``queries`` (0), ``ranking`` (the first ``top`` archs with their aggregates), ``pool``, ``space`` and
    ``benchmark`` (the space's benchmark answer for the top arch; None for a space without one). A rerun into the
    same directory needs ``resume`` with the same config (the result is recomputed: no state to continue).
    ``progress_callback`` is accepted for the registry's calling convention; there is no progress to report.
    """
    c = cfg if isinstance(cfg, ZeroShotConfig) else from_dict(ZeroShotConfig, cfg)
    metrics = c.resolved_metrics()
    directions = [get_metric(m).higher_is_better for m in metrics]
    loaded = load_checked_pool(c.scores, metrics, allow_incomplete=c.allow_incomplete)
    with SearchDir(c.out).claim():  # one writer; a refused run leaves the directory as it was
        out = prepare_search(c.out, to_dict(c), c.resume, normalise=_normalise)
        return _rank(c, out, loaded, metrics, directions)


def _rank(c: ZeroShotConfig, out: SearchDir, loaded: Any, metrics: Sequence[str],
          directions: list[bool]) -> dict[str, Any]:
    pool = loaded.pool
    options = rule_options(c.rule, c.options())
    agg, order = rank_pool(pool, c.rule, directions, options)
    if not np.all(np.isfinite(agg[order[:1]])):
        raise SearchError(f"zero-shot {c.rule}: the aggregate of the top arch is not finite")
    arch_of = loaded.arch_of()
    best = int(pool.arch_index[order[0]])
    space = loaded.space  # the run's config, else its rows (an incomplete run): read once, not reopened
    answer = pool_answer(loaded, best)  # a published sample pool: its own table
    ranking = [{"rank": i + 1, "arch_index": int(pool.arch_index[p]), "score": float(agg[p])}
               for i, p in enumerate(order[: c.top])]
    result: dict[str, Any] = {
        "method": "zero-shot", "rule": c.rule, "metrics": list(metrics), "higher_is_better": directions,
        **({"options": options} if options else {}),
        "arch_index": best, "arch": arch_of.get(best), "score": float(agg[order[0]]), "queries": 0,
        "ranking": ranking, "pool": loaded.summary(), "space": space,
        "benchmark": answer.as_dict() if answer is not None else None,
    }
    log.info("zero-shot %s over %d archs (%s): arch %d", c.rule, len(pool), ",".join(metrics), best)
    out.write_result(result)
    return result
