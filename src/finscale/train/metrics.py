"""Scores of predicted probabilities against binary labels.

Pure functions of numpy arrays, each the textbook definition in a line or two of
numpy (which also spares a training process the import of scikit-learn's metrics or
scipy.stats, 2-4 s). They are not scikit-learn's because of its input checks: about 4 ms a call
whatever the size, paid twice per epoch (validation log loss and ROC AUC) and ~25 ms
per `classification_metrics`, a tenth to a third of a small model's epoch. The tests
hold every score equal to scikit-learn's (`tests/train/test_metrics.py`).
Expected calibration error has no scikit-learn counterpart: `calibration_curve`
returns bin means without bin sizes.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

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
    """Mean binary cross-entropy in nats (the study's objective); probabilities are
    clipped to [eps, 1 - eps] of float64, as scikit-learn's `log_loss` clips them."""
    y, p = check_binary(y_true, p_pred)
    eps = np.finfo(np.float64).eps
    p = np.clip(p, eps, 1.0 - eps)
    return float(-np.mean(y * np.log(p) + (1.0 - y) * np.log1p(-p)))


def roc_auc(y_true: Any, p_pred: Any) -> float:
    """Area under the ROC curve; NaN when only one class is present."""
    y, p = check_binary(y_true, p_pred)
    if y.min() == y.max():
        return math.nan
    # The Mann-Whitney form: the chance a positive outranks a negative, ties counting
    # half (average ranks).
    positives = y == 1.0
    n_pos, n_neg = int(positives.sum()), int((~positives).sum())
    # Average ranks (1-based) of the sorted unique scores, given back to every sample.
    _, inverse, counts = np.unique(p, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    ranks = (ends - (counts - 1) / 2.0)[inverse]
    rank_sum = ranks[positives].sum()
    return float((rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


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


def _ratio(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else 0.0


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
    brier = float(np.mean((p - y) ** 2))
    # [[tn, fp], [fn, tp]]: row = label, column = hard prediction.
    confusion = np.bincount((2 * y + hard).astype(int), minlength=4).reshape(2, 2)
    (tn, fp), (fn, tp) = confusion.tolist()
    return {
        "n_samples": int(y.size),
        "log_loss": log_loss(y, p),
        "brier": brier,
        "brier_skill": brier_skill(brier, positive_rate),
        "roc_auc": roc_auc(y, p),
        "ece": expected_calibration_error(y, p),
        "accuracy": (tp + tn) / y.size,
        # 0 where the denominator is 0, as scikit-learn's zero_division=0.
        "precision": _ratio(tp, tp + fp),
        "recall": _ratio(tp, tp + fn),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
        "confusion_matrix": confusion.tolist(),
        "positive_rate": positive_rate,
        "predicted_positive_rate": float(hard.mean()),
        "prediction_range": float(p.max() - p.min()),
        "threshold": threshold,
    }
