"""How much of a search's winner is luck: the probability of backtest overfitting
(PBO) with its distribution under the null, the Deflated Sharpe Ratio (DSR) and
the probabilistic Sharpe ratio (PSR).

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
median counts half, so that pure noise gives 0.5 for every trial count; losses
within a relative `TIE_RTOL` of each other tie, so that rounding in the sums
does not break a tie of two identical trials). The degradation slope regresses
the winner's OOS loss on its IS loss over the combinations: near 0 or negative,
IS success says nothing about OOS.

One search's PBO is a noisy figure: pure noise gives 0.5 on average, but one
noise-only search of 40 trials ranges over roughly 0.2-0.8 (5-95%). The
`null_reference` of a PBO is its distribution over simulated searches of the
same shape (trials, dates, blocks) in which no trial is better than another:
each trial's loss is independent noise per date. A per-date loss component
shared by all trials (a hard day is hard for every model) adds the same amount
to every trial's in-sample and out-of-sample mean, so it changes no argmin and
no rank: the null needs none. Only a PBO below the null's 5% quantile says the
in-sample ranking carries out of sample more often than pure noise does.

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

import dataclasses
import functools
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
# Two mean losses within this relative distance tie: rounding in block sums of
# identical trials differs in the last digits, real differences are far larger.
TIE_RTOL = 1e-9
# Simulated searches per null reference of a PBO, and their seed. The 5% quantile's
# share is then known to +-0.007 (one standard error), so a call below it keeps a
# size of 4-6%; one reference of 40 trials and 16 blocks takes a few seconds.
PBO_NULL_SIMULATIONS = 1000
PBO_NULL_SEED = 20150901
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
class NullReference(Record):
    """The distribution of a PBO under the null (no trial better than another) for one
    search shape: its 5%, 50% and 95% quantiles over `simulations` simulated searches."""

    q05: float
    q50: float
    q95: float
    simulations: int


@dataclass(frozen=True, kw_only=True)
class PBOSummary(Record):
    """What a file keeps of a study's probability of backtest overfitting: `value` in
    [0, 1] over `trials` trials cut into `blocks` blocks of dates, the number of
    `combinations`, the quartiles and histogram of the combinations' logits, the
    degradation line (out-of-sample against in-sample loss, nats) and the winner's mean
    in-sample and out-of-sample loss, the `null_reference` of its shape and the
    `null_quantile` where `value` falls in it (the share of null searches below it,
    ties half; None in files written before the reference); or, where the search
    cannot be judged, `value` None and the reason `skipped`."""

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
    null_reference: NullReference | None = stored(omit_none=True, parse=NullReference.from_dict)
    null_quantile: float | None = stored(omit_none=True)
    skipped: str | None = stored(omit_none=True)

    @property
    def beats_null(self) -> bool:
        """The one call a PBO supports: below its null's 5% quantile, the search's ranking
        carries out of sample more often than pure noise does (False where not known)."""
        ref = self.null_reference
        return self.value is not None and ref is not None and self.value < ref.q05


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


@functools.lru_cache(maxsize=8)
def half_splits(blocks: int) -> np.ndarray:
    """Every choice of blocks/2 of `blocks` as in-sample: bool (C(blocks, blocks/2), blocks).

    Cached and read-only: building the 12,870 rows of 16 blocks costs more than a CSCV.
    """
    rows = list(itertools.combinations(range(blocks), blocks // 2))
    mask = np.zeros((len(rows), blocks), dtype=bool)
    for i, chosen in enumerate(rows):
        mask[i, list(chosen)] = True
    mask.setflags(write=False)
    return mask


def oos_relative_rank(oos_loss: np.ndarray, winner: np.ndarray) -> np.ndarray:
    """omega = rank / (n_trials + 1) of each row's winner by OOS loss, best = n_trials.

    oos_loss: (rows, n_trials); winner: (rows,) column indices. Losses within a
    relative `TIE_RTOL` of the winner's tie with it and share the mean of their
    ranks (two identical trials' sums can differ in the last digits).
    """
    n_trials = oos_loss.shape[1]
    mine = oos_loss[np.arange(len(winner)), winner][:, None]
    tolerance = TIE_RTOL * np.maximum(np.abs(mine), 1.0)
    tied_mask = np.abs(oos_loss - mine) <= tolerance
    worse = ((oos_loss > mine) & ~tied_mask).sum(axis=1)
    tied = tied_mask.sum(axis=1)  # includes the winner itself
    rank = worse + 1 + (tied - 1) / 2.0
    return rank / (n_trials + 1)


def share_below_median(omega: np.ndarray) -> float:
    """PBO from the winners' relative ranks: the share below the median (omega < 1/2),
    one exactly at it counting half (omega is a count over n_trials + 1, so exact)."""
    twice = 2.0 * np.asarray(omega)
    at_median = np.isclose(twice, 1.0, rtol=0, atol=1e-12)
    return float(np.mean((twice < 1.0) & ~at_median) + 0.5 * np.mean(at_median))


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
    value = share_below_median(omega)
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


# ---- the PBO of pure noise ------------------------------------------------------


def null_pbo_values(
    n_trials: int,
    n_dates: int,
    blocks: int = PBO_BLOCKS,
    simulations: int = PBO_NULL_SIMULATIONS,
    seed: int = PBO_NULL_SEED,
) -> np.ndarray:
    """(simulations,) PBOs of simulated searches in which no trial is better: each of
    `n_trials` trials' loss on each of `n_dates` dates is independent standard normal
    noise, cut into `blocks` blocks as `probability_of_backtest_overfitting` cuts them.

    Sorted, read-only and cached per arguments (the same seed gives the same values).
    CSCV sees a loss matrix only through its block sums, and a block sum of m
    independent N(0, 1) dates is N(0, m): the simulation draws the sums directly, which
    is the same distribution as drawing every date (the dates enter only as block
    sizes). A loss shared by all trials on a date shifts every trial's in-sample and
    out-of-sample mean alike and changes no argmin or rank, so it is left out; a common
    scale is left out for the same reason. The argmin and ranks are taken on the sums:
    dividing a combination's sums by its date count scales a whole row alike.
    """
    check_blocks(blocks, n_dates)
    if int(n_trials) != n_trials or n_trials < 2:
        raise ValueError(f"n_trials must be an integer >= 2, got {n_trials!r}")
    return _null_pbo_values(int(n_trials), int(n_dates), int(blocks), int(simulations), seed)


@functools.lru_cache(maxsize=64)
def _null_pbo_values(
    n_trials: int, n_dates: int, blocks: int, simulations: int, seed: int
) -> np.ndarray:
    counts = np.array([len(p) for p in np.array_split(np.arange(n_dates), blocks)], float)
    splits = half_splits(blocks)
    # Half the combinations hold block 0 in-sample; the other half are their
    # complements, whose in-sample sums are the first half's out-of-sample sums.
    half = splits[splits[:, 0]].astype(np.float32)
    rng = np.random.default_rng(seed)
    # float32: only argmins and orderings of sums of a few hundred unit draws are
    # used, and it halves the memory traffic that is the simulation's cost.
    sums = rng.standard_normal((blocks, simulations, n_trials), dtype=np.float32)
    sums *= np.sqrt(counts).astype(np.float32)[:, None, None]
    below = np.zeros(simulations)
    chunk = max(1, 2**21 // (half.shape[0] * n_trials))  # about 8 MB of float32 per array
    for start in range(0, simulations, chunk):
        part = sums[:, start : start + chunk]  # (blocks, k, n_trials)
        k = part.shape[1]
        in_half = (half @ part.reshape(blocks, -1)).reshape(half.shape[0], k, n_trials)
        out_half = part.sum(axis=0)[None] - in_half
        for inside, outside in ((in_half, out_half), (out_half, in_half)):
            winner = inside.argmin(axis=2)[..., None]
            mine = np.take_along_axis(outside, winner, axis=2)
            twice_rank = 2 * ((outside > mine).sum(axis=2) + 1)  # no ties in continuous noise
            below[start : start + k] += (twice_rank < n_trials + 1).sum(axis=0)
            below[start : start + k] += 0.5 * (twice_rank == n_trials + 1).sum(axis=0)
    values = np.sort(below / splits.shape[0])
    values.setflags(write=False)
    return values


def null_reference(
    n_trials: int, n_dates: int, blocks: int = PBO_BLOCKS, simulations: int = PBO_NULL_SIMULATIONS
) -> NullReference:
    """The 5/50/95% quantiles of `null_pbo_values` of this shape."""
    values = null_pbo_values(n_trials, n_dates, blocks, simulations)
    q05, q50, q95 = np.quantile(values, [0.05, 0.5, 0.95]).tolist()
    return NullReference(q05=q05, q50=q50, q95=q95, simulations=int(values.size))


def null_quantile(value: float, null_values: np.ndarray) -> float:
    """Where `value` falls among `null_values`: the share below it, those equal to it
    (within 1e-12, PBOs being shares of a finite count) counting half."""
    values = np.asarray(null_values, dtype=float)
    equal = np.isclose(values, value, rtol=0, atol=1e-12)
    return float(np.mean((values < value) & ~equal) + 0.5 * np.mean(equal))


def with_null_reference(
    summary: PBOSummary, n_dates: int, simulations: int = PBO_NULL_SIMULATIONS
) -> PBOSummary:
    """`summary` with the null reference of its shape (its trials and blocks over
    `n_dates` dates) and where its value falls in it; unchanged where it was skipped."""
    if summary.value is None:
        return summary
    values = null_pbo_values(summary.trials, n_dates, summary.blocks, simulations)
    return dataclasses.replace(
        summary,
        null_reference=null_reference(summary.trials, n_dates, summary.blocks, simulations),
        null_quantile=null_quantile(summary.value, values),
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
    benchmark = float(null_sharpe) + expected_max_sharpe(trial_sharpes.size, variance)
    sharpe, _, _, n_days = sharpe_moments(returns)
    yearly = math.sqrt(TRADING_DAYS_PER_YEAR)
    return DeflatedSharpe(
        value=probabilistic_sharpe_ratio(returns, benchmark),
        trials=int(trial_sharpes.size),
        benchmark_sharpe=benchmark,
        sharpe=sharpe,
        trial_sharpe_spread=math.sqrt(variance),
        annualised_benchmark_sharpe=benchmark * yearly,
        annualised_sharpe=sharpe * yearly,
        n_days=n_days,
        null_sharpe=float(null_sharpe),
    )


# ---- a study's search ---------------------------------------------------------


def search_pbo(
    labels: Any,
    predictions: Any,
    blocks: int = PBO_BLOCKS,
    dates: Any = None,
    null_simulations: int = PBO_NULL_SIMULATIONS,
) -> PBOSummary:
    """The PBO of a study's trials from their validation predictions.

    labels: (n_samples,) 0/1; predictions: (n_trials, n_samples) P(label 1) of every
    complete trained trial; dates: (n_samples,) the date of each sample, where a
    panel has several samples (symbols) per date: their losses are averaged per
    date, so the blocks cut dates. The summary of
    `probability_of_backtest_overfitting` of the per-date log losses with the null
    reference of its shape (`with_null_reference`, over `null_simulations` simulated
    searches), or, when the search cannot be judged (fewer than two trials, fewer
    dates than blocks), `value` None and the reason `skipped`.
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
        summary = probability_of_backtest_overfitting(losses, blocks).summary()
        return with_null_reference(summary, losses.shape[0], null_simulations)
    return PBOSummary(value=None, blocks=int(blocks), trials=n_trials, skipped=reason)


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
