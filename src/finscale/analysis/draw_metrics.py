"""Classification metrics of many date draws at once: every metric of
`finscale.train.metrics.classification_metrics`, recomputed for each row of a
(n_resamples, n_samples) matrix of test-date indices, in vectorised form.

A draw only repeats the original samples, so the log loss gathers each sample's
loss once and the ROC AUC counts drawn positives and negatives per distinct score
instead of ranking every row; the draws are taken a chunk at a time
(`finscale.analysis.resampling.GATHER_BYTES`) so that memory stays bounded whatever
the test length. `finscale.analysis.bootstrap` builds its intervals on these.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import stats

from finscale.analysis.resampling import GATHER_BYTES
from finscale.train import ECE_BINS, check_binary

METRICS = (
    "log_loss",
    "brier",
    "brier_skill",
    "roc_auc",
    "accuracy",
    "precision",
    "recall",
    "f1",
    "ece",
    "prediction_range",
)


def seed_rows(y_true: Any, y_prob: Any) -> tuple[np.ndarray, np.ndarray]:
    """y_true as float (n_samples,), y_prob as float (n_seeds, n_samples) (a 1-D y_prob
    is one seed); values checked by `finscale.train.check_binary`."""
    y = np.asarray(y_true, dtype=float)
    p = np.asarray(y_prob, dtype=float)
    if y.ndim != 1 or y.size == 0:
        raise ValueError(f"labels must be a non-empty 1-D array, got shape {y.shape}")
    if p.ndim == 1:
        p = p[None, :]
    if p.ndim != 2 or p.shape[1] != y.size or p.shape[0] == 0:
        raise ValueError(
            f"predictions must have shape (n_seeds, {y.size}) or ({y.size},), got {p.shape}"
        )
    check_binary(np.broadcast_to(y, p.shape), p)
    return y, p


def checked_indices(indices: Any, n_samples: int) -> np.ndarray:
    indices = np.asarray(indices)
    if indices.ndim != 2 or indices.shape[0] == 0 or indices.shape[1] == 0:
        raise ValueError(
            f"indices must have shape (n_resamples, n_samples), got shape {indices.shape}"
        )
    if not np.issubdtype(indices.dtype, np.integer):
        raise ValueError(f"indices must be integers, got dtype {indices.dtype}")
    if indices.min() < 0 or indices.max() >= n_samples:
        raise ValueError(f"indices must lie in [0, {n_samples}) for {n_samples} samples")
    return indices


def _safe_ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, 0 where the denominator is 0 (scikit-learn's zero_division=0)."""
    out = np.zeros(numerator.shape, dtype=float)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def _roc_auc_rows(labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """ROC AUC of every row, shape (n_resamples,); NaN where a row has one class.

    Mann-Whitney U from average ranks: tied scores count half, exactly as the
    trapezoidal ROC area of scikit-learn.
    """
    ranks = stats.rankdata(probs, method="average", axis=1)
    n_pos = labels.sum(axis=1)
    n_neg = labels.shape[1] - n_pos
    rank_sum_pos = (ranks * labels).sum(axis=1)
    u_statistic = rank_sum_pos - n_pos * (n_pos + 1.0) / 2.0
    pairs = n_pos * n_neg
    auc = np.full(labels.shape[0], math.nan)
    np.divide(u_statistic, pairs, out=auc, where=pairs > 0)
    return auc


def _roc_auc_of_draws(y: np.ndarray, p: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """`_roc_auc_rows(y[rows], p[rows])` without ranking every row: each draw only
    repeats the original samples, so its Mann-Whitney U counts, for each distinct
    score, the drawn positives at it against the drawn negatives below it (ties
    half). y, p: (n,); rows: (n_rows, n) indices into them."""
    values, inverse = np.unique(p, return_inverse=True)
    n_rows, n_values = rows.shape[0], values.size
    cells = (np.arange(n_rows)[:, None] * n_values + inverse[rows]).ravel()
    positive = y[rows].ravel().astype(float)
    size = n_rows * n_values
    pos = np.bincount(cells, weights=positive, minlength=size).reshape(n_rows, n_values)
    neg = np.bincount(cells, weights=1.0 - positive, minlength=size).reshape(n_rows, n_values)
    below = np.cumsum(neg, axis=1) - neg
    u_statistic = (pos * (below + 0.5 * neg)).sum(axis=1)
    pairs = pos.sum(axis=1) * neg.sum(axis=1)
    auc = np.full(n_rows, math.nan)
    np.divide(u_statistic, pairs, out=auc, where=pairs > 0)
    return auc


def _ece_rows(labels: np.ndarray, probs: np.ndarray, n_bins: int = ECE_BINS) -> np.ndarray:
    """Expected calibration error of every row, as `metrics.expected_calibration_error`."""
    n_rows, n_cols = probs.shape
    bins = np.minimum((probs * n_bins).astype(np.int64), n_bins - 1)
    # Offsetting each row's bin ids by row * n_bins lets one bincount fill every row.
    ids = (bins + n_bins * np.arange(n_rows)[:, None]).ravel()
    observed = np.bincount(ids, weights=labels.ravel(), minlength=n_rows * n_bins)
    predicted = np.bincount(ids, weights=probs.ravel(), minlength=n_rows * n_bins)
    gap = np.abs(observed - predicted).reshape(n_rows, n_bins)
    return gap.sum(axis=1) / n_cols


def sample_log_loss(labels: Any, probs: Any) -> np.ndarray:
    """The binary cross-entropy of each prediction, shaped like `probs` (labels broadcast).

    scikit-learn clips p and 1 - p (each) to [eps, 1 - eps] of the dtype so a
    confident wrong 0/1 prediction costs -log(eps) instead of infinity; means
    over samples equal its log loss.
    """
    probs = np.asarray(probs, dtype=float)
    labels = np.asarray(labels, dtype=float)
    eps = np.finfo(probs.dtype).eps
    log_p = np.log(np.clip(probs, eps, 1.0 - eps))
    log_q = np.log(np.clip(1.0 - probs, eps, 1.0 - eps))
    return -(labels * log_p + (1.0 - labels) * log_q)


def metric_rows_of_draws(
    y: np.ndarray,
    p: np.ndarray,
    rows: np.ndarray,
    threshold: float,
    names: tuple[str, ...] = METRICS,
) -> dict[str, np.ndarray]:
    """`_metric_rows(y[rows], p[rows], ...)` a chunk of rows at a time, so a test split
    of 100,000 dates and 1,000 draws never holds its draws' labels, scores and AUC
    counts at once (gigabytes); each metric (n_rows,) as one call gives it."""
    chunk = max(1, GATHER_BYTES // max(1, rows.shape[1] * 8))
    parts = [
        _metric_rows(y[block], p[block], threshold, names, source=(y, p, block))
        for block in (rows[a : a + chunk] for a in range(0, rows.shape[0], chunk))
    ]
    return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}


def _metric_rows(
    labels: np.ndarray,
    probs: np.ndarray,
    threshold: float,
    names: tuple[str, ...] = METRICS,
    source: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """Metrics in `names` of every row of (labels, probs), both shape (n_resamples, n_samples).

    `source`: (y, p, rows) with labels = y[rows] and probs = p[rows], which
    lets the log loss gather per-sample losses and the AUC count draws instead
    of ranking every row (the same values).
    """
    out: dict[str, np.ndarray] = {}
    if "log_loss" in names:
        if source is None:
            out["log_loss"] = sample_log_loss(labels, probs).mean(axis=1)
        else:  # each sample's loss once, then gathered: a draw only repeats samples
            y, p, rows = source
            out["log_loss"] = sample_log_loss(y, p)[rows].mean(axis=1)
    if "brier" in names or "brier_skill" in names:
        brier = ((probs - labels) ** 2).mean(axis=1)
        if "brier" in names:
            out["brier"] = brier
        if "brier_skill" in names:
            # Against always predicting the resample's own positive rate, as the
            # full-sample metric does; undefined when that rate is 0 or 1.
            rate = labels.mean(axis=1)
            reference = rate * (1.0 - rate)
            defined = reference != 0.0
            skill = 1.0 - brier / np.where(defined, reference, 1.0)
            out["brier_skill"] = np.where(defined, skill, math.nan)
    if "roc_auc" in names:
        out["roc_auc"] = (
            _roc_auc_rows(labels, probs) if source is None else _roc_auc_of_draws(*source)
        )
    if {"accuracy", "precision", "recall", "f1"} & set(names):
        hard = probs >= threshold
        positive = labels == 1.0
        tp = (hard & positive).sum(axis=1).astype(float)
        fp = (hard & ~positive).sum(axis=1).astype(float)
        fn = (~hard & positive).sum(axis=1).astype(float)
        n_cols = labels.shape[1]
        tn = n_cols - tp - fp - fn
        out["accuracy"] = (tp + tn) / n_cols
        out["precision"] = _safe_ratio(tp, tp + fp)
        out["recall"] = _safe_ratio(tp, tp + fn)
        # 2 tp / (2 tp + fp + fn) is the harmonic mean of precision and recall
        # written the way scikit-learn computes it, without 0/0 when tp = 0.
        out["f1"] = _safe_ratio(2.0 * tp, 2.0 * tp + fp + fn)
    if "ece" in names:
        out["ece"] = _ece_rows(labels, probs)
    if "prediction_range" in names:
        out["prediction_range"] = probs.max(axis=1) - probs.min(axis=1)
    return {name: out[name] for name in names}


def resampled_metrics(
    y: Any, p: Any, indices: Any, threshold: float = 0.5
) -> dict[str, np.ndarray]:
    """Every metric of METRICS on every resample of one set of predictions.

    y: labels (n_samples,), 0/1. p: probabilities of the positive class
    (n_samples,). indices: int (n_resamples, n_samples), rows of test-date
    indices (from `bootstrap_indices`). Hard metrics (accuracy, precision,
    recall, f1) count p >= threshold as positive, with 0 for a 0/0 ratio.

    Returns {metric: array (n_resamples,)}; log_loss in nats, brier in squared
    probability, the rest unitless. roc_auc is NaN on a resample with one
    class only, brier_skill where its positive rate is 0 or 1. With
    `indices = np.arange(n)[None, :]` the values equal
    `finscale.train.metrics.classification_metrics(y, p, threshold)`.
    """
    y, p2 = seed_rows(y, p)
    if p2.shape[0] != 1:
        raise ValueError(f"resampled_metrics takes one set of predictions, got {p2.shape[0]}")
    indices = checked_indices(indices, y.size)
    return metric_rows_of_draws(y, p2[0], indices, threshold)
