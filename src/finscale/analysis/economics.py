"""The economic illustration of a budget's winner: what its probabilities would
have been worth as a long/flat signal, and whether that survives the search.

Each final-evaluation run (a seed, on a fold) chooses its threshold on its own
validation dates (`choose_threshold`) and trades its test dates with it
(`strategy_returns`: overlapping tranches over the label horizon, net of
`cost_bps`). The budget's daily return is the mean over its seeds (each seed
holding an equal share of the capital), the folds one after another. Its
annualised Sharpe ratio carries a percentile interval over the horizon's
block-bootstrap draws of test dates, and its probabilistic Sharpe ratio (PSR)
asks whether it is above zero: nothing was selected on the test dates.

What was selected is the search's winner, on its validation dates: the
Deflated Sharpe Ratio (DSR) takes the winner trial's own validation series
(its stored predictions there, at the threshold best there) and deflates its
Sharpe ratio by the best expected of as many unskilled trials, given the
spread of all the trials' Sharpe ratios on the same dates and centred on what
the choice of threshold alone gives (`unskilled_sharpe`). (Deflating the test
Sharpe ratio by validation-length trial Sharpe ratios, as this module once
did, mixes a selected figure's benchmark with an unselected figure of another
length: a real test edge got a DSR near 0.) An illustration, not a trading
system: one target, no capacity, no financing, one cost figure.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from finscale.analysis.bootstrap import percentile_interval
from finscale.analysis.folds import by_fold
from finscale.analysis.records import EvaluationRun, SearchTrials
from finscale.analysis.serial import Record, stored, tuple_of
from finscale.analysis.sharpe import (
    TRADING_DAYS_PER_YEAR,
    DeflatedSharpe,
    ProbabilisticSharpe,
    choose_threshold,
    deflated_sharpe_ratio,
    probabilistic_sharpe,
    sharpe_ratio,
    strategy_returns,
    trial_returns,
    unskilled_sharpe,
)


@dataclass(frozen=True, kw_only=True)
class SharpeView(Record):
    """A budget's long/flat signal on its pooled test dates: the annualised Sharpe ratio
    (`value`) with its percentile `interval` over the block-bootstrap draws of dates,
    the annualised mean (`annual_return`) and volatility of its daily net returns, the
    cost per unit of position change (`cost_bps`, basis points), its `n_days` and the
    `thresholds` each fold's seeds chose on validation; or `value` and `interval`
    None and the reason `skipped`."""

    value: float | None
    interval: tuple[float, float] | None
    annual_return: float | None = stored(unless_skipped=True)
    annual_volatility: float | None = stored(unless_skipped=True)
    cost_bps: float | None = stored(unless_skipped=True)
    n_days: int | None = stored(unless_skipped=True)
    thresholds: tuple[tuple[float, ...], ...] | None = stored(
        unless_skipped=True, parse=tuple_of(tuple)
    )
    skipped: str | None = stored(omit_none=True)

    @classmethod
    def not_shown(cls, reason: str) -> SharpeView:
        return cls(value=None, interval=None, skipped=reason)


def run_returns(run: EvaluationRun, horizon_days: int, cost_bps: float) -> tuple[np.ndarray, float]:
    """One run's daily net test returns (n_test,) and the threshold it chose on validation."""
    returns = run.next_day_returns or {}
    val_returns = np.nan_to_num(np.asarray(returns["val"], dtype=float))
    test_returns = np.nan_to_num(np.asarray(returns["test"], dtype=float))
    threshold = choose_threshold(run.predictions["val"], val_returns, horizon_days, cost_bps)
    path = strategy_returns(
        run.predictions["test"], test_returns, threshold, horizon_days, cost_bps
    )
    return path, threshold


def pooled_returns(
    runs: Sequence[EvaluationRun], horizon_days: int, cost_bps: float
) -> tuple[np.ndarray, list[list[float]]]:
    """The budget's daily return on the pooled test dates (seed mean, folds in order)
    and the thresholds each fold's seeds chose."""
    series, thresholds = [], []
    for group in by_fold(runs).values():
        paths, chosen = zip(*(run_returns(r, horizon_days, cost_bps) for r in group), strict=True)
        series.append(np.mean(paths, axis=0))
        thresholds.append([float(t) for t in chosen])
    return np.concatenate(series), thresholds


def economic_view(
    runs: Sequence[EvaluationRun],
    search: SearchTrials | None,
    horizon_days: int,
    cost_bps: float,
    indices: np.ndarray,
    level: float,
) -> tuple[SharpeView, DeflatedSharpe, ProbabilisticSharpe]:
    """The `sharpe`, `dsr` and `psr` of a budget's row in scaling.json.

    indices: (n_resamples, n_test) the horizon's bootstrap draws of test dates;
    `level`: of the Sharpe ratio's intervals. The PSR is the pooled test returns'
    against zero. The DSR deflates the winner's validation Sharpe ratio by the
    trials of the budget's search (`winner_dsr`); it is not known (`skipped`) when
    the study stored no trial predictions.
    """
    if any(not r.next_day_returns for r in runs):
        reason = "the final-evaluation runs were stored without next-day returns; rerun them"
        return SharpeView.not_shown(reason), no_dsr(reason), ProbabilisticSharpe.not_known(reason)
    daily, thresholds = pooled_returns(runs, horizon_days, cost_bps)
    low, high = percentile_interval(np.asarray(sharpe_ratio(daily[indices])), level)
    sharpe = SharpeView(
        value=float(sharpe_ratio(daily)),
        interval=(low, high),
        annual_return=float(daily.mean() * TRADING_DAYS_PER_YEAR),
        annual_volatility=float(daily.std(ddof=1) * np.sqrt(TRADING_DAYS_PER_YEAR)),
        cost_bps=cost_bps,
        n_days=int(daily.size),
        thresholds=tuple(tuple(t) for t in thresholds),
    )
    psr = probabilistic_sharpe(daily, level)
    return sharpe, winner_dsr(search, runs[0].winner.trial, horizon_days, cost_bps), psr


def winner_dsr(
    search: SearchTrials | None, winner_trial: int, horizon_days: int, cost_bps: float
) -> DeflatedSharpe:
    """The DSR of the search's winner (trial number `winner_trial`): its long/flat
    series on the study's validation dates, at the threshold best there, against the
    Sharpe ratios of every trial with stored predictions on the same dates, SR_0
    centred on what the threshold choice alone gives (`unskilled_sharpe`)."""
    if search is None or not search.predictions:
        return no_dsr("the study's trial records hold no validation predictions")
    if winner_trial not in search.predictions:
        return no_dsr(
            f"the winner's trial {winner_trial} has no stored validation predictions "
            "(a duplicate, or a record made by an older version)"
        )
    numbers = list(search.predictions)
    trials = np.array([search.predictions[k] for k in numbers], dtype=float)
    val_returns = np.nan_to_num(np.asarray(search.next_day_returns, dtype=float))
    paths = trial_returns(trials, val_returns, horizon_days, cost_bps)
    per_trial = np.asarray(sharpe_ratio(paths, annualise=False))
    null_sharpe = unskilled_sharpe(trials, val_returns, horizon_days, cost_bps)
    dsr = deflated_sharpe_ratio(paths[numbers.index(winner_trial)], per_trial, null_sharpe)
    return dataclasses.replace(dsr, trial=int(winner_trial))


def no_dsr(reason: str) -> DeflatedSharpe:
    """A DSR that is not known, and why."""
    return DeflatedSharpe(value=None, trials=0, skipped=reason)
