"""What a comparison could have detected: the minimum detectable effect (MDE).

A comparison of two models is a paired difference d of a metric (b - a),
whose sampling spread is estimated by the block bootstrap over test dates
and the redraw of training seeds (`finscale.analysis.bootstrap`). For a
two-sided test at confidence `level` and the power `power`, the smallest true
difference that the study detects with that probability is

    MDE = (z_{(1 + level) / 2} + z_{power}) * se(d),

with z the standard normal quantile (Bloom 1995, "Minimum detectable
effects"): 2.80 standard errors at 95% and 80% power. A difference smaller
than the MDE can be real and still come out "no detectable difference" most
of the time, so a verdict of no difference says nothing about effects below it.

The variance of d splits into a test-date part and a training-seed part,
se(d)^2 = s_dates^2 + s_seeds^2. The date part shrinks like 1 / (test days):
labels over h days overlap, but once the block bootstrap holds the dependence,
twice the test days halve the variance (not of one fold's dates; of all the
pooled test dates, which more folds only add to when they add test days).
The seed part shrinks like 1 / (seeds per model). `projected_mde` says what
k times the test days and m times the seeds would buy.

Pure functions of numbers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from scipy import stats

from finscale.analysis.serial import Record

POWER = 0.8  # the conventional power of a study design


@dataclass(frozen=True, kw_only=True)
class PowerProjection(Record):
    """The minimum detectable effect (`mde`, units of the metric) with `days_factor`
    times the test days and `seeds_factor` times the seeds."""

    days_factor: float
    seeds_factor: float
    mde: float


def _check_probability(value: float, name: str) -> None:
    if not 0.0 < value < 1.0:
        raise ValueError(f"{name} must lie strictly between 0 and 1, got {value!r}")


def z_sum(level: float, power: float = POWER) -> float:
    """z_{(1 + level) / 2} + z_{power}: the MDE in standard errors (2.80 at 0.95, 0.8)."""
    _check_probability(level, "level")
    _check_probability(power, "power")
    return float(stats.norm.ppf(0.5 + level / 2.0) + stats.norm.ppf(power))


def minimum_detectable_effect(
    standard_error: float, level: float = 0.95, power: float = POWER
) -> float:
    """The smallest true difference detected with probability `power` (units of the metric).

    `standard_error`: the standard deviation of the difference's sampling
    distribution (the bootstrap spread). NaN in, NaN out.
    """
    if math.isnan(standard_error):
        return math.nan
    if standard_error < 0:
        raise ValueError(f"standard_error must be >= 0, got {standard_error!r}")
    return z_sum(level, power) * float(standard_error)


def projected_mde(
    date_spread: float,
    seed_spread: float,
    level: float = 0.95,
    power: float = POWER,
    days_factor: float = 1.0,
    seeds_factor: float = 1.0,
) -> float:
    """The MDE with `days_factor` times the test days and `seeds_factor` times the seeds.

    `date_spread`, `seed_spread`: the test-date and training-seed parts of the
    difference's standard error (their squares add up to its variance).
    """
    if days_factor <= 0 or seeds_factor <= 0:
        raise ValueError("days_factor and seeds_factor must be > 0")
    if date_spread < 0 or seed_spread < 0:
        raise ValueError("spreads must be >= 0")
    variance = date_spread**2 / days_factor + seed_spread**2 / seeds_factor
    return minimum_detectable_effect(math.sqrt(variance), level, power)


def power_table(
    date_spread: float,
    seed_spread: float,
    level: float = 0.95,
    power: float = POWER,
    factors: Sequence[float] = (1.0, 2.0, 4.0),
) -> list[PowerProjection]:
    """The projected MDE for every pair of test-days and seeds factors, days factor
    outermost."""
    return [
        PowerProjection(
            days_factor=float(k),
            seeds_factor=float(m),
            mde=projected_mde(date_spread, seed_spread, level, power, k, m),
        )
        for k in factors
        for m in factors
    ]
