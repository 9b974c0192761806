"""SWAP-NAS's regularised score: the ``swap_reg`` zero-shot rule over raynas's ``swap`` and ``params`` equals the
authors' ``SWAP(regular=True, mu, sigma)`` on the parity fixture (``values_proxies_b.json``'s ``swap_reg``
section, written by ``scripts/make_parity_proxies_b.py``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from raynas.data.batch import Batch
from raynas.metrics.engine import compute_metrics
from raynas.search.zero_shot import SWAP_REG_METRICS, rule_aggregate
from raynas.spaces.parity import CASES, NUM_CLASSES, fixture_network

FIXTURE = Path(__file__).parent / "fixture"
REFERENCE = json.loads((FIXTURE / "values_proxies_b.json").read_text())["swap_reg"]


def test_the_reference_covers_every_case_with_its_options() -> None:
    assert sorted(REFERENCE["values"]) == sorted(CASES)
    assert REFERENCE["sigma"] > 0 and "regular=True" in REFERENCE["reference"]


@pytest.mark.parametrize("case", sorted(CASES))
def test_swap_reg_rule_equals_the_reference(case: str) -> None:
    with np.load(FIXTURE / "weights.npz", allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    batch = Batch(torch.from_numpy(arrays["batch/inputs"]), torch.from_numpy(arrays["batch/labels"]), NUM_CLASSES,
                  "parity")
    net = fixture_network(arrays, case)
    results = compute_metrics(lambda: net, batch, list(SWAP_REG_METRICS), seed=0)
    assert [r.status for r in results] == ["ok", "ok"]
    x = np.array([[r.value for r in results]], dtype=np.float64)
    (value,) = rule_aggregate("swap_reg", x, {"mu": REFERENCE["mu"], "sigma": REFERENCE["sigma"]})
    expected = REFERENCE["values"][case]
    assert value == pytest.approx(expected, rel=1e-12)
    # the factor is informative on the fixture (neither ~0 nor ~1): a wrong unit of Theta would show
    assert 0.05 < value / x[0, 0] < 0.999
