"""Report plots."""

from __future__ import annotations


def test_heavy_tailed_axes_are_logarithmic():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from raynas.report.plots import _scale_axis

    fig, axes = plt.subplots(1, 3)
    _scale_axis(axes[0], np.array([1.0, 2.0, 3.0]))
    _scale_axis(axes[1], np.array([1e-3, 1.0, 1e40]))
    _scale_axis(axes[2], np.array([0.0, 1e2, 1e40]))  # synflow: zeros for cells without a path
    assert [a.get_xscale() for a in axes] == ["linear", "log", "symlog"]
    plt.close(fig)


# --- issue 13, defect 13: every axis says what it shows ------------------------------------------------------


def _saved_figures(monkeypatch):
    """Figures the plot functions save (captured at ``savefig``, before they are closed)."""
    from matplotlib.figure import Figure

    saved = []
    real = Figure.savefig

    def capture(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        saved.append(self)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", capture)
    return saved


def test_every_metric_scatter_labels_its_x_axis(tmp_path, monkeypatch):
    import numpy as np

    from raynas.report.correlation import correlate
    from raynas.report.plots import scatter_metrics

    saved = _saved_figures(monkeypatch)
    rng = np.random.default_rng(0)
    acc = rng.uniform(80, 94, size=30)
    scores = {"params": rng.uniform(1e5, 2e5, size=30), "synflow": 10.0 ** rng.uniform(0, 40, size=30),
              "grasp": rng.normal(size=30) * 10.0 ** rng.uniform(0, 8, size=30)}
    rows = correlate(scores, acc, {m: True for m in scores})
    scatter_metrics(scores, acc, rows, tmp_path / "s.png", "CIFAR-10 test acc (200 ep)")
    (fig,) = saved
    panels = [ax for ax in fig.axes if ax.axison]
    assert [ax.get_xlabel() for ax in panels] == ["params score", "synflow score (log scale)",
                                                  "grasp score (symlog scale)"]
    assert all(ax.get_ylabel() == "CIFAR-10 test acc (200 ep)" for ax in panels)


def test_search_trace_y_axis_says_what_the_query_value_is(tmp_path, monkeypatch, nb201_table_path):
    import numpy as np

    from raynas.report.plots import query_axis_label, search_trace
    from raynas.search import CandidatePool, RoBoT
    from raynas.oracles.base import BenchmarkTableOracle

    oracle = BenchmarkTableOracle("nb201", nb201_table_path)
    idx = np.arange(0, 200, 7)
    pool = CandidatePool.from_table({"arch_index": idx, "m": np.sin(idx.astype(float))}, ["m"])
    result = RoBoT(pool, oracle, budget=3, seed=0, num_restarts=2, raw_samples=16).run()
    assert result["query_label"] == oracle.query_label  # the label comes from the oracle, through the result
    saved = _saved_figures(monkeypatch)
    v = np.asarray(result["values"])
    search_trace(np.arange(1, 4), v, np.cumsum(result["costs"]), tmp_path / "t.png", "query value",
                 query_label=result["query_label"])
    (fig,) = saved
    want = "query value: 12-epoch validation accuracy (%) on CIFAR-10"
    assert query_axis_label(result) == want
    assert [ax.get_ylabel().replace("\n", " ") for ax in fig.axes] == [want, want]  # wrapped to the panel
    assert [ax.get_xlabel() for ax in fig.axes] == ["queries", "cumulative cost (s)"]
    # an oracle that does not say what it measures: the plain label, nothing invented
    assert query_axis_label({"query_label": None}) == "query value"


def test_training_oracle_query_label_names_dataset_and_epochs():
    import torch

    from raynas.oracles.base import query_label
    from raynas.oracles.training import TrainingOracle

    data = ((torch.zeros(4, 1, 8, 8), torch.zeros(4, dtype=torch.long)),) * 2 + (2,)
    o = TrainingOracle(dataset="digits", train_cfg={"epochs": 3}, data=data)
    assert query_label(o) == "validation accuracy (%) on digits after 3 epochs of training"
