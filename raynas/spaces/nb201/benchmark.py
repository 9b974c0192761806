"""The NAS-Bench-201 CIFAR-10 ground truth, registered beside the ``nb201`` space (columns: shared/data/README.md).

Query = validation accuracy after the 12-epoch schedule on the cifar10-valid split (the signal HNAS and RoBoT
search on), cost = that training's wall time, final = test accuracy after the full 200-epoch schedule (the
number papers report). Indices are the official NAS-Bench-201 ones, which :class:`~raynas.spaces.nb201.space.NB201Space`
reproduces.
"""

from __future__ import annotations

from raynas.spaces.benchmarks import Benchmark, register_benchmark

NB201_BENCHMARK = register_benchmark(Benchmark(
    name="nb201",
    space="nb201",
    title="NB201",
    relpath="nb201/nb201_cifar10.parquet",
    query_column="cifar10_valid_acc_12ep",
    cost_column="cifar10_train_seconds_12ep",
    finals={"cifar10": "cifar10_test_acc_200ep"},
    default_dataset="cifar10",
    labels={
        "cifar10_valid_acc_12ep": "12-epoch validation accuracy (%) on CIFAR-10",
        "cifar10_train_seconds_12ep": "12-epoch training time (s) on CIFAR-10",
        "cifar10_test_acc_200ep": "200-epoch test accuracy (%) on CIFAR-10",
    },
    answer_units={"cifar10_test_acc_200ep": "% test accuracy after 200 epochs"},
    axis_labels={"cifar10_test_acc_200ep": "CIFAR-10 test acc (200 ep)"},
    # NAS-Bench-Suite-Zero (Krishnakumar et al., NeurIPS 2022 Datasets & Benchmarks), keyed by raynas metric name
    published_rho={
        "naswot": 0.77,
        "jacob_cov": 0.75,
        "synflow": 0.73,
        "params": 0.72,
        "flops": 0.69,
        "grad_norm": 0.58,
        "snip": 0.58,
        "grasp": 0.51,
        "fisher": 0.50,
    },
    published_source="Spearman rho with CIFAR-10 accuracy on NAS-Bench-201, NAS-Bench-Suite-Zero "
                     "(Krishnakumar et al., NeurIPS 2022 Datasets & Benchmarks)",
))
