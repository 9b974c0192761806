"""BoTorch proposal step: Sobol initial design, determinism, bounds, failure fallback, bad inputs."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from linear_operator.utils.errors import NotPSDError

from raynas.errors import SearchError
from raynas.search import bo

B2 = np.array([[-1.0, -1.0], [1.0, 1.0]])


def test_initial_design_is_sobol_and_seeded():
    X = np.empty((0, 2))
    x0 = bo.propose(X, np.empty(0), B2, seed=3, n_init=2)
    x1 = bo.propose(x0[None], np.array([0.5]), B2, seed=3, n_init=2)
    np.testing.assert_array_equal(x0, bo.sobol_point(0, B2, 3))
    np.testing.assert_array_equal(x1, bo.sobol_point(1, B2, 3))
    assert not np.array_equal(x0, bo.sobol_point(0, B2, 4))
    assert np.all(np.abs(np.stack([x0, x1])) <= 1.0)


def test_gp_step_is_deterministic_and_in_bounds():
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (8, 2))
    y = -((X[:, 0] - 0.3) ** 2) - (X[:, 1] + 0.5) ** 2
    a = bo.propose(X, y, B2, seed=1, n_init=3, raw_samples=32, num_restarts=2)
    b = bo.propose(X, y, B2, seed=1, n_init=3, raw_samples=32, num_restarts=2)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (2,) and np.all(a >= -1) and np.all(a <= 1)
    c = bo.propose(X, y, B2, seed=1, n_init=3, acquisition="logei", raw_samples=32, num_restarts=2)
    assert c.shape == (2,) and np.all(np.abs(c) <= 1)


def test_isotropic_matern_kernel_interpolates_and_proposes_near_the_optimum(monkeypatch):
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (12, 2))
    y = -((X[:, 0] - 0.3) ** 2) - (X[:, 1] + 0.5) ** 2
    fits = []
    real = bo._gp_step

    def spy(*a, **k):
        fits.append(a[-1] if len(a) == 8 else k.get("kernel"))
        return real(*a, **k)

    monkeypatch.setattr(bo, "_gp_step", spy)
    x = bo.propose(X, y, B2, seed=1, n_init=3, kernel="matern_iso", acquisition="logei")
    assert fits == ["matern_iso"]
    assert np.linalg.norm(x - np.array([0.3, -0.5])) < 0.5  # EI on a smooth bowl heads for its top
    assert np.array_equal(x, bo.propose(X, y, B2, seed=1, n_init=3, kernel="matern_iso", acquisition="logei"))
    # the model itself: one lengthscale, (almost) noise-free, so it reproduces the observations
    from botorch.models import SingleTaskGP

    made = []
    monkeypatch.setattr(SingleTaskGP, "__init__", _record_init(SingleTaskGP.__init__, made))
    bo.propose(X, y, B2, seed=1, n_init=3, kernel="matern_iso")
    model = made[0]
    assert model.covar_module.base_kernel.lengthscale.numel() == 1
    post = model.posterior(__import__("torch").as_tensor(X))
    np.testing.assert_allclose(post.mean.detach().numpy().ravel(), y, atol=1e-3)


def _record_init(init, made):
    def wrapped(self, *a, **k):
        init(self, *a, **k)
        made.append(self)

    return wrapped


def test_constant_observations_still_propose():
    X = np.array([[0.0, 0.0], [0.5, 0.5], [-0.5, 0.2]])
    x = bo.propose(X, np.ones(3), B2, seed=0, n_init=1, raw_samples=32, num_restarts=2)
    assert np.all(np.isfinite(x))


def test_fit_failure_falls_back_to_sobol(monkeypatch, caplog):
    def broken(*a, **k):
        raise NotPSDError("matrix not positive definite")

    monkeypatch.setattr(bo, "_gp_step", broken)
    X = np.array([[0.0, 0.0], [0.5, 0.5], [-0.5, 0.2]])
    with caplog.at_level(logging.WARNING, logger="raynas.search.bo"):
        x = bo.propose(X, np.arange(3.0), B2, seed=5, n_init=1)
    np.testing.assert_array_equal(x, bo.sobol_point(3, B2, 5))
    assert "NotPSDError" in caplog.text


def test_other_errors_are_not_swallowed(monkeypatch):
    def bug(*a, **k):
        raise KeyError("a programming error")

    monkeypatch.setattr(bo, "_gp_step", bug)
    with pytest.raises(KeyError):
        bo.propose(np.zeros((2, 2)), np.zeros(2), B2, seed=0, n_init=1)


def test_bad_inputs():
    with pytest.raises(SearchError, match="bounds"):
        bo.propose(np.zeros((0, 2)), np.zeros(0), np.array([[1.0, 1.0], [0.0, 2.0]]), seed=0)
    with pytest.raises(SearchError, match="X must be"):
        bo.propose(np.zeros((2, 3)), np.zeros(2), B2, seed=0)
    with pytest.raises(SearchError, match="finite"):
        bo.propose(np.zeros((2, 2)), np.array([0.0, np.nan]), B2, seed=0)
    with pytest.raises(SearchError, match="acquisition"):
        bo.propose(np.zeros((2, 2)), np.zeros(2), B2, seed=0, acquisition="ei")
    with pytest.raises(SearchError, match="kernel"):
        bo.propose(np.zeros((2, 2)), np.zeros(2), B2, seed=0, kernel="rbf")
