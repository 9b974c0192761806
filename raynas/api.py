"""Library entry points the CLI calls (one function per command)."""

from __future__ import annotations

from typing import Iterator


def describe_registry(what: str) -> Iterator[str]:
    """One line per registered entry of ``what`` (spaces, metrics, datasets, oracles)."""
    if what == "metrics":
        from raynas.metrics import METRICS, list_metrics

        for name in list_metrics():
            s = METRICS.get(name)
            flags = [
                "labels" if s.needs_labels else "no-labels",
                "data" if s.needs_data else "data-free",
                f"bn={s.bn}",
                str(s.dtype).replace("torch.", ""),
                "higher-better" if s.higher_is_better else "lower-better",
            ]
            yield f"{name:18s} {' '.join(flags):60s} {s.reference}"
    elif what == "spaces":
        from raynas.spaces import create_space, list_spaces

        for name in list_spaces():
            yield f"{name:16s} size={create_space(name).size}"
    elif what == "datasets":
        from raynas.data import DATASETS

        for name in DATASETS.names():
            yield name
    elif what == "oracles":
        from raynas.search.oracle import ORACLES

        for name in ORACLES.names():
            yield name
