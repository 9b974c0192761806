import numpy as np

from raynas.report.correlation import correlate, format_table


def test_correlate_signs_by_direction_and_ignores_nan():
    acc = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    scores = {
        "up": np.array([10.0, 20.0, 30.0, 40.0, 50.0]),
        "down": np.array([5.0, 4.0, 3.0, 2.0, 1.0]),
        "holes": np.array([1.0, np.nan, 3.0, np.inf, 2.0]),
        "flat": np.ones(5),
    }
    rows = {r.metric: r for r in correlate(scores, acc, {"down": False})}
    assert np.isclose(rows["up"].rho, 1.0) and np.isclose(rows["up"].tau, 1.0) and rows["up"].n == 5
    assert np.isclose(rows["down"].rho, 1.0)  # lower-is-better metric negated
    assert rows["holes"].n == 3 and np.isclose(rows["holes"].rho, 0.5)  # ranks (1,3,2) vs (1,3,5)
    assert np.isnan(rows["flat"].rho)


def test_format_table_lists_published_diff():
    rows = correlate({"synflow": np.arange(4.0)}, np.arange(4.0), published={"synflow": 0.73})
    text = format_table(rows)
    assert "| synflow | 4 | 1.000 | 1.000 | 0.73 | +0.270 |" in text


def test_published_values_come_from_the_caller():
    """correlation.py holds no benchmark's numbers: without ``published`` no row claims one."""
    rows = correlate({"synflow": np.arange(4.0)}, np.arange(4.0))
    assert rows[0].published is None
    assert "| synflow | 4 | 1.000 | 1.000 | - | - |" in format_table(rows)


def test_format_table_without_published_columns():
    text = format_table(correlate({"synflow": np.arange(4.0)}, np.arange(4.0)), published=False)
    assert "published" not in text and "| synflow | 4 | 1.000 | 1.000 |" in text
