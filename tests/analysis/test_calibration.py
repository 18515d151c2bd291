import dataclasses
import json
import math

import numpy as np
import pytest
import sklearn.metrics
from scipy.special import expit
from sklearn.isotonic import IsotonicRegression

from finscale.analysis.calibration import (
    METHODS,
    PROBABILITY_FLOOR,
    Calibration,
    Calibrator,
    calibrate,
    calibration_scores,
    fit_calibrator,
    reliability_bins,
)
from finscale.train.metrics import expected_calibration_error, log_loss


def true_logits_and_labels(seed, n, scale=1.5):
    """Logits z and labels drawn with P(y = 1) = sigmoid(z)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, scale, n)
    return z, (rng.uniform(size=n) < expit(z)).astype(int)


def test_temperature_scaling_recovers_a_known_temperature_and_helps_on_held_out_data():
    z_val, y_val = true_logits_and_labels(0, 20_000)
    z_test, y_test = true_logits_and_labels(1, 20_000)
    # Three times too confident: calibrated output is sigmoid(logit / 3).
    calibrator = fit_calibrator("temperature", y_val, expit(3 * z_val))
    assert calibrator.params["temperature"] == pytest.approx(3.0, rel=0.1)
    before, after = expit(3 * z_test), calibrator.transform(expit(3 * z_test))
    assert expected_calibration_error(y_test, after) < 0.5 * expected_calibration_error(
        y_test, before
    )
    assert log_loss(y_test, after) < log_loss(y_test, before) - 0.05
    # Temperature keeps the ranking and the 0.5 point.
    assert calibrator.transform([0.5])[0] == pytest.approx(0.5)
    assert np.all(np.diff(calibrator.transform(np.linspace(0, 1, 101))) >= 0)


def test_platt_fixes_a_shifted_model_with_the_opposite_intercept():
    z_val, y_val = true_logits_and_labels(2, 20_000)
    z_test, y_test = true_logits_and_labels(3, 20_000)
    calibrator = fit_calibrator("platt", y_val, expit(z_val + 1.5))
    assert calibrator.params["intercept"] == pytest.approx(-1.5, abs=0.1)
    assert calibrator.params["slope"] == pytest.approx(1.0, abs=0.1)
    before, after = expit(z_test + 1.5), calibrator.transform(expit(z_test + 1.5))
    assert (
        expected_calibration_error(y_test, after)
        < 0.03
        < expected_calibration_error(y_test, before)
    )
    assert log_loss(y_test, after) < log_loss(y_test, before) - 0.05
    # Temperature cannot move the 0.5 point, so it cannot undo a shift as well.
    temperature = fit_calibrator("temperature", y_val, expit(z_val + 1.5))
    assert log_loss(y_test, after) < log_loss(y_test, temperature.transform(before))


def test_isotonic_lowers_ece_and_stays_monotone_within_the_floor():
    rng = np.random.default_rng(4)
    p_val, p_test = rng.uniform(size=5000), rng.uniform(size=5000)
    # True rate p**2; below p = 0.1 no positives at all, so the fit has an exact 0 step.
    y_val = ((rng.uniform(size=5000) < p_val**2) & (p_val > 0.1)).astype(int)
    y_test = (rng.uniform(size=5000) < p_test**2).astype(int)
    calibrator = fit_calibrator("isotonic", y_val, p_val)
    after = calibrator.transform(p_test)
    assert expected_calibration_error(y_test, after) < 0.5 * expected_calibration_error(
        y_test, p_test
    )
    grid = calibrator.transform(np.linspace(0.0, 1.0, 2001))
    assert np.all(np.diff(grid) >= 0)
    assert grid.min() == PROBABILITY_FLOOR
    assert grid.max() <= 1 - PROBABILITY_FLOOR
    # The test split has positives where the fit is exactly 0; the floor bounds their
    # loss at -ln(floor) instead of the ~36 nats log_loss charges for a probability of 0.
    unfloored = np.interp(p_test, calibrator.params["x"], calibrator.params["y"])
    assert np.sum((unfloored == 0) & (y_test == 1)) > 0
    assert -np.log(after[y_test == 1]).max() <= -math.log(PROBABILITY_FLOOR) + 1e-9
    assert log_loss(y_test, after) < log_loss(y_test, unfloored) - 0.01


def test_isotonic_thresholds_reproduce_scikit_learn_predictions():
    rng = np.random.default_rng(5)
    p = rng.uniform(size=800)
    y = (rng.uniform(size=800) < p**3).astype(int)
    calibrator = fit_calibrator("isotonic", y, p)
    fitted = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(p, y)
    # Including points outside the fitted range, which both hold at the end values.
    new = np.concatenate([[0.0, 1.0], rng.uniform(size=500)])
    expected = np.clip(fitted.predict(new), PROBABILITY_FLOOR, 1 - PROBABILITY_FLOOR)
    np.testing.assert_allclose(calibrator.transform(new), expected, atol=1e-12)


@pytest.mark.parametrize("method", METHODS)
def test_a_calibrator_read_back_from_json_transforms_identically(method):
    z, y = true_logits_and_labels(6, 1000)
    calibrator = fit_calibrator(method, y, expit(2 * z - 0.5))
    saved = json.loads(json.dumps(dataclasses.asdict(calibrator)))
    rebuilt = Calibrator(**saved)
    assert rebuilt == calibrator
    p = np.concatenate([[0.0, 1.0], expit(z[:100])])
    np.testing.assert_array_equal(rebuilt.transform(p), calibrator.transform(p))
    assert rebuilt.transform(p).shape == p.shape


def test_calibrate_reports_every_method_and_deltas_against_the_uncalibrated_test_scores():
    z_val, y_val = true_logits_and_labels(7, 1000)
    z_test, y_test = true_logits_and_labels(8, 1000)
    p_val, p_test = expit(3 * z_val), expit(3 * z_test)
    result = calibrate(y_val, p_val, y_test, p_test)
    stored = result.to_dict()
    assert set(stored) == {"uncalibrated", "best", *METHODS}
    assert set(stored["platt"]) == {"params", "val", "val_cv", "test", "test_delta"}
    assert Calibration.from_dict(json.loads(json.dumps(stored))) == result
    uncalibrated = result.uncalibrated.test
    assert uncalibrated == calibration_scores(y_test, p_test)
    assert uncalibrated.log_loss == pytest.approx(sklearn.metrics.log_loss(y_test, p_test))
    assert uncalibrated.brier == pytest.approx(sklearn.metrics.brier_score_loss(y_test, p_test))
    for method in METHODS:
        entry = result.methods[method]
        assert entry.params == fit_calibrator(method, y_val, p_val).params
        for key in ("ece", "brier", "log_loss"):
            before = getattr(result.uncalibrated.test, key)
            assert getattr(entry.test_delta, key) == pytest.approx(
                getattr(entry.test, key) - before
            )
        # Every method undoes this overconfidence.
        assert entry.test_delta.log_loss < 0


def test_best_is_chosen_on_cross_fitted_validation_scores_not_in_sample_or_test():
    # 300 validation samples of a model that is only too confident: isotonic wins
    # in sample by overfitting, but loses both held out and on the test split.
    z_val, y_val = true_logits_and_labels(0, 300)
    z_test, y_test = true_logits_and_labels(1, 2000)
    p_val, p_test = expit(3 * z_val), expit(3 * z_test)
    result = calibrate(y_val, p_val, y_test, p_test)
    in_sample = {m: result.methods[m].val.log_loss for m in METHODS}
    cross_fitted = {m: result.methods[m].val_cv.log_loss for m in METHODS}
    assert min(in_sample, key=in_sample.get) == "isotonic"
    assert result.best == min(cross_fitted, key=cross_fitted.get)
    assert result.best != "isotonic"
    assert result.methods["isotonic"].test.log_loss > result.methods[result.best].test.log_loss
    # Test labels that reward a different method do not change the choice.
    flipped = calibrate(y_val, p_val, 1 - y_test, p_test)
    assert flipped.best == result.best
    for method in METHODS:
        assert flipped.methods[method].val_cv == result.methods[method].val_cv
        assert flipped.methods[method].params == result.methods[method].params


def test_calibrate_honours_the_methods_it_is_given():
    z, y = true_logits_and_labels(9, 600)
    result = calibrate(y, expit(z + 1), y, expit(z + 1), methods=("platt",), cv_folds=3)
    assert set(result.methods) == {"platt"}
    assert result.best == "platt"


def test_reliability_bins_of_a_small_example_by_hand():
    y = [0, 1, 0, 1, 1, 0, 1]
    p = [0.05, 0.15, 0.12, 0.95, 1.0, 0.5, 0.2]
    bins = reliability_bins(y, p, n_bins=10)
    np.testing.assert_allclose(bins.bin_edges, np.linspace(0, 1, 11))
    assert bins.count == (1, 2, 1, 0, 0, 1, 0, 0, 0, 2)
    # Bin [0.1, 0.2) holds 0.15 (positive) and 0.12 (negative); 0.2 opens the next bin.
    assert bins.mean_predicted[1] == pytest.approx(0.135)
    assert bins.observed_rate[1] == pytest.approx(0.5)
    assert bins.observed_rate[2] == 1.0
    # p == 1 falls in the last bin.
    assert bins.mean_predicted[9] == pytest.approx(0.975)
    assert bins.observed_rate[9] == 1.0
    assert math.isnan(bins.mean_predicted[3]) and math.isnan(bins.observed_rate[3])
    assert all(isinstance(c, int) for c in bins.count)


def test_reliability_bins_count_every_sample_and_reproduce_the_ece():
    rng = np.random.default_rng(10)
    p = rng.beta(2, 5, size=3000)
    y = (rng.uniform(size=3000) < np.sqrt(p)).astype(int)
    bins = reliability_bins(y, p, n_bins=15)
    count = np.array(bins.count)
    assert count.sum() == 3000
    full = count > 0
    gap = np.abs(np.array(bins.observed_rate) - np.array(bins.mean_predicted))[full]
    assert float(np.sum(count[full] * gap) / 3000) == pytest.approx(
        expected_calibration_error(y, p)
    )


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: fit_calibrator("beta", [0, 1], [0.2, 0.8]), "temperature, platt, isotonic"),
        (lambda: fit_calibrator("platt", [0, 2], [0.2, 0.8]), "0 or 1"),
        (lambda: fit_calibrator("platt", [0, 0.5], [0.2, 0.8]), "0 or 1"),
        (lambda: fit_calibrator("platt", [0, 1], [0.2, 1.2]), r"\[0, 1\]"),
        (lambda: fit_calibrator("temperature", [0, 1], [-0.1, 0.8]), r"\[0, 1\]"),
        (lambda: fit_calibrator("isotonic", [0, 1], [np.nan, 0.8]), r"\[0, 1\]"),
        (lambda: fit_calibrator("platt", [0, 1], [0.2, 0.8, 0.5]), "2 labels but 3 predictions"),
        (lambda: fit_calibrator("platt", [], []), "no samples"),
        (lambda: fit_calibrator("platt", [1, 1], [0.2, 0.8]), "both classes"),
        (lambda: fit_calibrator("temperature", [0, 0], [0.2, 0.8]), "both classes"),
        (lambda: calibrate([0, 1], [0.2, 0.8], [1], [0.5], methods=("sigmoid",)), "platt"),
        (lambda: calibrate([0, 1], [0.2, 0.8], [1], [0.5], methods=()), "no calibration"),
        (
            lambda: calibrate([0, 1], [0.2, 0.8], [1], [0.5], methods=("platt", "platt")),
            "repeated",
        ),
        (lambda: calibrate([0, 1], [0.2, 0.8], [1], [0.5], cv_folds=1), "cv_folds"),
        (lambda: calibrate([0, 1], [0.2, 0.8], [1], [0.5], cv_folds=3), "3 folds"),
        (lambda: calibrate([0, 1], [0.2, 0.8], [1], [1.5]), r"\[0, 1\]"),
        (lambda: reliability_bins([0, 1], [0.2, 0.8], n_bins=0), "n_bins"),
        (lambda: reliability_bins([0, 3], [0.2, 0.8]), "0 or 1"),
        (lambda: Calibrator("platt", {"slope": 1.0}), "intercept"),
        (lambda: Calibrator("temperature", {"temperature": 0.0}), "positive"),
        (lambda: Calibrator("isotonic", {"x": [0.5, 0.2], "y": [0.1, 0.3]}), "increasing"),
        (lambda: Calibrator("platt", {"slope": 1.0, "intercept": 0.0}).transform([2.0]), "0, 1"),
    ],
)
def test_bad_inputs_raise_value_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_one_sided_validation_folds_are_reported_for_cross_fitting():
    # Every positive sits in the last fold, so the other folds hold one class only.
    p = np.linspace(0.05, 0.95, 50)
    y = (np.arange(50) >= 45).astype(int)
    with pytest.raises(ValueError, match=r"cross-fitting.*both classes"):
        calibrate(y, p, y, p, methods=("platt",))
