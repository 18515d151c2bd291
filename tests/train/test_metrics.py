import math

import numpy as np
import pytest
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve

from finscale.train.metrics import (
    brier_skill,
    classification_metrics,
    expected_calibration_error,
    log_loss,
    roc_auc,
)


def test_scores_of_a_small_example_by_hand():
    y = np.array([0, 0, 1, 1, 0])
    p = np.array([0.1, 0.6, 0.8, 0.4, 0.2])
    m = classification_metrics(y, p)
    expected_log_loss = -np.mean(np.log([0.9, 0.4, 0.8, 0.4, 0.8]))
    assert m["log_loss"] == pytest.approx(expected_log_loss)
    assert m["brier"] == pytest.approx(np.mean((p - y) ** 2))
    assert m["positive_rate"] == pytest.approx(0.4)
    assert m["brier_skill"] == pytest.approx(1 - m["brier"] / (0.4 * 0.6))
    # Positives 0.8, 0.4 against negatives 0.1, 0.6, 0.2: 5 of 6 pairs ordered.
    assert m["roc_auc"] == pytest.approx(5 / 6)
    # At 0.5: predicted positive 0.6 (wrong) and 0.8 (right).
    assert m["confusion_matrix"] == [[2, 1], [1, 1]]
    assert m["accuracy"] == pytest.approx(3 / 5)
    assert m["precision"] == pytest.approx(0.5)
    assert m["recall"] == pytest.approx(0.5)
    assert m["f1"] == pytest.approx(0.5)
    assert m["predicted_positive_rate"] == pytest.approx(0.4)
    assert m["prediction_range"] == pytest.approx(0.7)
    assert m["n_samples"] == 5


@pytest.mark.parametrize("case", ["random", "ties", "extremes", "all-below-threshold"])
def test_every_score_equals_scikit_learns(case):
    rng = np.random.default_rng(7)
    y = (rng.random(500) < 0.4).astype(float)
    p = {
        "random": rng.random(500),
        "ties": np.round(rng.random(500), 1),  # many tied scores across both classes
        "extremes": np.where(y == 1, 1.0, 0.0) * (rng.random(500) < 0.7),  # 0 and 1 exactly
        "all-below-threshold": rng.random(500) * 0.3,  # no predicted positive
    }[case]
    m = classification_metrics(y, p)
    hard = (p >= 0.5).astype(float)
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, p, labels=[0, 1]), rel=1e-12)
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p), rel=1e-12)
    assert m["brier"] == pytest.approx(skm.brier_score_loss(y, p), rel=1e-12)
    assert m["confusion_matrix"] == skm.confusion_matrix(y, hard, labels=[0, 1]).tolist()
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, hard))
    for name, score in (
        ("precision", skm.precision_score),
        ("recall", skm.recall_score),
        ("f1", skm.f1_score),
    ):
        assert m[name] == pytest.approx(score(y, hard, zero_division=0)), name


def test_threshold_moves_the_hard_metrics_only():
    y = np.array([0, 0, 1, 1])
    p = np.array([0.1, 0.3, 0.35, 0.9])
    low, high = classification_metrics(y, p, 0.32), classification_metrics(y, p, 0.5)
    assert low["recall"] == 1.0 and high["recall"] == 0.5
    assert low["log_loss"] == high["log_loss"] and low["roc_auc"] == high["roc_auc"]


def test_ece_is_zero_when_every_bin_is_calibrated_and_matches_bin_means():
    # Two bins, each with an observed rate equal to its predicted probability.
    y = np.array([1, 0, 0, 0, 0, 1, 1, 1, 1, 0])
    p = np.array([0.2] * 5 + [0.8] * 5)
    assert expected_calibration_error(y, p) == pytest.approx(0.0)
    rng = np.random.default_rng(0)
    p = rng.uniform(size=2000)
    y = (rng.uniform(size=2000) < p**2).astype(int)
    prob_true, prob_pred = calibration_curve(y, p, n_bins=15, strategy="uniform")
    bins = np.minimum((p * 15).astype(int), 14)
    weights = np.bincount(bins, minlength=15)
    weights = weights[weights > 0] / len(p)
    assert expected_calibration_error(y, p) == pytest.approx(
        float(np.sum(weights * np.abs(prob_true - prob_pred)))
    )


def test_collapsed_and_degenerate_predictions():
    y = np.array([0, 1, 0, 1])
    m = classification_metrics(y, np.full(4, 0.5))
    assert m["prediction_range"] == 0.0
    assert m["roc_auc"] == pytest.approx(0.5)
    assert m["brier_skill"] == pytest.approx(0.0)
    assert math.isnan(roc_auc(np.zeros(3), np.array([0.1, 0.2, 0.3])))
    assert math.isnan(brier_skill(0.1, 0.0))


@pytest.mark.parametrize(
    ("y", "p", "message"),
    [
        ([0, 1], [0.5], "2 labels but 1 predictions"),
        ([], [], "no samples"),
        ([0, 2], [0.5, 0.5], "labels must be 0 or 1"),
        ([0, 1], [0.5, 1.5], "probabilities"),
        ([0, 1], [0.5, float("nan")], "probabilities"),
    ],
)
def test_bad_inputs_are_refused(y, p, message):
    with pytest.raises(ValueError, match=message):
        log_loss(y, p)
