"""What training seeds add to an interval: their lasting effects, drawn so that a
redraw carries exactly the variance they put on a mean of k seeds, and the few
degrees of freedom an estimate from k seeds has.

A metric of one model on resampled test dates varies for two reasons: the
dates (what the block bootstrap of `finscale.analysis.resampling` draws) and
the seeds. Each seed's own date-to-date noise is already in the date draws;
what a redraw of seeds must add is only their lasting effect. `seed_draws`
splits the two, `satterthwaite_df` and `widened` stretch an interval whose
seed part comes from few seeds, and `normal_p_value` gives the p-value a
family's correction ranks.

Pure functions of arrays and numbers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class SeedDraws:
    """One model's seed-mean metric on every resample of dates, its seeds redrawn.

    values: (n_resamples,) the redrawn means; variance: what the seeds' own effects
    add to the variance of the seed mean (units of the metric squared); df: the
    degrees of freedom of that estimate (n_seeds - 1); uncertainty: the scale of
    that estimate's own noise, what the degrees of freedom weigh: the variance
    itself, or where the effect is estimated at 0 the seeds' whole spread over
    n_seeds (an effect truncated at 0 from three seeds that disagree is not known
    to be 0).
    """

    values: np.ndarray
    variance: float
    df: int
    uncertainty: float = 0.0


def seed_draws(per_seed: np.ndarray, full: np.ndarray, rng: np.random.Generator) -> SeedDraws:
    """The mean over seeds drawn with replacement, a fresh draw per resample, scaled so
    that it adds exactly the variance the seeds' own effects put on their mean.

    per_seed: (n_seeds, n_resamples) the metric of each seed on each resample of
    dates; full: (n_seeds,) on the full sample. Two things would go wrong with a
    plain redraw. A redraw of k values varies their mean by (k - 1) / k of its
    sampling variance (the bootstrap of a mean divides by k, not k - 1). And the
    spread between seeds has two parts: a persistent effect of each seed a_s,
    and each seed's own date-to-date noise, which the date resampling already
    draws; redrawing the whole spread counts the second part twice. A random-
    effects split separates them: the between-seed variance of the full-sample
    metric estimates var(a) + var(noise), each seed's deviation from the seed
    mean over the resampled dates estimates var(noise), and their difference
    (never below 0) var(a). Each resample's redrawn deviation from the mean of
    all its seeds is scaled to carry var(a) / k. With a pure seed effect the
    scale is sqrt(k / (k - 1)); one seed has nothing to draw and gives its own
    values.
    """
    n_seeds, n_resamples = per_seed.shape
    mean = np.nanmean(per_seed, axis=0) if n_seeds > 1 else per_seed[0]
    if n_seeds == 1:
        return SeedDraws(values=mean, variance=0.0, df=0)
    between = float(np.nanvar(full, ddof=1))
    noise = float(np.nansum(np.nanvar(per_seed - mean, axis=1, ddof=1)) / (n_seeds - 1))
    effect = max(between - noise, 0.0)
    if effect == 0.0:
        return SeedDraws(values=mean, variance=0.0, df=n_seeds - 1, uncertainty=between / n_seeds)
    # Multinomial counts are the same draw as n_seeds seed indices with replacement.
    counts = rng.multinomial(n_seeds, np.full(n_seeds, 1.0 / n_seeds), size=n_resamples)
    redrawn = (counts * per_seed.T).sum(axis=1) / n_seeds
    # A redraw's deviation varies by (k - 1) / k^2 of the seeds' spread on its own
    # resample, which holds the resampled noise on top of `between`.
    spread = float(np.nanmean(np.nanvar(per_seed, axis=0, ddof=1)))
    scale = math.sqrt(n_seeds * effect / ((n_seeds - 1) * spread))
    return SeedDraws(
        values=mean + scale * (redrawn - mean),
        variance=effect / n_seeds,
        df=n_seeds - 1,
        uncertainty=effect / n_seeds,
    )


def satterthwaite_df(
    date_variance: float,
    seed_parts: Sequence[tuple[float, int]],
    seed_variance: float | None = None,
) -> float:
    """Welch-Satterthwaite degrees of freedom of date_variance + sum of seed variances.

    seed_parts: (variance, df) of each model's seed part (a weight's square folded
    into the variance; `SeedDraws.uncertainty`, which an effect truncated at 0 does
    not hide); the date part, from hundreds of resampled dates, counts as exact.
    Infinite where no seed part has variance. seed_variance: the seeds' part of the
    total where it differs from the parts' sum (their estimates, not their noise).
    """
    seeds = sum(v for v, _ in seed_parts) if seed_variance is None else seed_variance
    total = date_variance + seeds
    denominator = sum(v**2 / df for v, df in seed_parts if df > 0 and v > 0)
    if denominator == 0.0 or math.isnan(total):
        return math.inf
    return total**2 / denominator


def widened(point: float, low: float, high: float, df: float, level: float) -> tuple[float, float]:
    """A percentile interval [low, high] stretched about `point` by t_df / z: a seed
    part estimated from k seeds has k - 1 degrees of freedom, and where it dominates
    a normal-width interval covers too little (0.81 instead of 0.95 with 3 seeds)."""
    if math.isinf(df) or math.isnan(low) or math.isnan(high):
        return low, high
    factor = float(stats.t.ppf(0.5 + level / 2.0, df) / stats.norm.ppf(0.5 + level / 2.0))
    return point + (low - point) * factor, point + (high - point) * factor


def normal_p_value(difference: float, spread: float, df: float = math.inf) -> float:
    """Two-sided p-value of `difference` against zero with standard error `spread`
    (normal approximation, or Student t with `df` degrees of freedom); 1.0 for a zero
    difference of zero spread, 0.0 for a nonzero one, NaN where either is NaN."""
    if math.isnan(difference) or math.isnan(spread):
        return math.nan
    if spread == 0.0:
        return 1.0 if difference == 0.0 else 0.0
    ratio = abs(difference) / spread
    tail = stats.norm.sf(ratio) if math.isinf(df) else stats.t.sf(ratio, df)
    return float(2.0 * tail)
