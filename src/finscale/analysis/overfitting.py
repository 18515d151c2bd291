"""How much of a search's winner is luck: the probability of backtest overfitting
(PBO) and the Deflated Sharpe Ratio (DSR).

PBO (Bailey, Borwein, Lopez de Prado and Zhu 2015, "The probability of
backtest overfitting", by combinatorially symmetric cross-validation, CSCV):
the trials' validation losses by date, a matrix of shape (n_dates, n_trials),
are cut into S contiguous blocks of dates (S even). For each of the C(S, S/2)
ways to take half the blocks as in-sample (IS) and the other half as
out-of-sample (OOS), the trial with the lowest IS mean loss is the IS winner,
and its OOS performance is ranked among all trials: omega = rank / (n_trials
+ 1), rank 1 the worst OOS and n_trials the best, and its logit
lambda = ln(omega / (1 - omega)). PBO is the share of combinations where the
IS winner ranks below the OOS median (lambda < 0; a winner exactly at the
median counts half, so that pure noise gives 0.5 for every trial count). A
search whose winner is a true better configuration gives PBO near 0; one
whose winner is the luckiest draw gives PBO near 0.5 or above. The
degradation slope regresses the winner's OOS loss on its IS loss over the
combinations: near 0 or negative, IS success says nothing about OOS.

DSR (Bailey and Lopez de Prado 2014, "The deflated Sharpe ratio"): the
probability that a strategy's true Sharpe ratio exceeds the one expected of
the best of `n_trials` unskilled trials,

    SR_0 = sqrt(V) * ((1 - g) * Phi^-1(1 - 1/N) + g * Phi^-1(1 - 1/(N e))),
    DSR  = Phi((SR - SR_0) * sqrt(T - 1) / sqrt(1 - skew * SR + (kurt - 1) / 4 * SR^2)),

with V the variance of the trials' Sharpe ratios, g the Euler-Mascheroni
constant, T the number of returns, skew and kurt (not excess) of the
strategy's returns, and every Sharpe ratio per period (not annualised).

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

import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from finscale.analysis.bootstrap import sample_log_loss
from finscale.analysis.serial import Record, stored

TRADING_DAYS_PER_YEAR = 252
EULER_GAMMA = 0.5772156649015329
PBO_BLOCKS = 16
LOGIT_BINS = 20  # of the logit histogram stored with a PBO
# Candidate thresholds for the long/flat signal: these quantiles of the
# validation predictions, so the rule adapts to models that never predict 0.5.
THRESHOLD_QUANTILES = np.linspace(0.05, 0.95, 19)


@dataclass(frozen=True, kw_only=True)
class Histogram(Record):
    """Counts of values in the bins between consecutive `edges`."""

    edges: tuple[float, ...]
    counts: tuple[int, ...]


@dataclass(frozen=True, kw_only=True)
class PBOSummary(Record):
    """What a file keeps of a study's probability of backtest overfitting: `value` in
    [0, 1] over `trials` trials cut into `blocks` blocks of dates, the number of
    `combinations`, the quartiles and histogram of the combinations' logits, the
    degradation line (out-of-sample against in-sample loss, nats) and the winner's mean
    in-sample and out-of-sample loss; or, where the search cannot be judged, `value`
    None and the reason `skipped`."""

    value: float | None
    blocks: int
    trials: int
    combinations: int | None = stored(unless_skipped=True)
    logit_quartiles: tuple[float, float, float] | None = stored(unless_skipped=True)
    logit_histogram: Histogram | None = stored(unless_skipped=True, parse=Histogram.from_dict)
    degradation_slope: float | None = stored(unless_skipped=True)
    degradation_intercept: float | None = stored(unless_skipped=True)
    mean_in_sample_loss: float | None = stored(unless_skipped=True)
    mean_out_of_sample_loss: float | None = stored(unless_skipped=True)
    skipped: str | None = stored(omit_none=True)


@dataclass(frozen=True, kw_only=True)
class DeflatedSharpe(Record):
    """A Deflated Sharpe Ratio: `value` in [0, 1], the probability that the true Sharpe
    ratio beats the best of `trials` unskilled trials, whose expected best is
    `benchmark_sharpe` (SR_0, per period; `annualised_benchmark_sharpe` x sqrt(252)),
    given the spread of the trials' Sharpe ratios (`trial_sharpe_spread`, per period)
    and the strategy's own `sharpe` (per period); or `value` None and the reason
    `skipped`."""

    value: float | None
    trials: int
    benchmark_sharpe: float | None = stored(unless_skipped=True)
    sharpe: float | None = stored(unless_skipped=True)
    trial_sharpe_spread: float | None = stored(omit_none=True)
    annualised_benchmark_sharpe: float | None = stored(omit_none=True)
    skipped: str | None = stored(omit_none=True)


@dataclass(frozen=True)
class PBOResult:
    """The CSCV estimate of one study's probability of backtest overfitting.

    logits, in_sample_loss, out_of_sample_loss: one value per combination
    (shape (combinations,)): the IS winner's lambda, its IS and OOS mean loss.
    """

    value: float
    blocks: int
    trials: int
    combinations: int
    logits: np.ndarray
    in_sample_loss: np.ndarray
    out_of_sample_loss: np.ndarray
    degradation_slope: float
    degradation_intercept: float

    def summary(self) -> PBOSummary:
        """What a file keeps: the logits' quartiles and histogram, not the full arrays."""
        q25, q50, q75 = np.percentile(self.logits, [25, 50, 75]).tolist()
        return PBOSummary(
            value=self.value,
            blocks=self.blocks,
            trials=self.trials,
            combinations=self.combinations,
            logit_quartiles=(q25, q50, q75),
            logit_histogram=logit_histogram(self.logits, self.trials),
            degradation_slope=self.degradation_slope,
            degradation_intercept=self.degradation_intercept,
            mean_in_sample_loss=float(self.in_sample_loss.mean()),
            mean_out_of_sample_loss=float(self.out_of_sample_loss.mean()),
        )


def logit_histogram(logits: np.ndarray, trials: int, bins: int = LOGIT_BINS) -> Histogram:
    """Counts of the combinations' logits in `bins` equal bins over the range a study of
    `trials` trials can reach, [-ln(trials), ln(trials)] (rank 1 to rank n)."""
    reach = math.log(max(int(trials), 2))
    edges = np.linspace(-reach, reach, bins + 1)
    counts, _ = np.histogram(np.clip(logits, -reach, reach), bins=edges)
    return Histogram(edges=tuple(edges.tolist()), counts=tuple(counts.tolist()))


def _checked_losses(losses: Any) -> np.ndarray:
    losses = np.asarray(losses, dtype=float)
    if losses.ndim != 2:
        raise ValueError(f"losses must have shape (n_dates, n_trials), got {losses.shape}")
    if losses.shape[1] < 2:
        raise ValueError(f"PBO needs at least 2 trials, got {losses.shape[1]}")
    if not np.isfinite(losses).all():
        raise ValueError("losses must be finite")
    return losses


def check_blocks(blocks: int, n_dates: int) -> None:
    """Raise ValueError unless `blocks` is an even number >= 2 and at most `n_dates`."""
    if int(blocks) != blocks or blocks < 2 or blocks % 2:
        raise ValueError(f"blocks must be an even integer >= 2, got {blocks!r}")
    if blocks > n_dates:
        raise ValueError(f"blocks ({blocks}) must not exceed the number of dates ({n_dates})")


def half_splits(blocks: int) -> np.ndarray:
    """Every choice of blocks/2 of `blocks` as in-sample: bool (C(blocks, blocks/2), blocks)."""
    rows = list(itertools.combinations(range(blocks), blocks // 2))
    mask = np.zeros((len(rows), blocks), dtype=bool)
    for i, chosen in enumerate(rows):
        mask[i, list(chosen)] = True
    return mask


def oos_relative_rank(oos_loss: np.ndarray, winner: np.ndarray) -> np.ndarray:
    """omega = rank / (n_trials + 1) of each row's winner by OOS loss, best = n_trials.

    oos_loss: (rows, n_trials); winner: (rows,) column indices. Ties share the
    mean of their ranks.
    """
    n_trials = oos_loss.shape[1]
    mine = oos_loss[np.arange(len(winner)), winner][:, None]
    worse = (oos_loss > mine).sum(axis=1)
    tied = (oos_loss == mine).sum(axis=1)  # includes the winner itself
    rank = worse + 1 + (tied - 1) / 2.0
    return rank / (n_trials + 1)


def probability_of_backtest_overfitting(losses: Any, blocks: int = PBO_BLOCKS) -> PBOResult:
    """PBO by CSCV of the trials' losses by date (lower is better).

    losses: (n_dates, n_trials), in date order, e.g. each trial's per-date
    validation log loss. blocks: the even number S of contiguous date blocks
    (sizes differ by at most one date).
    """
    losses = _checked_losses(losses)
    n_dates, n_trials = losses.shape
    check_blocks(blocks, n_dates)
    pieces = np.array_split(np.arange(n_dates), blocks)
    sums = np.stack([losses[piece].sum(axis=0) for piece in pieces])  # (S, n_trials)
    counts = np.array([len(piece) for piece in pieces], dtype=float)  # (S,)
    mask = half_splits(blocks).astype(float)  # (C, S)
    is_sum, is_count = mask @ sums, mask @ counts
    is_loss = is_sum / is_count[:, None]
    oos_loss = (sums.sum(axis=0) - is_sum) / (counts.sum() - is_count)[:, None]
    winner = np.argmin(is_loss, axis=1)
    omega = oos_relative_rank(oos_loss, winner)
    logits = np.log(omega / (1.0 - omega))
    value = float(np.mean(logits < 0) + 0.5 * np.mean(logits == 0))
    rows = np.arange(len(winner))
    winner_is, winner_oos = is_loss[rows, winner], oos_loss[rows, winner]
    if np.ptp(winner_is) > 0:
        slope, intercept = np.polyfit(winner_is, winner_oos, 1)
    else:
        slope, intercept = math.nan, float(winner_oos.mean())
    return PBOResult(
        value=value,
        blocks=int(blocks),
        trials=n_trials,
        combinations=len(rows),
        logits=logits,
        in_sample_loss=winner_is,
        out_of_sample_loss=winner_oos,
        degradation_slope=float(slope),
        degradation_intercept=float(intercept),
    )


# ---- the economic illustration -------------------------------------------------


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


def probabilistic_sharpe_ratio(returns: Any, benchmark_sharpe: float) -> float:
    """P(true Sharpe > benchmark) from one return series (Bailey and Lopez de Prado 2012).

    returns: (T,) per-period returns; benchmark_sharpe per period. Corrected
    for the skewness and (non-excess) kurtosis of the returns.
    """
    r = np.asarray(returns, dtype=float)
    if r.ndim != 1 or r.size < 3:
        raise ValueError(f"returns must be one series of at least 3 values, got {r.shape}")
    sr = float(sharpe_ratio(r, annualise=False))
    if r.std(ddof=1) == 0:
        return 0.5 if benchmark_sharpe == 0 else float(sr > benchmark_sharpe)
    skew = float(stats.skew(r))
    kurtosis = float(stats.kurtosis(r, fisher=False))
    denominator = 1.0 - skew * sr + (kurtosis - 1.0) / 4.0 * sr**2
    z = (sr - benchmark_sharpe) * math.sqrt(r.size - 1) / math.sqrt(max(denominator, 1e-12))
    return float(stats.norm.cdf(z))


def deflated_sharpe_ratio(returns: Any, trial_sharpes: Any) -> DeflatedSharpe:
    """The DSR of `returns` against the best of the trials whose per-period Sharpe
    ratios are `trial_sharpes` (shape (n_trials,)): its `value`, `trials`,
    `benchmark_sharpe` and `sharpe` (of `returns`)."""
    trial_sharpes = np.asarray(trial_sharpes, dtype=float)
    if trial_sharpes.ndim != 1 or trial_sharpes.size < 1:
        raise ValueError("trial_sharpes must be a non-empty 1-D array")
    variance = float(trial_sharpes.var(ddof=1)) if trial_sharpes.size > 1 else 0.0
    benchmark = expected_max_sharpe(trial_sharpes.size, variance)
    return DeflatedSharpe(
        value=probabilistic_sharpe_ratio(returns, benchmark),
        trials=int(trial_sharpes.size),
        benchmark_sharpe=benchmark,
        sharpe=float(sharpe_ratio(returns, annualise=False)),
    )


# ---- a study's search ---------------------------------------------------------


def search_pbo(
    labels: Any, predictions: Any, blocks: int = PBO_BLOCKS, dates: Any = None
) -> PBOSummary:
    """The PBO of a study's trials from their validation predictions.

    labels: (n_samples,) 0/1; predictions: (n_trials, n_samples) P(label 1) of every
    complete trained trial; dates: (n_samples,) the date of each sample, where a
    panel has several samples (symbols) per date: their losses are averaged per
    date, so the blocks cut dates. The summary of
    `probability_of_backtest_overfitting` of the per-date log losses, or, when the
    search cannot be judged (fewer than two trials, fewer dates than blocks),
    `value` None and the reason `skipped`.
    """
    predictions = np.asarray(predictions, dtype=float).reshape(-1, len(labels))
    n_trials = predictions.shape[0]
    n_dates = predictions.shape[1] if dates is None else len(set(np.asarray(dates).tolist()))
    if n_trials < 2:
        reason = f"PBO compares trials; this study has {n_trials} with stored predictions"
    elif n_dates < blocks:
        reason = f"{n_dates} validation dates cannot be cut into {blocks} blocks"
    else:
        losses = sample_log_loss(labels, predictions).T  # (n_samples, n_trials)
        if dates is not None and n_dates < losses.shape[0]:
            days, day = np.unique(np.asarray(dates), return_inverse=True)
            sums = np.zeros((days.size, n_trials))
            np.add.at(sums, day, losses)
            losses = sums / np.bincount(day, minlength=days.size)[:, None]
        return probability_of_backtest_overfitting(losses, blocks).summary()
    return PBOSummary(value=None, blocks=int(blocks), trials=n_trials, skipped=reason)


def trial_sharpes(
    predictions: Any,
    next_day_returns: Any,
    horizon_days: int,
    cost_bps: float = 1.0,
) -> np.ndarray:
    """(n_trials,) per-period Sharpe ratio of each trial's long/flat signal on its own
    validation dates, each at the threshold best there: the Sharpe ratios the search
    would have picked among, and whose spread deflates the winner's."""
    p = np.atleast_2d(np.asarray(predictions, dtype=float))
    out = np.empty(p.shape[0])
    for i, row in enumerate(p):
        threshold = choose_threshold(row, next_day_returns, horizon_days, cost_bps)
        path = strategy_returns(row, next_day_returns, threshold, horizon_days, cost_bps)
        out[i] = sharpe_ratio(path, annualise=False)
    return out
