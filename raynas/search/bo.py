"""A small, stateless BoTorch proposal step shared by RoBoT and HNAS.

``propose(X, y, bounds, seed)`` returns the next point to evaluate when *maximising* ``y``:

* while ``n < n_init`` it returns the ``n``-th point of a scrambled Sobol sequence seeded by ``seed``, so the
  initial design is space-filling and depends on nothing but ``(n, seed)``;
* afterwards it fits a ``SingleTaskGP`` (inputs normalised to the unit cube with the *given* bounds, outcomes
  standardised) by maximising the exact marginal log likelihood, and maximises an acquisition function with
  ``optimize_acqf``.

Acquisition: **UCB** by default (``acquisition="ucb"``, ``beta = 2.576**2``). RoBoT's guarantee is a GP-UCB
regret bound, its reference implementation uses UCB with ``kappa = 2.576``, and the objective here (accuracy of
the arch that ``w`` ranks first) is piecewise constant in ``w``: EI collapses to ~0 on the flat plateau around
the incumbent and keeps re-proposing points there, while UCB's variance bonus keeps moving to unexplored regions
of weight space. ``"logei"`` (LogExpectedImprovement) is available for callers with smoother objectives.

**Bounded cost.** An exact GP step costs O(n^3) in its ``n`` observations (the marginal-likelihood fit
factorises the ``n x n`` kernel matrix at every optimiser iteration), so a long BO phase (a large budget, or a
search that keeps re-proposing archs it already queried) would make each step slower than the last. Beyond
``max_points`` observations (:data:`GP_MAX_POINTS` by default) the GP is fitted on a fixed-size window of them
(:func:`gp_window`: the best half by value and the most recent rest), so a step's cost has a ceiling that does not
depend on the budget or on how many steps came before. Up to ``max_points`` observations nothing changes.

Everything runs in float64 on CPU, and the random state is forked and seeded from ``(seed, n)``, so the
proposal is a pure function of its inputs: replaying the same observations yields the same next point, which
is what makes resumed searches exact. GP fitting / acquisition failures (non-PSD kernels, NaNs, failed fits) fall
back to the next Sobol point with a warning instead of killing a long search.
"""

from __future__ import annotations

import logging
import warnings
from typing import Literal

import numpy as np
import torch

from raynas.errors import SearchError

log = logging.getLogger(__name__)

Acquisition = Literal["ucb", "logei"]
#: GP covariance: ``"rbf_ard"`` is BoTorch's default (RBF, one lengthscale per input, dimension-scaled
#: lengthscale prior, learned noise); ``"matern_iso"`` is the RoBoT reference's (scikit-learn GP in
#: ``bayes_opt``): ONE Matern-5/2 lengthscale for all inputs and a fixed, tiny observation noise (1e-6)
Kernel = Literal["rbf_ard", "matern_iso"]
#: observation noise variance of ``"matern_iso"`` (the reference's ``alpha``), in standardised outcome units
FIXED_NOISE = 1e-6
#: the most observations one GP step is fitted on (see "Bounded cost" above and :func:`gp_window`)
GP_MAX_POINTS = 256
UCB_BETA = 2.576**2  # botorch's UCB is mean + sqrt(beta) * std; kappa = 2.576 as in the RoBoT reference code


def sobol_point(n: int, bounds: np.ndarray, seed: int) -> np.ndarray:
    """The ``n``-th (0-based) point of the scrambled Sobol sequence of ``seed``, scaled to ``bounds [2, d]``."""
    from torch.quasirandom import SobolEngine

    lo, hi = bounds[0], bounds[1]
    eng = SobolEngine(dimension=len(lo), scramble=True, seed=int(seed))
    u = eng.draw(n + 1, dtype=torch.float64)[-1].numpy()
    return lo + (hi - lo) * u


def gp_window(y: np.ndarray, max_points: int) -> np.ndarray:
    """Positions (ascending) of the observations a GP step is fitted on when there are more than ``max_points``:
    the ``max_points // 2`` best by value (ties: the earliest), so the model keeps the incumbents' region, and the
    most recent of the others up to ``max_points``, so it knows where the search has been looking lately. All
    positions when ``len(y) <= max_points``. A pure function of ``y`` (resume replays the same window)."""
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    n, m = len(y), int(max_points)
    if m < 2:
        raise SearchError(f"max_points must be >= 2, got {max_points}")
    if n <= m:
        return np.arange(n)
    best = np.argsort(-y, kind="stable")[: m // 2]
    keep = np.zeros(n, dtype=bool)
    keep[best] = True
    rest = np.flatnonzero(~keep)[-(m - len(best)):]
    keep[rest] = True
    return np.flatnonzero(keep)


def _check(X: np.ndarray, y: np.ndarray, bounds: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    bounds = np.asarray(bounds, dtype=np.float64)
    if bounds.ndim != 2 or bounds.shape[0] != 2 or not np.all(bounds[1] > bounds[0]):
        raise SearchError(f"bounds must be [2, d] with upper > lower, got {bounds.tolist()}")
    d = bounds.shape[1]
    if X.size == 0:
        X = X.reshape(0, d)
    if X.ndim != 2 or X.shape[1] != d or X.shape[0] != y.shape[0]:
        raise SearchError(f"X must be [n, {d}] and y [n], got X {X.shape} and y {y.shape}")
    if not (np.all(np.isfinite(X)) and np.all(np.isfinite(y))):
        raise SearchError("X and y must be finite")
    return X, y, bounds


def _gp_step(X: np.ndarray, y: np.ndarray, bounds: np.ndarray, acquisition: Acquisition,
             num_restarts: int, raw_samples: int, seed: int, kernel: Kernel = "rbf_ard",
             pending: np.ndarray | None = None) -> np.ndarray:
    from botorch.acquisition import LogExpectedImprovement, UpperConfidenceBound
    from botorch.fit import fit_gpytorch_mll
    from botorch.models import SingleTaskGP
    from botorch.models.transforms.input import Normalize
    from botorch.models.transforms.outcome import Standardize
    from botorch.optim import optimize_acqf
    from gpytorch.kernels import MaternKernel, ScaleKernel
    from gpytorch.mlls import ExactMarginalLogLikelihood

    tX = torch.as_tensor(X, dtype=torch.float64)
    ty = torch.as_tensor(y, dtype=torch.float64).unsqueeze(-1)
    tb = torch.as_tensor(bounds, dtype=torch.float64)
    with warnings.catch_warnings():
        # input-scaling / optimisation warnings on tiny data sets are expected and not actionable here
        warnings.simplefilter("ignore")
        if kernel == "matern_iso":
            # Standardize rescales train_Yvar by the outcome variance: give it in the raw units
            yvar = torch.full_like(ty, FIXED_NOISE) * ty.var().clamp_min(1e-12) if len(ty) > 1 else None
            model = SingleTaskGP(tX, ty, train_Yvar=yvar, covar_module=ScaleKernel(MaternKernel(nu=2.5)),
                                 input_transform=Normalize(d=tX.shape[1], bounds=tb),
                                 outcome_transform=Standardize(m=1))
        else:
            model = SingleTaskGP(tX, ty, input_transform=Normalize(d=tX.shape[1], bounds=tb),
                                 outcome_transform=Standardize(m=1))
        mll = ExactMarginalLogLikelihood(model.likelihood, model)
        fit_gpytorch_mll(mll)
        if pending is not None and len(pending):
            acqf = _batch_acquisition(model, acquisition, ty, torch.as_tensor(pending, dtype=torch.float64), seed)
        elif acquisition == "ucb":
            acqf = UpperConfidenceBound(model, beta=UCB_BETA)
        else:
            acqf = LogExpectedImprovement(model, best_f=ty.max())
        cand, _ = optimize_acqf(acqf, bounds=tb, q=1, num_restarts=num_restarts, raw_samples=raw_samples,
                                options={"seed": seed, "maxiter": 100})
    x = cand.detach().reshape(-1).numpy().astype(np.float64)
    if not np.all(np.isfinite(x)):
        raise FloatingPointError("acquisition optimisation returned a non-finite candidate")
    return np.clip(x, bounds[0], bounds[1])


#: quasi-Monte-Carlo samples of the batch acquisition functions (fixed-seed Sobol base samples: deterministic)
MC_SAMPLES = 256


def _batch_acquisition(model, acquisition: Acquisition, ty: torch.Tensor,  # type: ignore[no-untyped-def]
                       X_pending: torch.Tensor, seed: int):
    """The q-form of ``acquisition`` with the in-flight points ``X_pending`` fantasized jointly with the
    candidate: qUCB (same ``beta``) or qLogEI, on seeded QMC base samples."""
    from botorch.acquisition import qLogExpectedImprovement, qUpperConfidenceBound
    from botorch.sampling import SobolQMCNormalSampler

    sampler = SobolQMCNormalSampler(sample_shape=torch.Size([MC_SAMPLES]), seed=seed)
    if acquisition == "ucb":
        return qUpperConfidenceBound(model, beta=UCB_BETA, sampler=sampler, X_pending=X_pending)
    return qLogExpectedImprovement(model, best_f=ty.max(), sampler=sampler, X_pending=X_pending)


def propose(
    X: np.ndarray,
    y: np.ndarray,
    bounds: np.ndarray,
    seed: int,
    *,
    n_init: int = 3,
    acquisition: Acquisition = "ucb",
    num_restarts: int = 4,
    raw_samples: int = 128,
    kernel: Kernel = "rbf_ard",
    pending: np.ndarray | None = None,
    max_points: int | None = GP_MAX_POINTS,
) -> np.ndarray:
    """Next point ``x [d]`` to evaluate, maximising ``y``.

    Args:
        X: float64 ``[n, d]`` points evaluated so far (``n`` may be 0).
        y: float64 ``[n]`` their values (finite).
        bounds: float64 ``[2, d]`` lower / upper box bounds.
        seed: seeds the Sobol design and, combined with ``n``, the acquisition optimiser.
        n_init: number of Sobol points before the GP takes over (at least 1, so the GP never fits 0 points).
        acquisition: ``"ucb"`` (default, see module docstring) or ``"logei"``.
        num_restarts, raw_samples: ``optimize_acqf`` effort; small defaults keep a step well under a second on CPU.
        kernel: the GP covariance, ``"rbf_ard"`` (default) or ``"matern_iso"`` (see :data:`Kernel`).
        pending: float64 ``[p, d]`` points proposed but not evaluated yet (queries in flight; None or empty: the
            sequential step above, unchanged). During the initial design the next point is Sobol point ``n + p``;
            afterwards the acquisition is its batch form (qUCB / qLogEI) with ``pending`` as ``X_pending``, so
            the GP's joint posterior over the candidate and the in-flight points penalises proposing where a
            query is already running (BoTorch's sequential-greedy q-batch rule, one point at a time).
        max_points: the most observations the GP is fitted on (:func:`gp_window` picks them beyond it; the step's
            seed still counts all ``n``); None: every observation, whatever it costs.
    """
    X, y, bounds = _check(X, y, bounds)
    if acquisition not in ("ucb", "logei"):
        raise SearchError(f"unknown acquisition {acquisition!r} (known: logei, ucb)")
    if kernel not in ("rbf_ard", "matern_iso"):
        raise SearchError(f"unknown kernel {kernel!r} (known: matern_iso, rbf_ard)")
    if max_points is not None and (isinstance(max_points, bool) or int(max_points) < 2):
        raise SearchError(f"max_points must be None or >= 2, got {max_points!r}")
    n = X.shape[0]
    P = None if pending is None else np.asarray(pending, dtype=np.float64).reshape(-1, bounds.shape[1])
    p = 0 if P is None else len(P)
    if P is not None and not np.all(np.isfinite(P)):
        raise SearchError("pending points must be finite")
    if n < max(1, int(n_init)):
        return sobol_point(n + p, bounds, seed)
    # with points in flight the seed also depends on how many: the same (n, p) state proposes the same point
    step_seed = (int(seed) * 1_000_003 + n + (p * 7_919 if p else 0)) % (2**31 - 1)
    if max_points is not None and n > int(max_points):
        keep = gp_window(y, int(max_points))
        X, y = X[keep], y[keep]
    from botorch.exceptions.errors import BotorchError, ModelFittingError
    from linear_operator.utils.errors import NanError, NotPSDError

    with torch.random.fork_rng():
        torch.manual_seed(step_seed)
        try:
            return _gp_step(X, y, bounds, acquisition, num_restarts, raw_samples, step_seed, kernel, pending=P)
        except (ModelFittingError, BotorchError, NotPSDError, NanError, torch.linalg.LinAlgError,
                FloatingPointError) as e:
            log.warning("GP proposal failed at n=%d (%s: %s); using the next Sobol point instead",
                        n, type(e).__name__, e)
            return sobol_point(n + p, bounds, seed)
