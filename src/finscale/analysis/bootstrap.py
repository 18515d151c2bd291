"""Uncertainty of test metrics: over training seeds and over test dates.

A model's test predictions are an array `preds` of shape (n_seeds, n_samples):
probabilities of the positive class, one row per training seed (a
deterministic baseline has n_seeds = 1), against 0/1 labels `y` of shape
(n_samples,) in date order.

Two sources of noise are reported. Seed noise is the spread of the metric
over training seeds (a Student-t interval of their mean). Test-date noise is
estimated with a circular block bootstrap over the test dates: labels over a
horizon of h days overlap, so neighbouring dates are dependent and must be
resampled in blocks. One index matrix, shape (n_resamples, n_samples), is
drawn per horizon and shared by every model, so comparisons between models
are paired on exactly the same resampled dates.

Pure functions of numpy arrays. Metrics are recomputed for every resample in
vectorised form and agree with `finscale.train.metrics.classification_metrics`
on the identity resample.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from finscale.analysis.power import minimum_detectable_effect
from finscale.analysis.resampling import (  # noqa: F401  (re-exported: the draws intervals use)
    GATHER_BYTES,
    automatic_block_days,
    bootstrap_indices,
    date_bootstrap_indices,
    stratified_bootstrap_indices,
)
from finscale.analysis.seeds import normal_p_value, satterthwaite_df, seed_draws, widened
from finscale.analysis.serial import Record, stored
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

# prediction_range is a diagnostic (near 0 means the model collapsed to a
# constant), not a score with a better direction, so it has no entry.
LOWER_IS_BETTER: dict[str, bool] = {
    "log_loss": True,
    "brier": True,
    "ece": True,
    "brier_skill": False,
    "roc_auc": False,
    "accuracy": False,
    "precision": False,
    "recall": False,
    "f1": False,
}

# The values each metric can take. A Student-t interval over two or three seeds is
# wide and symmetric; it is cut to these bounds so no report shows an AUC of 1.2.
BOUNDS: dict[str, tuple[float, float]] = {
    "log_loss": (0.0, math.inf),
    "brier": (0.0, 1.0),
    "brier_skill": (-math.inf, 1.0),
    **{name: (0.0, 1.0) for name in ("roc_auc", "accuracy", "precision", "recall", "f1")},
    "ece": (0.0, 1.0),
    "prediction_range": (0.0, 1.0),
}

IMPROVES = "improves"
NO_DIFFERENCE = "no detectable difference"
WORSENS = "worsens"


def _seed_rows(y_true: Any, y_prob: Any) -> tuple[np.ndarray, np.ndarray]:
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


def _checked_indices(indices: Any, n_samples: int) -> np.ndarray:
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


def _metric_rows_of_draws(
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
    y, p2 = _seed_rows(y, p)
    if p2.shape[0] != 1:
        raise ValueError(f"resampled_metrics takes one set of predictions, got {p2.shape[0]}")
    indices = _checked_indices(indices, y.size)
    return _metric_rows_of_draws(y, p2[0], indices, threshold)


def percentile_interval(values: np.ndarray, level: float) -> tuple[float, float]:
    """Percentile interval of `values`, ignoring NaN; NaN bounds if all are NaN."""
    finite = values[~np.isnan(values)]
    if finite.size == 0:
        return math.nan, math.nan
    tail = 100.0 * (1.0 - level) / 2.0
    low, high = np.percentile(finite, [tail, 100.0 - tail])
    return float(low), float(high)


def _spread(values: np.ndarray) -> float:
    """Sample standard deviation of `values`, ignoring NaN; NaN with fewer than two."""
    finite = values[~np.isnan(values)]
    return float(finite.std(ddof=1)) if finite.size > 1 else math.nan


def _check_level(level: float) -> None:
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie strictly between 0 and 1, got {level!r}")


@dataclass(frozen=True, kw_only=True)
class MetricSummary(Record):
    """One metric of one model over its training seeds and its test dates, in the
    metric's units (log loss in nats, Brier in squared probability, the rest unitless).

    mean: mean over seeds of the full-sample metric; per_seed: the full-sample
    metric of each seed; seed_std: their sample standard deviation (ddof 1), 0.0
    for one seed; seed_low, seed_high: Student-t interval of the mean over seeds
    (mean ± t * std / sqrt(n_seeds)), cut to the metric's BOUNDS, both the mean for
    one seed; boot_low, boot_high: percentile interval over the test-date resamples
    of the seed-mean metric, NaN resamples (one class only) left out; n_seeds,
    n_resamples: counts; n_valid_resamples: resamples with a value.
    """

    mean: float
    per_seed: tuple[float, ...]
    seed_std: float
    seed_low: float
    seed_high: float
    boot_low: float
    boot_high: float
    n_seeds: int
    n_resamples: int
    n_valid_resamples: int


def summarize_runs(
    y: Any, preds: Any, indices: Any, threshold: float = 0.5, level: float = 0.95
) -> dict[str, MetricSummary]:
    """Seed and test-date intervals of every metric of one model.

    y: labels (n_samples,). preds: probabilities (n_seeds, n_samples), one row
    per training seed (a 1-D array is one seed). indices: (n_resamples,
    n_samples) from `bootstrap_indices`. level: coverage of both intervals.

    Returns {metric: its `MetricSummary`} for every metric of METRICS.
    """
    _check_level(level)
    y, preds = _seed_rows(y, preds)
    indices = _checked_indices(indices, y.size)
    identity = np.arange(y.size)[None, :]
    n_seeds, n_resamples = preds.shape[0], indices.shape[0]

    full = {name: np.empty(n_seeds) for name in METRICS}
    resampled = {name: np.zeros(n_resamples) for name in METRICS}
    for seed_row, p in enumerate(preds):
        at_once = _metric_rows(y[identity], p[identity], threshold, source=(y, p, identity))
        for name, values in at_once.items():
            full[name][seed_row] = values[0]
        drawn = _metric_rows_of_draws(y, p, indices, threshold)
        for name, values in drawn.items():
            resampled[name] += values / n_seeds

    t_quantile = float(stats.t.ppf(0.5 + level / 2.0, n_seeds - 1)) if n_seeds > 1 else 0.0
    summary = {}
    for name in METRICS:
        per_seed = full[name]
        mean = float(per_seed.mean())
        std = float(per_seed.std(ddof=1)) if n_seeds > 1 else 0.0
        half_width = t_quantile * std / math.sqrt(n_seeds)
        boot_low, boot_high = percentile_interval(resampled[name], level)
        summary[name] = MetricSummary(
            mean=mean,
            per_seed=tuple(float(v) for v in per_seed),
            seed_std=std,
            seed_low=max(mean - half_width, BOUNDS[name][0]),
            seed_high=min(mean + half_width, BOUNDS[name][1]),
            boot_low=boot_low,
            boot_high=boot_high,
            n_seeds=n_seeds,
            n_resamples=n_resamples,
            n_valid_resamples=int(np.count_nonzero(~np.isnan(resampled[name]))),
        )
    return summary


def verdict(low: float, high: float, lower_is_better: bool = True) -> str:
    """IMPROVES, NO_DIFFERENCE or WORSENS for an interval [low, high] of a difference b - a.

    A change is claimed only when the whole interval lies on one side of zero;
    an interval that includes zero, or has a NaN bound, is NO_DIFFERENCE.
    """
    if math.isnan(low) or math.isnan(high):
        return NO_DIFFERENCE
    below, above = high < 0.0, low > 0.0
    if lower_is_better:
        return IMPROVES if below else WORSENS if above else NO_DIFFERENCE
    return IMPROVES if above else WORSENS if below else NO_DIFFERENCE


@dataclass(frozen=True, kw_only=True)
class PairedDifference(Record):
    """The difference b - a of the seed-mean `metric` of two models on the same
    resampled test dates, in the metric's units.

    difference: mean_b - mean_a of the full-sample metric; low, high: percentile
    interval at `level` of the resampled differences (NaN resamples left out);
    lower_is_better: from LOWER_IS_BETTER, None for a metric without a better
    direction (prediction_range); verdict: for b against a, from `verdict`, None
    without a direction; spread: standard deviation of the resampled differences
    (its standard error), with its two parts date_spread (dates resampled, every
    seed kept) and seed_spread (what the seeds' own effects add, `seed_draws`),
    whose squares add up to about spread's; df: the Welch-Satterthwaite degrees
    of freedom of that variance where the seed part is estimated from few seeds
    (the interval is then stretched by t_df / z; None: as many as a normal's);
    mde: the minimum detectable effect at `level` and 80% power,
    from spread (`finscale.analysis.power`); p_value: two-sided, of the difference
    against zero with standard error `spread` (Student t with df), what a
    family's correction ranks; holm_verdict: the verdict once the study's family
    of comparisons is Holm-corrected (None until it is, and for a comparison
    outside the family); newey_west_spread: for a mean of per-date values (log
    loss), its standard error by a Newey-West long-run variance of the per-date
    differences plus the seeds' part, a cross-check of `spread` (None where not
    computed).
    """

    metric: str
    level: float
    n_resamples: int
    difference: float
    low: float
    high: float
    lower_is_better: bool | None
    verdict: str | None
    spread: float
    date_spread: float
    seed_spread: float
    mde: float
    df: float | None = stored(omit_none=True)
    p_value: float | None = stored(omit_none=True)
    holm_verdict: str | None = stored(omit_none=True)
    newey_west_spread: float | None = stored(omit_none=True)


def draw_counts(rows: np.ndarray) -> np.ndarray:
    """How many times each row of date indices (n_rows, n) draws each sample: float
    (n_rows, n). A mean of per-sample values over each row is then one product."""
    n_rows, n = rows.shape
    cells = (np.arange(n_rows)[:, None] * n + rows).ravel()
    return np.bincount(cells, minlength=n_rows * n).reshape(n_rows, n).astype(float)


def resampled_log_loss(y: np.ndarray, preds: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Each seed's log loss on each row of draws, (n_seeds, n_rows): the per-sample
    losses weighted by `draw_counts` of the rows."""
    return sample_log_loss(y, preds) @ counts.T / counts.shape[1]


def _per_seed_metric(
    y: np.ndarray, preds: np.ndarray, rows: np.ndarray, metric: str, threshold: float
) -> np.ndarray:
    """`metric` of each seed's predictions on each row of date indices, (n_seeds, n_rows)."""
    return np.stack(
        [_metric_rows_of_draws(y, p, rows, threshold, (metric,))[metric] for p in preds]
    )


def paired_difference(
    y: Any,
    preds_a: Any,
    preds_b: Any,
    indices: Any,
    metric: str = "log_loss",
    seed: int = 0,
    level: float = 0.95,
    threshold: float = 0.5,
) -> PairedDifference:
    """Interval of the difference b - a of the seed-mean `metric` of two models.

    y: labels (n_samples,). preds_a, preds_b: probabilities (n_seeds_a,
    n_samples) and (n_seeds_b, n_samples); the seed counts may differ.
    indices: (n_resamples, n_samples) from `bootstrap_indices`.

    Each resample uses the same dates `indices[r]` for both models (paired),
    and also draws each model's seeds with replacement (numpy Generator
    seeded with `seed`, independently for a and b, whose seeds are separate
    training runs), so the interval carries test-date and training-seed noise.
    """
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; expected one of {METRICS}")
    _check_level(level)
    y, preds_a = _seed_rows(y, preds_a)
    _, preds_b = _seed_rows(y, preds_b)
    indices = _checked_indices(indices, y.size)
    identity = np.arange(y.size)[None, :]
    full_a = _per_seed_metric(y, preds_a, identity, metric, threshold)[:, 0]
    full_b = _per_seed_metric(y, preds_b, identity, metric, threshold)[:, 0]
    rng = np.random.default_rng(seed)
    if metric == "log_loss":  # a mean of per-sample losses: one product per model
        counts = draw_counts(indices)
        resampled_a = resampled_log_loss(y, preds_a, counts)
        resampled_b = resampled_log_loss(y, preds_b, counts)
    else:
        resampled_a = _per_seed_metric(y, preds_a, indices, metric, threshold)
        resampled_b = _per_seed_metric(y, preds_b, indices, metric, threshold)
    draws_a = seed_draws(resampled_a, full_a, rng)
    draws_b = seed_draws(resampled_b, full_b, rng)
    boot = draws_b.values - draws_a.values
    difference = float(full_b.mean() - full_a.mean())
    date_spread = _spread(resampled_b.mean(axis=0) - resampled_a.mean(axis=0))
    seed_parts = [(d.uncertainty, d.df) for d in (draws_a, draws_b)]
    df = satterthwaite_df(date_spread**2, seed_parts, draws_a.variance + draws_b.variance)
    low, high = widened(difference, *percentile_interval(boot, level), df, level)
    spread = _spread(boot)
    lower_is_better = LOWER_IS_BETTER.get(metric)
    return PairedDifference(
        metric=metric,
        level=level,
        n_resamples=int(indices.shape[0]),
        difference=difference,
        low=low,
        high=high,
        lower_is_better=lower_is_better,
        verdict=None if lower_is_better is None else verdict(low, high, lower_is_better),
        spread=spread,
        date_spread=date_spread,
        seed_spread=math.sqrt(draws_a.variance + draws_b.variance),
        mde=minimum_detectable_effect(spread, level),
        df=None if math.isinf(df) else df,
        p_value=normal_p_value(difference, spread, df),
    )
