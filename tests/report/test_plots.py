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
