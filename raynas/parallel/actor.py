"""The Ray actor that scores shards: a thin shell around :func:`raynas.parallel.scoring.score_ids`.

Each actor builds the space once and receives the input batch once (the driver ``ray.put``s it a single time
and passes the reference, which Ray resolves to the batch in the constructor), then scores one shard per
call. (Ray logs that such an argument must outlive the actor for restarts to work: the driver holds it for
the whole run.)

Its device comes from the GPUs Ray assigned it: ``cuda`` when torch sees a GPU and Ray gave the actor one
(Ray sets ``CUDA_VISIBLE_DEVICES``, so ``cuda`` is the assigned device), otherwise ``cpu``. On a CPU machine a
local Ray may advertise *logical* GPUs: actors are still pinned to distinct ids, but compute on CPU.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import ray

if TYPE_CHECKING:
    import pyarrow as pa

    from raynas.data.batch import Batch
    from raynas.parallel.config import ScoreConfig
    from raynas.parallel.shards import Shard

log = logging.getLogger(__name__)


class ScoringWorker:
    """Scores shards of one space with fixed metrics, batch and seed (plain class; see :data:`ScoringActor`)."""

    def __init__(
        self,
        space: str,
        space_kwargs: Mapping[str, Any],
        metrics: Sequence[str],
        batch: "Batch",
        seed: int,
        data_name: str,
        threads: int = 1,
    ):
        import torch

        from raynas.spaces import create_space

        # Ray sets OMP_NUM_THREADS from num_cpus only for some launch paths; pin torch explicitly so actors
        # sharing a node do not oversubscribe its cores.
        torch.set_num_threads(max(1, threads))
        self.space = create_space(space)
        self.space_kwargs = dict(space_kwargs)
        self.metrics = list(metrics)
        self.seed = seed
        self.data_name = data_name
        self.host = socket.gethostname()
        self.device = pick_device(self.gpu_ids())
        self.batch = batch.to(self.device)

    def gpu_ids(self) -> list[str]:
        """GPU ids Ray assigned to this actor (empty when it asked for none)."""
        return [str(g) for g in ray.get_gpu_ids()]

    def ready(self) -> dict[str, Any]:
        """Where the actor runs; answering at all means it is constructed and alive."""
        return {"host": self.host, "pid": os.getpid(), "device": self.device, "gpu_ids": self.gpu_ids(),
                "node_id": ray.get_runtime_context().get_node_id()}

    def score(self, shard: "Shard") -> tuple[str, "pa.Table"]:
        """``(shard_id, rows)`` for every arch of ``shard`` (with ``shard.metrics`` or the run's metrics)."""
        from raynas.parallel.scoring import score_ids

        table = score_ids(
            self.space, shard.ids, list(shard.metrics or self.metrics), self.batch, self.seed, self.device,
            self.data_name, self.host, self.space_kwargs,
        )
        return shard.shard_id, table


def pick_device(gpu_ids: Sequence[str]) -> str:
    """``"cuda"`` when Ray assigned GPUs and torch can use one, else ``"cpu"`` (logical GPUs on CPU hosts)."""
    import torch

    return "cuda" if gpu_ids and torch.cuda.is_available() else "cpu"


#: the Ray actor class; per-run resources are set with ``.options`` in :func:`create_actor`
ScoringActor = ray.remote(max_restarts=3, max_task_retries=0)(ScoringWorker)


def create_actor(cfg: "ScoreConfig", metrics: Sequence[str], batch_ref: Any, data_name: str,
                 actor_cls: Any = ScoringActor) -> Any:
    """A :data:`ScoringActor` (or another ``ray.remote`` subclass of :class:`ScoringWorker`, e.g. a test fake)
    with the run's resources (fractional GPUs allowed).

    ``max_restarts`` lets Ray restart an actor whose worker or node died; tasks are not retried by Ray
    (``max_task_retries=0``) because the driver retries whole shards itself and counts the attempts.
    """
    return actor_cls.options(
        num_cpus=cfg.cpus_per_worker,
        num_gpus=cfg.gpus_per_worker,
        max_restarts=cfg.max_retries,
        max_task_retries=0,
    ).remote(
        cfg.space, cfg.space_kwargs, list(metrics), batch_ref, cfg.seed, data_name,
        max(1, int(cfg.cpus_per_worker)),
    )
