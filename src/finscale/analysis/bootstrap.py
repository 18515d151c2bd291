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

from finscale.analysis.draw_metrics import (  # noqa: F401  (re-exported: this module's face)
    METRICS,
    checked_indices,
    metric_rows_of_draws,
    resampled_metrics,
    sample_log_loss,
    seed_rows,
)
from finscale.analysis.power import minimum_detectable_effect
from finscale.analysis.resampling import (  # noqa: F401  (re-exported: the draws intervals use)
    automatic_block_days,
    bootstrap_indices,
    date_bootstrap_indices,
    stratified_bootstrap_indices,
)
from finscale.analysis.seeds import normal_p_value, satterthwaite_df, seed_draws, widened
from finscale.analysis.serial import Record, stored

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
    y, preds = seed_rows(y, preds)
    indices = checked_indices(indices, y.size)
    identity = np.arange(y.size)[None, :]
    n_seeds, n_resamples = preds.shape[0], indices.shape[0]

    full = {name: np.empty(n_seeds) for name in METRICS}
    resampled = {name: np.zeros(n_resamples) for name in METRICS}
    for seed_row, p in enumerate(preds):
        at_once = metric_rows_of_draws(y, p, identity, threshold)
        for name, values in at_once.items():
            full[name][seed_row] = values[0]
        drawn = metric_rows_of_draws(y, p, indices, threshold)
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
    return np.stack([metric_rows_of_draws(y, p, rows, threshold, (metric,))[metric] for p in preds])


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
    y, preds_a = seed_rows(y, preds_a)
    _, preds_b = seed_rows(y, preds_b)
    indices = checked_indices(indices, y.size)
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
