"""The report's figures drawn from plain records."""

import numpy as np

from finscale.report.figures import architecture_grid, hpo_history_figure


def trial(number, state, value=None, last=None, duplicate_of=None, d_model=8, n_layers=1):
    return {
        "number": number,
        "state": state,
        "value": value,
        "last_value": last if last is not None else value,
        "duplicate_of": duplicate_of,
        "architecture": {"d_model": d_model, "n_layers": n_layers},
    }


TRIALS = [
    trial(0, "COMPLETE", 0.70, d_model=4),
    trial(1, "PRUNED", last=0.72, d_model=8),
    trial(2, "COMPLETE", 0.65, d_model=8, n_layers=2),
    trial(3, "COMPLETE", 0.65, duplicate_of=2, d_model=8, n_layers=2),
    trial(4, "FAIL"),
    trial(5, "COMPLETE", 0.69, d_model=4),
]


def test_hpo_history_marks_pruned_duplicate_failed_and_best_so_far():
    fig = hpo_history_figure([("4K", TRIALS, 2)])
    ax = fig.axes[0]
    labels = ax.get_legend_handles_labels()[1]
    for label in ("complete", "pruned (last value)", "duplicate (value reused)", "winner"):
        assert label in labels
    assert "1 failed" in ax.get_title()
    (best_line,) = [line for line in ax.get_lines() if line.get_label() == "best so far"]
    assert list(best_line.get_ydata()) == [0.70, 0.65, 0.65, 0.65]


def test_architecture_grid_keeps_the_best_complete_trial_per_cell():
    grid = architecture_grid(TRIALS, d_models=[4, 8, 16], n_layers=[1, 2])
    expected = np.array([[0.69, np.nan, np.nan], [np.nan, 0.65, np.nan]])
    np.testing.assert_array_equal(grid, expected)  # the pruned d8/L1 trial is not a result
