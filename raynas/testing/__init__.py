"""Fakes for testing code built on raynas, one module per thing faked.

* :mod:`~raynas.testing.networks`: tiny fixed networks whose metric values are known in closed form;
* :mod:`~raynas.testing.metrics`: metric results made by hand;
* :mod:`~raynas.testing.runs`: hand-made planned score runs, a tiny real scoring config, run-directory checks;
* :mod:`~raynas.testing.pools`: synthetic scored pools with known ground truth;
* :mod:`~raynas.testing.oracles`: a lookup oracle that records its queries;
* :mod:`~raynas.testing.data`: tiny CIFAR batches in the real on-disk format.
* :mod:`~raynas.testing.tnb101_parity`: the TransNAS-Bench-101 parity cases (networks with hash-made weights,
  task-shaped batches) shared by ``tests/parity/test_tnb101_parity.py`` and its fixture script.

Nothing in the library imports this package (an import-linter contract says so). Helpers that only raynas's
own integration tests need (process killers, a hanging Ray actor) live under ``tests/_support``.
"""

from __future__ import annotations

from raynas.testing.data import fake_cifar_image, write_fake_cifar
from raynas.testing.metrics import metric_results
from raynas.testing.networks import (TinyConvNet, linear_bn_classifier, linear_classifier, linear_net, relu_probe_mlp,
                                     threshold_net, tiny_bn_convnet, two_layer_linear, two_relu_mlp)
from raynas.testing.oracles import FakeOracle
from raynas.testing.pools import hnas_pool_table, synthetic_pool_table
from raynas.testing.runs import TINY_METRICS, assert_complete, planned_score_run, score_rows, tiny_score_config

__all__ = [
    "TINY_METRICS", "FakeOracle", "TinyConvNet", "assert_complete", "fake_cifar_image", "hnas_pool_table",
    "linear_bn_classifier", "linear_classifier", "linear_net", "metric_results", "planned_score_run",
    "relu_probe_mlp", "score_rows", "synthetic_pool_table", "threshold_net", "tiny_bn_convnet", "tiny_score_config",
    "two_layer_linear", "two_relu_mlp", "write_fake_cifar",
]
