"""What a winner's probabilities are worth as a long/flat signal, and whether
that survives its search: the Deflated Sharpe Ratio (DSR) and the probabilistic
Sharpe ratio (PSR).

DSR (Bailey and Lopez de Prado 2014, "The deflated Sharpe ratio"): the
probability that a strategy's true Sharpe ratio exceeds the one expected of
the best of `n_trials` unskilled trials,

    SR_0 = sqrt(V) * ((1 - g) * Phi^-1(1 - 1/N) + g * Phi^-1(1 - 1/(N e))),
    DSR  = Phi((SR - SR_0) * sqrt(T - 1) / sqrt(1 - skew * SR + (kurt - 1) / 4 * SR^2)),

with V the variance of the trials' Sharpe ratios, g the Euler-Mascheroni
constant, T the number of returns, skew and kurt (not excess) of the
strategy's returns, and every Sharpe ratio per period (not annualised). It
deflates what was selected: the winner's Sharpe ratio on the validation dates
the search chose it on, against its trials' Sharpe ratios on the same dates.
The formula takes an unskilled trial's Sharpe ratio to centre at 0; a trial's
long/flat Sharpe ratio is the best over its candidate thresholds on the same
dates, which lifts it above 0 without any skill (by about 1.5 standard
deviations of the trials' Sharpe ratios at 1,500 days), and the DSR then calls
pure noise skilled 7% of the time at the 0.95 line. So SR_0 is centred on
`null_sharpe`, what the threshold choice alone gives: the trials' mean Sharpe
ratio against the validation returns shifted by half their length
(`unskilled_sharpe`), which keeps both series and breaks any alignment. The
search crowns by log loss, not by Sharpe ratio, so the DSR (a benchmark for
the best Sharpe ratio of N) is conservative for its winner.

PSR (Bailey and Lopez de Prado 2012, "The Sharpe ratio efficient frontier"):
the same probability against a fixed benchmark, Phi((SR - SR*) / se(SR)), with
the asymptotic standard error of a Sharpe ratio estimated from T returns of
non-normal distribution (Mertens 2002),

    se(SR) = sqrt((1 - skew * SR + (kurt - 1) / 4 * SR^2) / (T - 1)),

shared by the DSR (`sharpe_standard_error`). On test dates, where nothing was
selected, the PSR against zero asks whether the Sharpe ratio is above zero;
SR +- z se(SR) is its interval.

The economic illustration: a long/flat signal, long when the predicted
probability exceeds a threshold chosen on validation. A label looks h days
ahead, so each day's decision holds 1/h of the capital for h days
(overlapping tranches, the way momentum studies hold portfolios): the
position on day t is the mean of the last h decisions, its return the next
day's return of the target, less `cost_bps` on every change of position.
Returns are daily, do not overlap, and the annualised Sharpe ratio is their
mean over their standard deviation times sqrt(252). An illustration of what
the probabilities are worth, not a trading system.

Vectorised NumPy; pure functions of arrays.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from finscale.analysis.serial import Record, stored

TRADING_DAYS_PER_YEAR = 252
EULER_GAMMA = 0.5772156649015329
# Candidate thresholds for the long/flat signal: these quantiles of the
# validation predictions, so the rule adapts to models that never predict 0.5.
THRESHOLD_QUANTILES = np.linspace(0.05, 0.95, 19)


@dataclass(frozen=True, kw_only=True)
class DeflatedSharpe(Record):
    """A Deflated Sharpe Ratio: `value` in [0, 1], the probability that the true Sharpe
    ratio beats the best of `trials` unskilled trials, whose expected best is
    `benchmark_sharpe` (SR_0, per period; `annualised_benchmark_sharpe` x sqrt(252)),
    given the spread of the trials' Sharpe ratios (`trial_sharpe_spread`, per period)
    and the strategy's own `sharpe` (per period; `annualised_sharpe`) over its `n_days`
    returns (the selected trial's validation dates: `trial` is its number), SR_0
    centred on `null_sharpe`, an unskilled trial's Sharpe ratio (per period); or
    `value` None and the reason `skipped`. Files written before it deflated the
    validation Sharpe ratio hold none of the last five."""

    value: float | None
    trials: int
    benchmark_sharpe: float | None = stored(unless_skipped=True)
    sharpe: float | None = stored(unless_skipped=True)
    trial_sharpe_spread: float | None = stored(omit_none=True)
    annualised_benchmark_sharpe: float | None = stored(omit_none=True)
    annualised_sharpe: float | None = stored(omit_none=True)
    n_days: int | None = stored(omit_none=True)
    trial: int | None = stored(omit_none=True)
    null_sharpe: float | None = stored(omit_none=True)
    skipped: str | None = stored(omit_none=True)


@dataclass(frozen=True, kw_only=True)
class ProbabilisticSharpe(Record):
    """A probabilistic Sharpe ratio: `value` in [0, 1], the probability that the true
    Sharpe ratio exceeds `benchmark_sharpe` (per period; 0: is the Sharpe ratio above
    zero), from `n_days` returns whose Sharpe ratio is `sharpe` (per period) with its
    `interval` at `level` from the skew- and kurtosis-adjusted standard error, and both
    annualised (x sqrt(252)); or `value` None and the reason `skipped`."""

    value: float | None
    benchmark_sharpe: float = 0.0
    n_days: int | None = stored(unless_skipped=True)
    level: float | None = stored(unless_skipped=True)
    sharpe: float | None = stored(unless_skipped=True)
    interval: tuple[float, float] | None = stored(unless_skipped=True)
    annualised_sharpe: float | None = stored(unless_skipped=True)
    annualised_interval: tuple[float, float] | None = stored(unless_skipped=True)
    skipped: str | None = stored(omit_none=True)

    @classmethod
    def not_known(cls, reason: str) -> ProbabilisticSharpe:
        return cls(value=None, skipped=reason)


def tranche_returns(
    decisions: Any, next_day_returns: Any, horizon_days: int, cost_bps: float = 1.0
) -> np.ndarray:
    """Daily net returns of long (1) / flat (0) decisions held in h overlapping tranches.

    decisions: (..., n_dates) 0/1 on consecutive dates; next_day_returns:
    (n_dates,) simple return of the target from each date's close to the
    next. Returns an array shaped like `decisions`: day t's position (the mean
    of decisions t-h+1 .. t, the earlier ones flat) times the next day's
    return, less cost_bps / 1e4 per unit of position change (the first day's
    entry included).
    """
    d = np.asarray(decisions, dtype=float)
    r = np.asarray(next_day_returns, dtype=float)
    if r.ndim != 1 or d.shape[-1] != r.shape[-1]:
        raise ValueError(f"decisions {d.shape} and returns {r.shape} must share n_dates")
    if int(horizon_days) != horizon_days or horizon_days < 1:
        raise ValueError(f"horizon_days must be a positive integer, got {horizon_days!r}")
    if cost_bps < 0:
        raise ValueError(f"cost_bps must be >= 0, got {cost_bps!r}")
    h = int(horizon_days)
    cumulative = np.cumsum(d, axis=-1)
    lagged = np.zeros_like(cumulative)
    lagged[..., h:] = cumulative[..., :-h]
    position = (cumulative - lagged) / h
    change = np.abs(np.diff(position, axis=-1, prepend=0.0))
    return position * r - cost_bps * 1e-4 * change


def strategy_returns(
    probabilities: Any,
    next_day_returns: Any,
    threshold: float,
    horizon_days: int,
    cost_bps: float = 1.0,
) -> np.ndarray:
    """`tranche_returns` of the signal long when a probability exceeds `threshold`."""
    return tranche_returns(
        np.asarray(probabilities, dtype=float) > threshold, next_day_returns, horizon_days, cost_bps
    )


def sharpe_ratio(returns: Any, annualise: bool = True) -> np.ndarray | float:
    """Mean over standard deviation (ddof 1) along the last axis; x sqrt(252) if annualised.

    A flat strategy (zero spread) has Sharpe 0.
    """
    r = np.asarray(returns, dtype=float)
    spread = r.std(axis=-1, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(spread > 0, r.mean(axis=-1) / spread, 0.0)
    if annualise:
        ratio = ratio * math.sqrt(TRADING_DAYS_PER_YEAR)
    return float(ratio) if ratio.ndim == 0 else ratio


def choose_threshold(
    probabilities: Any, next_day_returns: Any, horizon_days: int, cost_bps: float = 1.0
) -> float:
    """The candidate threshold (a quantile of `probabilities`) of the highest Sharpe ratio.

    Chosen on validation dates and then applied unchanged to the test dates.
    """
    p = np.asarray(probabilities, dtype=float)
    candidates = np.unique(np.quantile(p, THRESHOLD_QUANTILES))
    paths = tranche_returns(
        p[None, :] > candidates[:, None], next_day_returns, horizon_days, cost_bps
    )
    return float(candidates[int(np.argmax(sharpe_ratio(paths)))])


def expected_max_sharpe(n_trials: int, sharpe_variance: float) -> float:
    """SR_0: the expected maximum Sharpe ratio of `n_trials` unskilled trials
    whose Sharpe ratios have variance `sharpe_variance` (same period as theirs)."""
    if int(n_trials) != n_trials or n_trials < 1:
        raise ValueError(f"n_trials must be a positive integer, got {n_trials!r}")
    if sharpe_variance < 0:
        raise ValueError(f"sharpe_variance must be >= 0, got {sharpe_variance!r}")
    if n_trials == 1:
        return 0.0
    n = float(n_trials)
    quantiles = (1 - EULER_GAMMA) * stats.norm.ppf(1 - 1 / n) + EULER_GAMMA * stats.norm.ppf(
        1 - 1 / (n * math.e)
    )
    return float(math.sqrt(sharpe_variance) * quantiles)


def sharpe_moments(returns: Any) -> tuple[float, float, float, int]:
    """(SR per period, skew, kurtosis (not excess), T) of one return series (T,)."""
    r = np.asarray(returns, dtype=float)
    if r.ndim != 1 or r.size < 3:
        raise ValueError(f"returns must be one series of at least 3 values, got {r.shape}")
    if r.std(ddof=1) == 0:
        return 0.0, 0.0, 3.0, int(r.size)
    return (
        float(sharpe_ratio(r, annualise=False)),
        float(stats.skew(r)),
        float(stats.kurtosis(r, fisher=False)),
        int(r.size),
    )


def sharpe_standard_error(sharpe: float, skew: float, kurtosis: float, n_returns: int) -> float:
    """The asymptotic standard error of a per-period Sharpe ratio estimated from
    `n_returns` returns of this skew and (non-excess) kurtosis (Mertens 2002; Bailey and
    Lopez de Prado 2012): sqrt((1 - skew SR + (kurt - 1) / 4 SR^2) / (T - 1)), per
    period. The one formula behind the PSR, the DSR and the PSR's interval."""
    if n_returns < 2:
        raise ValueError(f"n_returns must be >= 2, got {n_returns!r}")
    variance = 1.0 - skew * sharpe + (kurtosis - 1.0) / 4.0 * sharpe**2
    # The bracket is positive for any real series (kurt >= skew^2 + 1); the floor only
    # guards rounding in a degenerate one.
    return math.sqrt(max(variance, 1e-12) / (n_returns - 1))


def probabilistic_sharpe_ratio(returns: Any, benchmark_sharpe: float) -> float:
    """P(true Sharpe > benchmark) from one return series (Bailey and Lopez de Prado 2012).

    returns: (T,) per-period returns; benchmark_sharpe per period. Corrected
    for the skewness and (non-excess) kurtosis of the returns.
    """
    r = np.asarray(returns, dtype=float)
    sr, skew, kurtosis, n = sharpe_moments(r)
    if r.std(ddof=1) == 0:
        return 0.5 if benchmark_sharpe == 0 else float(sr > benchmark_sharpe)
    z = (sr - benchmark_sharpe) / sharpe_standard_error(sr, skew, kurtosis, n)
    return float(stats.norm.cdf(z))


def probabilistic_sharpe(
    returns: Any, level: float = 0.95, benchmark_sharpe: float = 0.0
) -> ProbabilisticSharpe:
    """The PSR of `returns` (T,) against `benchmark_sharpe` (per period; 0 asks whether
    the Sharpe ratio is above zero), with the Sharpe ratio's two-sided interval at
    `level`, SR -+ z se(SR), per period and annualised."""
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    sr, skew, kurtosis, n = sharpe_moments(returns)
    half_width = stats.norm.ppf(0.5 + level / 2) * sharpe_standard_error(sr, skew, kurtosis, n)
    yearly = math.sqrt(TRADING_DAYS_PER_YEAR)
    return ProbabilisticSharpe(
        value=probabilistic_sharpe_ratio(returns, benchmark_sharpe),
        benchmark_sharpe=float(benchmark_sharpe),
        n_days=n,
        level=float(level),
        sharpe=sr,
        interval=(float(sr - half_width), float(sr + half_width)),
        annualised_sharpe=sr * yearly,
        annualised_interval=(float((sr - half_width) * yearly), float((sr + half_width) * yearly)),
    )


def deflated_sharpe_ratio(
    returns: Any, trial_sharpes: Any, null_sharpe: float = 0.0
) -> DeflatedSharpe:
    """The DSR of `returns` against the best of the trials whose per-period Sharpe
    ratios are `trial_sharpes` (shape (n_trials,)), all on the same dates: `returns`
    (T,) is the selected trial's series there. SR_0 = `null_sharpe` (an unskilled
    trial's Sharpe ratio, per period: 0 in the published formula) + the expected
    maximum of as many draws of the trials' spread. Its `value`, `trials`,
    `benchmark_sharpe`, `trial_sharpe_spread` and `sharpe` and `n_days` (of
    `returns`), per period and annualised."""
    trial_sharpes = np.asarray(trial_sharpes, dtype=float)
    if trial_sharpes.ndim != 1 or trial_sharpes.size < 1:
        raise ValueError("trial_sharpes must be a non-empty 1-D array")
    variance = float(trial_sharpes.var(ddof=1)) if trial_sharpes.size > 1 else 0.0
    return _deflated(returns, trial_sharpes.size, variance, null_sharpe)


def deflated_sharpe_of_count(
    returns: Any, n_trials: int, null_sharpe: float = 0.0
) -> DeflatedSharpe:
    """The DSR of `returns` (T,) as though they were the best of `n_trials` unskilled
    trials on the same T dates, where the trials' own series are not at hand: the
    spread of an unskilled trial's per-period Sharpe ratio is then its sampling spread
    under the null, se(0) = sqrt(1 / (T - 1)) (`sharpe_standard_error` of a normal
    series at SR 0), so SR_0 = `null_sharpe` + that spread x the expected maximum of
    `n_trials` standard normals. Per period and annualised, as `deflated_sharpe_ratio`."""
    _, _, _, n_days = sharpe_moments(returns)
    variance = sharpe_standard_error(0.0, 0.0, 3.0, n_days) ** 2
    return _deflated(returns, n_trials, variance, null_sharpe)


def _deflated(returns: Any, n_trials: int, variance: float, null_sharpe: float) -> DeflatedSharpe:
    """The DSR of `returns` against SR_0 = `null_sharpe` + the expected maximum of
    `n_trials` unskilled Sharpe ratios of per-period `variance`."""
    benchmark = float(null_sharpe) + expected_max_sharpe(n_trials, variance)
    sharpe, _, _, n_days = sharpe_moments(returns)
    yearly = math.sqrt(TRADING_DAYS_PER_YEAR)
    return DeflatedSharpe(
        value=probabilistic_sharpe_ratio(returns, benchmark),
        trials=int(n_trials),
        benchmark_sharpe=benchmark,
        sharpe=sharpe,
        trial_sharpe_spread=math.sqrt(variance),
        annualised_benchmark_sharpe=benchmark * yearly,
        annualised_sharpe=sharpe * yearly,
        n_days=n_days,
        null_sharpe=float(null_sharpe),
    )


def trial_returns(
    predictions: Any,
    next_day_returns: Any,
    horizon_days: int,
    cost_bps: float = 1.0,
) -> np.ndarray:
    """(n_trials, n_dates) daily net returns of each trial's long/flat signal on its own
    validation dates, each at the threshold best there: the series the search would
    have picked among."""
    p = np.atleast_2d(np.asarray(predictions, dtype=float))
    out = np.empty(p.shape)
    for i, row in enumerate(p):
        threshold = choose_threshold(row, next_day_returns, horizon_days, cost_bps)
        out[i] = strategy_returns(row, next_day_returns, threshold, horizon_days, cost_bps)
    return out


def trial_sharpes(
    predictions: Any,
    next_day_returns: Any,
    horizon_days: int,
    cost_bps: float = 1.0,
) -> np.ndarray:
    """(n_trials,) per-period Sharpe ratio of each trial's `trial_returns`: the Sharpe
    ratios whose spread deflates the winner's."""
    paths = trial_returns(predictions, next_day_returns, horizon_days, cost_bps)
    return np.asarray(sharpe_ratio(paths, annualise=False)).reshape(-1)


def unskilled_sharpe(
    predictions: Any,
    next_day_returns: Any,
    horizon_days: int,
    cost_bps: float = 1.0,
) -> float:
    """The per-period Sharpe ratio a trial's long/flat signal gets from choosing its
    threshold on the same dates alone: the mean over trials of `trial_sharpes` against
    `next_day_returns` (n_dates,) shifted circularly by half their length, which keeps
    both series (their distribution, a drift, the positions' persistence) and breaks
    any alignment of a prediction with its own date's return. The centre of SR_0."""
    r = np.asarray(next_day_returns, dtype=float)
    shifted = np.roll(r, r.size // 2)
    return float(np.mean(trial_sharpes(predictions, shifted, horizon_days, cost_bps)))
