"""NAS-Bench-201's measured metric costs (:mod:`raynas.spaces.costs`): seconds per arch per metric of the fused
engine on the benchmark's network (C=16, N=5), a 64-image batch of 32x32 inputs, one in-process worker
(``--workers 0``) on a 2-core CPU (the development machine; no GPU).

How they were measured: the ``seconds`` column of the first arch's rows of ``raynas score --space nb201 --metrics all
--sample 1000 --seed 0 --workers 0`` on that machine, with other jobs running beside it (471 s for the arch; a
shared pass's seconds are split evenly between its metrics, see :mod:`raynas.metrics.fused`). A new user's
``--sample 3`` on the same machine took 431 s per arch (issue 29). Costs vary from arch to arch (an arch of
3x3 convolutions costs more than one of pools and skips): the table is one arch's costs, good to a few tens of
percent for a sample, not a promise.

Scaled to other sizes as ``batch * image_size**2 * C**2 * N`` (see :mod:`raynas.spaces.costs`). A metric that
shares a pass with others (the NTK five, lwt_angle + lwt_loss, the gradient metrics of the loss pass) is listed at
its even share of the pass; scored without its pass-mates it costs more, up to the whole pass. Re-measure with
``raynas score ... --sample N`` and read the ``seconds`` column (or ``scripts/bench_proxy_time.py``).
"""

from __future__ import annotations

from raynas.spaces.costs import MetricCosts, register_metric_costs

NB201_COSTS = register_metric_costs(MetricCosts(
    space="nb201",
    seconds={
        "ntk_cond": 62.6,
        "ntk_cond_jacobian": 62.6,
        "ntk_trace": 62.6,
        "ntk_trace_jacobian": 62.6,
        "tenas_ntk_cond": 62.6,
        "lwt_angle": 25.4,
        "lwt_loss": 25.4,
        "vkdnw_f32": 22.4,
        "zico": 20.4,
        "vkdnw": 19.8,
        "meco": 6.13,
        "naswot_code": 5.45,
        "zen": 4.1,
        "das": 2.16,
        "das_distinguish": 2.16,
        "das_units": 2.16,
        "epe_nas": 2.16,
        "fisher": 2.16,
        "fisher_channel": 2.16,
        "grad_norm": 2.16,
        "grasp": 2.16,
        "jacob_cov": 2.16,
        "naswot": 2.16,
        "plain": 2.16,
        "snip": 2.16,
        "swap": 1.12,
        "synflow": 0.76,
        "flops": 0.508,
        "az_nas_complexity": 0.486,
        "linear_regions": 0.24,
        "az_nas_expressivity": 0.0936,
        "az_nas_progressivity": 0.0936,
        "az_nas_trainability": 0.0936,
        "linear_regions_gaussian": 0.0663,
        "params": 0.0368,
        "l2_norm": 0.0219,
    },
    reference={"C": 16, "N": 5, "batch_size": 64, "image_size": 32},
    exponents={"C": 2, "N": 1, "batch_size": 1, "image_size": 2},
    source="nb201's metric costs measured on a 2-core CPU, 1 process",
))
