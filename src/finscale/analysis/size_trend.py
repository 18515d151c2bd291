"""The study's primary test: does test log loss fall with model size?

Each study declares one hypothesis before it looks at a single comparison: the
slope of test log loss against log10 of the parameter count, over every budget
(least squares, one point per budget, each budget's loss its mean over seeds and
over the pooled test dates of every fold). The slope is in nats per decade of
parameters: -0.002 means ten times the parameters lowers the loss by 0.002.

Its interval comes from the same resampling as every other figure of the
horizon: the shared block-bootstrap draws of test dates (paired across budgets,
so the dates' common swings cancel) and a redraw of each budget's seeds
(`seed_draws`, stretched by t / z for the seeds' few degrees of freedom). The
slope is a linear function of the budgets' losses, so each resample's slope is
the same weighted sum of that resample's losses. The verdict reads the interval:
wholly below zero, "loss falls with size"; wholly above, "loss rises with size"
(the bigger models are worse: overfitting, never called scaling); otherwise "no
detectable trend", with the slope that 80% power would have seen.

Everything else the report compares (budget steps, baselines, folds) is
secondary and corrected as a family (`finscale.analysis.family`).

Pure functions of arrays.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from finscale.analysis.bootstrap import (
    draw_counts,
    percentile_interval,
    resampled_log_loss,
    sample_log_loss,
)
from finscale.analysis.power import POWER, minimum_detectable_effect
from finscale.analysis.seeds import normal_p_value, satterthwaite_df, seed_draws, widened
from finscale.analysis.serial import Record, stored

FALLS = "loss falls with size"
NO_TREND = "no detectable trend"
RISES = "loss rises with size"
# What RISES means, said wherever it is: a bigger model detectably worse has fit noise
# (or trained worse), and is never called scaling.
RISES_MEANING = "the bigger models are detectably worse: overfitting with size, not scaling"


@dataclass(frozen=True, kw_only=True)
class SizeTrend(Record):
    """The slope of test log loss against log10 parameters at one horizon.

    slope_per_decade: nats per tenfold parameters (negative: bigger is better);
    interval: its percentile interval at `level` over the resampled dates and seeds;
    spread: the standard deviation of the resampled slopes (its standard error);
    min_detectable_slope: the smallest true slope (in absolute value) detected
    with 80% power, from spread; verdict: FALLS, NO_TREND or RISES; statement:
    the verdict in words; n_budgets: the budgets fitted; p_value: two-sided, of the
    slope against zero (normal approximation with `spread`); holm_verdict: the
    verdict once corrected with the study's family (set for every horizon but the
    primary one, whose test is not part of the family; None until then).
    """

    horizon_days: int
    slope_per_decade: float
    interval: tuple[float, float]
    spread: float
    min_detectable_slope: float
    verdict: str
    statement: str
    level: float
    n_budgets: int
    p_value: float
    holm_verdict: str | None = stored(omit_none=True)


def slope_weights(param_counts: Sequence[float]) -> np.ndarray:
    """Least-squares weights w of the slope against log10 N: slope = sum(w * loss).

    param_counts: (n_budgets,), positive, at least two distinct.
    """
    x = np.log10(np.asarray(param_counts, dtype=float))
    centred = x - x.mean()
    sxx = float((centred**2).sum())
    if sxx == 0.0:
        raise ValueError("a slope needs at least two distinct parameter counts")
    return centred / sxx


def trend_verdict(low: float, high: float) -> str:
    """FALLS, RISES or NO_TREND from the slope's interval (NaN bounds: NO_TREND)."""
    if math.isnan(low) or math.isnan(high):
        return NO_TREND
    return FALLS if high < 0.0 else RISES if low > 0.0 else NO_TREND


def trend_statement(verdict: str, slope: float, min_detectable: float) -> str:
    """The verdict in words: the slope where one is detected (and for RISES, that it is
    overfitting, not scaling), the slope it could have seen where none is."""
    if verdict == NO_TREND:
        return (
            f"{NO_TREND}; a slope steeper than {min_detectable:.4f} nats per decade of "
            f"parameters would have been seen with {POWER:.0%} power"
        )
    statement = f"{verdict}: {slope:+.4f} nats per decade of parameters"
    return f"{statement}; {RISES_MEANING}" if verdict == RISES else statement


def size_trend(
    y: np.ndarray,
    preds: Sequence[np.ndarray],
    param_counts: Sequence[float],
    indices: np.ndarray,
    horizon_days: int,
    level: float = 0.95,
    seed: int = 0,
) -> SizeTrend:
    """The primary test of one horizon.

    y: test labels (n,). preds: each budget's predictions (n_seeds_b, n) on those
    dates, in the order of `param_counts` (n_budgets,). indices: (n_resamples, n)
    the horizon's shared draws of test dates. Each budget's seeds are redrawn per
    resample (`seed_draws`, a Generator seeded with `seed`).
    """
    if len(preds) != len(param_counts):
        raise ValueError(f"{len(preds)} budgets of predictions but {len(param_counts)} counts")
    weights = slope_weights(param_counts)
    rng = np.random.default_rng(seed)
    counts = draw_counts(indices)
    full = np.empty(len(preds))
    dates = np.zeros(indices.shape[0])  # the slope with every seed kept
    slopes = np.zeros(indices.shape[0])
    seed_parts = []
    seed_variance = 0.0
    for w, p in zip(weights, preds, strict=True):
        per_sample = sample_log_loss(y, p)
        full[len(seed_parts)] = per_sample.mean()
        per_seed = resampled_log_loss(y, p, counts)
        draws = seed_draws(per_seed, per_sample.mean(axis=1), rng)
        dates += w * per_seed.mean(axis=0)
        slopes += w * draws.values
        seed_parts.append((w**2 * draws.uncertainty, draws.df))
        seed_variance += w**2 * draws.variance
    slope = float(weights @ full)
    df = satterthwaite_df(float(dates.var(ddof=1)), seed_parts, seed_variance)
    low, high = widened(slope, *percentile_interval(slopes, level), df, level)
    spread = float(slopes.std(ddof=1))
    detectable = minimum_detectable_effect(spread, level)
    verdict = trend_verdict(low, high)
    return SizeTrend(
        horizon_days=int(horizon_days),
        slope_per_decade=slope,
        interval=(low, high),
        spread=spread,
        min_detectable_slope=detectable,
        verdict=verdict,
        statement=trend_statement(verdict, slope, detectable),
        level=level,
        n_budgets=len(preds),
        p_value=normal_p_value(slope, spread, df),
    )
