"""The computation of a study's results from its loaded runs."""

import numpy as np
import pytest
from sklearn.metrics import log_loss as sklearn_log_loss

from finscale.analysis.run_calibration import calibration_summary


def _seed_splits(y_val, y_test, seed):
    """One seed's ((y_val, p_val), (y_test, p_test)): predictions that track the labels."""
    rng = np.random.default_rng(seed)
    p_val = np.clip(0.2 + 0.5 * np.asarray(y_val) + rng.normal(0, 0.1, len(y_val)), 0.01, 0.99)
    p_test = np.clip(0.2 + 0.5 * np.asarray(y_test) + rng.normal(0, 0.1, len(y_test)), 0.01, 0.99)
    return (np.asarray(y_val), p_val), (np.asarray(y_test), p_test)


def test_calibration_is_chosen_on_validation_or_skipped_with_its_reason():
    y_test = [0, 1] * 50
    spread = [int(i % 7 == 0) for i in range(140)]
    summary = calibration_summary([_seed_splits(spread, y_test, s) for s in range(2)])
    assert summary.best in ("temperature", "platt", "isotonic")
    assert summary.best in summary.reliability
    # Every positive of validation in its first fifth: fitted on the other four fifths,
    # a calibrator sees no positive. The report says so instead of failing.
    clustered = [1] * 10 + [0] * 130
    splits = [_seed_splits(clustered, y_test, s) for s in range(2)]
    summary = calibration_summary(splits)
    assert summary.best is None and "both classes" in summary.skipped
    # The uncalibrated scores kept are the seeds' mean test log loss, as scikit-learn has it.
    expected = np.mean([sklearn_log_loss(y, p) for _, (y, p) in splits])
    assert summary.methods["uncalibrated"].test.log_loss == pytest.approx(expected)
    assert sum(summary.reliability["uncalibrated"].count) == 2 * len(y_test)
