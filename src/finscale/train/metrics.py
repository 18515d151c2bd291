"""Scores of predicted probabilities against binary labels.

Pure functions of numpy arrays; scikit-learn computes every metric it has
(log loss, Brier, ROC AUC, accuracy, precision, recall, F1, confusion
matrix). Expected calibration error is written out here because
scikit-learn's `calibration_curve` returns bin means without bin sizes.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from sklearn import metrics as skm

ECE_BINS = 15


def check_binary(y_true: Any, p_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    """Flat float arrays of 0/1 labels and probabilities, checked (ValueError says what
    is wrong)."""
    y = np.asarray(y_true, dtype=float).ravel()
    p = np.asarray(p_pred, dtype=float).ravel()
    if y.shape != p.shape:
        raise ValueError(f"{y.size} labels but {p.size} predictions")
    if y.size == 0:
        raise ValueError("no samples to score")
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("labels must be 0 or 1")
    if not (np.isfinite(p).all() and (p >= 0).all() and (p <= 1).all()):
        raise ValueError("predictions must be probabilities in [0, 1]")
    return y, p


def log_loss(y_true: Any, p_pred: Any) -> float:
    """Mean binary cross-entropy in nats (the study's objective)."""
    y, p = check_binary(y_true, p_pred)
    return float(skm.log_loss(y, p, labels=[0, 1]))


def roc_auc(y_true: Any, p_pred: Any) -> float:
    """Area under the ROC curve; NaN when only one class is present."""
    y, p = check_binary(y_true, p_pred)
    if y.min() == y.max():
        return math.nan
    return float(skm.roc_auc_score(y, p))


def expected_calibration_error(y_true: Any, p_pred: Any, n_bins: int = ECE_BINS) -> float:
    """Mean |observed positive rate - mean predicted probability| over `n_bins`
    equal-width probability bins, weighted by the share of samples in each bin."""
    y, p = check_binary(y_true, p_pred)
    # Bin i holds p in [i/n, (i+1)/n); p == 1 falls in the last bin.
    bins = np.minimum((p * n_bins).astype(int), n_bins - 1)
    # (n_b / N) x |mean label - mean prediction| of bin b is |sum labels - sum predictions| / N.
    observed = np.bincount(bins, weights=y, minlength=n_bins)
    predicted = np.bincount(bins, weights=p, minlength=n_bins)
    return float(np.abs(observed - predicted).sum() / y.size)


def brier_skill(brier: float, reference_rate: float) -> float:
    """1 - Brier / Brier of always predicting `reference_rate` on labels whose own
    positive rate is also `reference_rate`: above 0 beats the base rate."""
    reference = reference_rate * (1.0 - reference_rate)
    return math.nan if reference == 0.0 else 1.0 - brier / reference


def classification_metrics(
    y_true: Any, p_pred: Any, threshold: float = 0.5
) -> dict[str, float | int | list[list[int]]]:
    """Every score of one set of predictions.

    Probabilistic: log_loss, brier, brier_skill (against predicting the
    labels' own positive rate), roc_auc, ece, prediction_range (max - min
    predicted probability: near 0 means the model collapsed to a constant).
    At `threshold`: accuracy, precision, recall, f1, the confusion matrix
    [[tn, fp], [fn, tp]] and predicted_positive_rate. Also positive_rate
    (share of positive labels) and n_samples.
    """
    y, p = check_binary(y_true, p_pred)
    hard = (p >= threshold).astype(float)
    positive_rate = float(y.mean())
    brier = float(skm.brier_score_loss(y, p, pos_label=1))
    confusion = skm.confusion_matrix(y, hard, labels=[0, 1])
    return {
        "n_samples": int(y.size),
        "log_loss": log_loss(y, p),
        "brier": brier,
        "brier_skill": brier_skill(brier, positive_rate),
        "roc_auc": roc_auc(y, p),
        "ece": expected_calibration_error(y, p),
        "accuracy": float(skm.accuracy_score(y, hard)),
        "precision": float(skm.precision_score(y, hard, zero_division=0)),
        "recall": float(skm.recall_score(y, hard, zero_division=0)),
        "f1": float(skm.f1_score(y, hard, zero_division=0)),
        "confusion_matrix": confusion.astype(int).tolist(),
        "positive_rate": positive_rate,
        "predicted_positive_rate": float(hard.mean()),
        "prediction_range": float(p.max() - p.min()),
        "threshold": threshold,
    }
