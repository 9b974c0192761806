"""What ``raynas score`` says and does, in order, for tests of the cost estimate (issue 29 item 4)."""

from __future__ import annotations

from typing import Any

import pytest


def record_score_events(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Record every line ``raynas score`` writes on stderr (``("line", text)``) and every arch the engine scores
    (``("score", "metric,metric")``), in the order they happen.

    Args:
        monkeypatch: the test's monkeypatch (the engine and the CLI's line writer are patched for the test only).

    Returns:
        the list the events are appended to.
    """
    import raynas.metrics.engine as engine
    from raynas.cli import score_cmd

    events: list[tuple[str, str]] = []
    real = engine.compute_metrics

    def scoring(factory: Any, batch: Any, names: Any, **kw: Any) -> Any:
        events.append(("score", ",".join(names)))
        return real(factory, batch, names, **kw)

    monkeypatch.setattr(engine, "compute_metrics", scoring)
    monkeypatch.setattr(score_cmd, "write_line", lambda text: events.append(("line", text)))
    return events
