"""TransNAS-Bench-101's NAS-Bench-Suite-Zero samples as published score pools and sample benchmarks.

**Tables** ``tnb101:<micro|macro>:<task>`` (14: the two spaces x the seven :data:`~.tasks.TASKS`), registered in
:data:`raynas.store.published.TABLES` when :mod:`raynas.spaces` imports this package; the file is
``$RAYNAS_DATA/tnb101/tnb101_<space>_<task>.parquet`` (``shared/data/README.md`` section ``tnb101/``: 711 micro
archs per task, 662 macro archs for class_scene / class_object and 725 for the other tasks). Read them with
:func:`raynas.store.read_published` or ``raynas search ... --scores tnb101:micro:room_layout``.

* **Architectures.** ``arch_index`` / ``arch`` are raynas's ``tnb101_micro`` / ``tnb101_macro`` index and string,
  decoded from the file's ``arch_str`` (TransNAS-Bench-101's own string, ``64-41414-a_bc_def`` /
  ``64-<digits>-basic``, which is raynas's canonical string too). The file's ``arch_index`` is NASLib's list
  position, not an index of the space, and is not read. The decoder also checks every row's
  ``val_metric_name`` against :data:`~.tasks.TASKS` (the metric whose direction the sample benchmark relies on).
* **Metrics** (:data:`TNB101_METRICS`): NASLib's proxy columns mapped exactly as :mod:`raynas.store.published`
  maps NAS-Bench-Suite-Zero's (``jacov`` -> ``jacob_cov``, ``nwot`` -> ``naswot_code``, ``flops`` ->
  ``nbsz_flops``, ``params`` in millions -> the count; ``fisher``, ``grad_norm``, ``grasp``, ``l2_norm``,
  ``plain``, ``snip`` as published) plus ``zen`` (micro files only; Zen-NAS's score, already a log by its
  definition, kept as published). No column is stored as a log here: these files have no ``synflow`` (the
  one NASLib logs), and every present proxy spans its natural range (e.g. micro ``fisher`` up to 1.4e10).
  ``epe_nas`` is left out: it is NASLib's -1e8 placeholder on every task but jigsaw. NASLib's -1e8 (a NaN/inf
  score: ``jacov`` and ``zen`` of exactly the 20 micro cells whose output node no path joins to the input) is
  null, as for NB-Suite-Zero; on the tasks with a pooled head (class_*, jigsaw, room_layout) those cells'
  ``snip``, ``grad_norm``, ``grasp`` and ``plain`` are a real 0 (no weight before the head gets a gradient) and
  stay 0.
* **Default oracle**: the table's own sample benchmark (config ``benchmark``), below.

**Sample benchmarks** ``tnb101_<space>_<task>`` (14 :class:`~raynas.spaces.nbsz.SampleBenchmark`, ``sample=True``,
never a space's default benchmark): query = final = ``val_metric_best_epoch`` (TransNAS-Bench-101's validation
metric at its best epoch, API mode ``'best'``), the final column of dataset ``<task>``; the micro samples also
answer ``val_metric_final_epoch`` (mode ``'final'``) as dataset ``<task>_final_epoch``. They answer for the
archs their table holds only (an :class:`~raynas.errors.OracleError` naming the table for any other). NB-Suite-
Zero records no training time: the query cost is 0 and a budget counts queries.

**Direction.** :class:`~raynas.spaces.benchmarks.Benchmark` has no direction field: every oracle, search and
answer rank treats a larger value as better. Every TransNAS-Bench-101 validation metric is higher-is-better as
stored: ``valid_top1`` (class_scene, class_object, jigsaw; %), ``valid_acc`` (segmentsemantic, pixel accuracy
%), ``valid_ssim`` (normal, autoencoder) and room_layout's ``valid_neg_loss``, the *negated* validation loss
(every value in the files is negative, -1.09 to -0.56: nearer 0 is better). :data:`~.tasks.TASKS` records
``higher_is_better`` per task; registration refuses a task whose metric is not, since nothing downstream
would turn the ranking round.
"""

from __future__ import annotations

import functools

import numpy as np
import pyarrow as pa

from raynas.errors import ConfigError, DataError, InvalidArchitectureError
from raynas.spaces.benchmarks import register_benchmark
from raynas.spaces.nbsz import COST_COLUMN, SampleBenchmark
from raynas.spaces.tnb101.tasks import TASKS
from raynas.store.published import (
    ARCH_DECODERS, NASLIB_METRICS, SOURCES, MetricColumn, PublishedTable, register_table,
)

__all__ = [
    "BEST_COLUMN", "FINAL_COLUMN", "SAMPLES", "SPACES", "TNB101_METRICS", "decode_tnb101_keys", "sample_name",
    "table_spec",
]

#: the spec's space field -> raynas space
SPACES: dict[str, str] = {"micro": "tnb101_micro", "macro": "tnb101_macro"}
#: the validation metric at its best epoch (every file) and at the last epoch (micro files only)
BEST_COLUMN = "val_metric_best_epoch"
FINAL_COLUMN = "val_metric_final_epoch"

_LEFT_OUT = ("epe_nas", "synflow")  # placeholder on 6 of 7 tasks; absent from these files (module docstring)
#: NASLib's proxy columns -> wide-table columns (NB-Suite-Zero's mapping, less epe_nas and synflow, plus zen)
TNB101_METRICS: tuple[MetricColumn, ...] = (
    *(m for m in NASLIB_METRICS if m.column not in _LEFT_OUT), MetricColumn("zen", "zen"),
)

#: what each validation metric is, for labels and answer lines
_UNITS = {
    "valid_top1": "% top-1 accuracy",
    "valid_acc": "% pixel accuracy",
    "valid_ssim": "SSIM",
    "valid_neg_loss": "negated validation loss (higher is better)",
}


def table_spec(space: str, task: str) -> str:
    """``tnb101:<space>:<task>`` (``space``: ``micro`` or ``macro``)."""
    return f"tnb101:{space}:{task}"


def sample_name(space: str, task: str) -> str:
    """The sample benchmark's name, ``tnb101_<space>_<task>``."""
    return f"tnb101_{space}_{task}"


def decode_tnb101_keys(keys: pa.Table, *, space: str, task: str) -> tuple[np.ndarray, list[str]]:
    """Decode a TransNAS-Bench-101 table's rows to raynas archs.

    Args:
        keys: the file's ``arch_str`` and ``val_metric_name`` columns, ``[n]`` rows each.
        space: ``micro`` or ``macro``.
        task: the table's task; every row's ``val_metric_name`` must be its :data:`~.tasks.TASKS` metric.
    Returns:
        ``(index int64 [n], canonical strings [n])`` in ``tnb101_<space>``, in row order.
    Raises:
        DataError: a string that is not an arch of the space, or a row of another validation metric (both name
            the first bad row).
    """
    from raynas.spaces import create_space

    sp = create_space(SPACES[space])
    want = TASKS[task].val_metric_name
    names = keys.column("val_metric_name").to_pylist()
    bad = next((r for r, v in enumerate(names) if v != want), None)
    if bad is not None:
        raise DataError(f"row {bad}: val_metric_name {names[bad]!r}, but {task}'s metric is {want!r}")
    idx, archs = [], []
    for r, text in enumerate(keys.column("arch_str").to_pylist()):
        try:
            a = sp.parse(text)
        except InvalidArchitectureError as e:
            raise DataError(f"row {r}: {e}") from None
        idx.append(sp.arch_to_index(a))
        archs.append(sp.format(a))
    return np.asarray(idx, np.int64), archs


def _units(task: str) -> str:
    return _UNITS.get(TASKS[task].val_metric_name, TASKS[task].val_metric_name)


def _sample(space: str, task: str, relpath: str, rows: str) -> SampleBenchmark:
    metric = TASKS[task].val_metric_name
    what = f"TNB101 {space} {task} NB-Suite-Zero sample ({rows})"
    finals = {task: BEST_COLUMN}
    labels = {BEST_COLUMN: f"{task} {metric} at the best epoch, {what}",
              COST_COLUMN: "query cost (s): not recorded by the sample, 0"}
    units = {BEST_COLUMN: f"{_units(task)} ({metric}, best epoch)"}
    axis = {BEST_COLUMN: f"{task} {metric} (TNB101 {space} sample)"}
    if space == "micro":
        finals[f"{task}_final_epoch"] = FINAL_COLUMN
        labels[FINAL_COLUMN] = f"{task} {metric} at the final epoch, {what}"
        units[FINAL_COLUMN] = f"{_units(task)} ({metric}, final epoch)"
        axis[FINAL_COLUMN] = f"{task} {metric}, final epoch (TNB101 {space} sample)"
    return SampleBenchmark(
        name=sample_name(space, task),
        space=SPACES[space],
        title=f"TNB101 {space} {task} sample",
        relpath=relpath,
        query_column=BEST_COLUMN,
        cost_column=COST_COLUMN,
        finals=finals,
        default_dataset=task,
        labels=labels,
        answer_units=units,
        axis_labels=axis,
        obtain=f"set RAYNAS_DATA to a folder that holds {relpath} (NAS-Bench-Suite-Zero's TransNAS-Bench-101 sample)",
        sample=True,
        spec=table_spec(space, task),
    )


def _register() -> dict[str, SampleBenchmark]:
    out: dict[str, SampleBenchmark] = {}
    for space in SPACES:
        for task, info in TASKS.items():
            if not info.higher_is_better:  # oracles, searches and answer ranks all take larger as better
                raise ConfigError(f"TNB101 {task}: {info.val_metric_name} is lower-is-better; a sample benchmark "
                                  "cannot rank it (no direction field on benchmarks)")
            rows = "711 archs" if space == "micro" else ("662 archs" if task.startswith("class_") else "725 archs")
            relpath = f"tnb101/tnb101_{space}_{task}.parquet"
            decoder = f"tnb101:{space}:{task}"
            ARCH_DECODERS.add(decoder, functools.partial(decode_tnb101_keys, space=space, task=task))
            register_table(PublishedTable(
                source="tnb101", space_key=space, dataset=task, space=SPACES[space], relpath=relpath,
                key_columns=("arch_str", "val_metric_name"), decoder=decoder, metrics=TNB101_METRICS,
                target=BEST_COLUMN, benchmark=sample_name(space, task),
                title=f"NAS-Bench-Suite-Zero TransNAS-Bench-101 {space} {task} sample ({rows})",
                citation=SOURCES["tnb101"], extra_targets=(FINAL_COLUMN,) if space == "micro" else (),
            ))
            out[sample_name(space, task)] = register_benchmark(_sample(space, task, relpath, rows))
    return out


#: the 14 sample benchmarks by name
SAMPLES: dict[str, SampleBenchmark] = _register()
