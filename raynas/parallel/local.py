"""The in-process scoring run (``workers=0``): the Ray driver's store, resume and shard logic without Ray.

Its own module so that :mod:`raynas.parallel.scoring` stays pure (it scores ids into tables and knows no run
directory) and :mod:`raynas.parallel.run` (the run book-keeping) can import it without a cycle.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, Callable

import pyarrow as pa

from raynas.parallel.run import announce, scoring_run
from raynas.parallel.scoring import iter_scored

if TYPE_CHECKING:
    from raynas.parallel.config import ScoreConfig

log = logging.getLogger(__name__)


def run_local(
    cfg: "ScoreConfig",
    progress_callback: Callable[..., None] | None = None,
    estimate_callback: Callable[..., None] | None = None,
    metric_callback: Callable[[tuple[str, ...], int, int], None] | None = None,
) -> dict[str, Any]:
    """The whole scoring run in this process, no Ray: same store, resume and shard logic as the Ray driver.

    Progress is counted per arch; ``metric_callback(names, done, total)`` reports the metric(s) being computed
    inside each arch (:data:`raynas.metrics.engine.MetricCallback`; not with ``arch_batch > 1``). The estimate
    from the space's measured metric costs, if any, goes to ``estimate_callback`` before the first arch, the one
    measured on the first arch right after it. On ``KeyboardInterrupt`` the archs of the current shard finished so far are
    written (as that shard's file) before the interrupt propagates, so ``resume`` scores only the rest.
    """
    import torch

    with scoring_run(cfg) as run:
        device = "cuda" if torch.cuda.is_available() else "cpu"
        t0 = time.perf_counter()
        if run.todo:
            announce(run.prior_estimate(workers=1), estimate_callback)
        tracker = run.tracker(progress_callback, estimate_callback, workers=1)
        for shard in run.todo:
            tables: list[pa.Table] = []
            try:
                for _idx, table in iter_scored(
                    run.space, shard.ids, shard.metrics or run.metrics, run.batch, cfg.seed, device, run.data_name,
                    space_kwargs=cfg.space_kwargs, arch_batch=cfg.arch_batch, on_metric=metric_callback,
                    channels_last=cfg.channels_last,
                ):
                    tables.append(table)
                    tracker.add(1, table)
            except KeyboardInterrupt:
                if tables:
                    run.write(shard, pa.concat_tables(tables))
                    log.warning("interrupted: stored the %d finished arch(s) of shard %d", len(tables),
                                shard.shard_id)
                raise
            if tables:
                run.write(shard, pa.concat_tables(tables))
        return run.summary(time.perf_counter() - t0, workers=0)
