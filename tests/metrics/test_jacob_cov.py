"""jacob_cov: -sum(log(v + k) + 1/(v + k)), v = eig(corrcoef(J)), J rows = input gradients of the logit sums."""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from raynas.data.batch import Batch
from raynas.metrics import get_metric
from raynas.metrics.engine import compute_metrics
from raynas.testing import linear_net, relu_probe_mlp

K = 1e-5


def _result(net: nn.Module, rows: list[list[float]]):
    x = torch.tensor(rows).reshape(len(rows), len(rows[0]), 1, 1)
    (r,) = compute_metrics(lambda: net, Batch(x, torch.zeros(len(rows), dtype=torch.long), 2), ["jacob_cov"])
    return r


def test_uncorrelated_jacobians_give_identity() -> None:
    # J_i = [x_i > 0]: (1,1,0,0), (1,0,1,0), (1,0,0,1) are pairwise uncorrelated -> C = I_3, v = (1, 1, 1)
    r = _result(relu_probe_mlp(4), [[1, 1, -1, -1], [1, -1, 1, -1], [1, -1, -1, 1]])
    assert r.status == "ok", r.error
    assert math.isclose(r.value, -3 * (math.log(1 + K) + 1 / (1 + K)), rel_tol=1e-9)


def test_linear_model_rows_identical() -> None:
    # y = W x: every row of J is 1^T W = (4, 1) -> C = ones(2, 2), v = (0, 2)
    r = _result(linear_net([[1.0, 2.0], [3.0, -1.0]], [0.5, 0.5]), [[0.3, -2.0], [1.0, 5.0]])
    assert r.status == "ok", r.error
    expected = -(math.log(K) + 1 / K + math.log(2 + K) + 1 / (2 + K))
    assert math.isclose(r.value, expected, rel_tol=1e-9)


def test_anticorrelated_rows() -> None:
    # J = (1,1,0,0) and (0,0,1,1): correlation -1 -> v = (0, 2), same as identical rows
    r = _result(relu_probe_mlp(4), [[1, 1, -1, -1], [-1, -1, 1, 1]])
    assert math.isclose(r.value, -(math.log(K) + 1 / K + math.log(2 + K) + 1 / (2 + K)), rel_tol=1e-9)


def test_constant_row_is_nan_status() -> None:
    # all inputs negative: J row = 0 is constant, its correlation is undefined
    r = _result(relu_probe_mlp(4), [[-1, -1, -1, -1], [1, -1, 1, -1]])
    assert r.status == "nan" and r.value is None


def test_single_sample_is_error_status() -> None:
    r = _result(relu_probe_mlp(4), [[1, -1, 1, -1]])
    assert r.status == "error" and "at least 2" in r.error


def test_spec() -> None:
    spec = get_metric("jacob_cov")
    assert not spec.needs_labels and spec.needs_data and spec.higher_is_better and "Mellor" in spec.reference
