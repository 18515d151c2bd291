"""The economic illustration of a panel: a long-short portfolio of its symbols.

On each rebalance date (every h test dates, h the label horizon; the first test
date of each walk-forward fold is one) the symbols with a prediction are ranked
by predicted probability: the top `quantile` of them are held long and the bottom
`quantile` short, equal-weight within each leg (+1 long, -1 short: dollar-neutral,
gross 2), and the weights are held unchanged until the next rebalance (drift
between rebalances is ignored). A date's return is the weighted sum of each
symbol's simple return from that date's close to its next one (its own rows', as
the dataset gives it), less `cost_bps` per unit of turnover, the sum of absolute
weight changes at a rebalance (the first one enters from flat). A perfect ranking
of one-day returns earns, at h = 1, the spread between the mean of the top and the
bottom quantile's next-day returns.

Each final-evaluation seed trades its own portfolio with an equal share of the
capital (the budget's daily return and turnover are the seeds' means), each fold
one after another; the logistic baseline trades its own probabilities on the same
rows. Figures: the annualised net return and turnover, the annualised Sharpe
ratio with a percentile interval over block-bootstrap draws of test dates (each
fold within itself, the folds' block lengths), and its Deflated Sharpe Ratio as
the best of the study's trial count (`deflated_sharpe_of_count`: nothing was
selected on the test dates, so this deflation is conservative, the more so for a
baseline the search never chose). An illustration, not a trading system: no
capacity, borrow, financing or slippage model, one cost figure.

The math is pure functions of arrays (`panel_matrix`, `long_short_weights`,
`turnover`, `portfolio_returns`, `sharpe_interval`, `figures`); `panel_long_short`
applies them to a budget's stored runs, and `benchmarks/coverage_long_short.py` to
simulated panels whose true Sharpe ratio is known.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from finscale.analysis.bootstrap import percentile_interval
from finscale.analysis.folds import Horizon, by_fold
from finscale.analysis.records import EvaluationRun, SearchTrials
from finscale.analysis.resampling import stratified_bootstrap_indices
from finscale.analysis.serial import Record, stored
from finscale.analysis.sharpe import (
    TRADING_DAYS_PER_YEAR,
    DeflatedSharpe,
    deflated_sharpe_of_count,
    sharpe_ratio,
)

# The fewest daily returns a Sharpe ratio's moments (and so the DSR) are taken from.
MIN_DAYS = 3


@dataclass(frozen=True, kw_only=True)
class LongShortFigures(Record):
    """One signal's long-short portfolio on the pooled test dates: its annualised mean
    daily net return (`net_annual_return`, a fraction), its annualised turnover
    (`annual_turnover`, units of capital traded a year), its annualised Sharpe ratio
    with the percentile interval `sharpe_ci` over the block-bootstrap draws of dates,
    its DSR over the study's trial count and its `n_days`; or the reason `skipped`."""

    net_annual_return: float | None = stored(unless_skipped=True)
    annual_turnover: float | None = stored(unless_skipped=True)
    sharpe: float | None = stored(unless_skipped=True)
    sharpe_ci: tuple[float, float] | None = stored(unless_skipped=True)
    dsr: DeflatedSharpe | None = stored(parse=DeflatedSharpe.from_dict, unless_skipped=True)
    n_days: int | None = stored(unless_skipped=True)
    skipped: str | None = stored(omit_none=True)


@dataclass(frozen=True, kw_only=True)
class LongShortView(Record):
    """`scaling.json`'s `long_short` of a panel budget: the top and bottom `quantile`,
    the cost per unit of turnover (`cost_bps`, basis points), the `rebalance_days`
    (the horizon), and the figures of the budget's winner (`model`) and of the
    logistic baseline (`logistic`, None where the study stored none); or the reason
    `skipped`."""

    quantile: float
    cost_bps: float
    rebalance_days: int
    model: LongShortFigures | None = stored(parse=LongShortFigures.from_dict, omit_none=True)
    logistic: LongShortFigures | None = stored(parse=LongShortFigures.from_dict, omit_none=True)
    skipped: str | None = stored(omit_none=True)


def panel_matrix(
    dates: Any, symbols: Any, values: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows of a panel (one per symbol and date) as a (n_dates, n_symbols) matrix.

    dates, symbols, values: (n,) each row's date, symbol and value. Returns the
    sorted distinct dates (n_dates,), symbols (n_symbols,) and the float matrix of
    values, NaN where a symbol has no row on a date. A symbol twice on one date is
    an error.
    """
    dates, symbols = np.asarray(dates), np.asarray(symbols)
    values = np.asarray(values, dtype=float)
    if not dates.shape == symbols.shape == values.shape or dates.ndim != 1:
        raise ValueError("dates, symbols and values must be 1-D and of one length")
    unique_dates, date_index = np.unique(dates, return_inverse=True)
    unique_symbols, symbol_index = np.unique(symbols, return_inverse=True)
    out = np.full((unique_dates.size, unique_symbols.size), np.nan)
    cells = date_index.ravel() * unique_symbols.size + symbol_index.ravel()
    if np.unique(cells).size != cells.size:
        raise ValueError("a symbol has two rows on one date")
    out.flat[cells] = values
    return unique_dates, unique_symbols, out


def leg_size(n_ranked: int, quantile: float) -> int:
    """Symbols in each leg when `n_ranked` are ranked: floor(quantile x n), at least one
    and at most half of them; none with fewer than two."""
    if not 0 < quantile <= 0.5:
        raise ValueError(f"quantile must be in (0, 0.5], got {quantile!r}")
    if n_ranked < 2:
        return 0
    # The small epsilon keeps 0.3 x 10 at 3 despite floating point.
    return min(max(1, math.floor(quantile * n_ranked + 1e-9)), n_ranked // 2)


def long_short_weights(probabilities: Any, quantile: float, rebalance_days: int) -> np.ndarray:
    """(n_dates, n_symbols) weights of the long-short portfolio.

    probabilities: (n_dates, n_symbols) predicted P(label 1), NaN where a symbol has
    no prediction. On every `rebalance_days`-th date from the first, the symbols
    with a prediction are ranked (ties by column order); the `leg_size` highest get
    +1/k, the k lowest -1/k, the rest 0; other dates hold the last rebalance's
    weights.
    """
    p = np.asarray(probabilities, dtype=float)
    if p.ndim != 2:
        raise ValueError(f"probabilities must be (n_dates, n_symbols), got {p.shape}")
    if int(rebalance_days) != rebalance_days or rebalance_days < 1:
        raise ValueError(f"rebalance_days must be a positive integer, got {rebalance_days!r}")
    weights = np.zeros(p.shape)
    current = np.zeros(p.shape[1])
    for t in range(p.shape[0]):
        if t % int(rebalance_days) == 0:
            current = np.zeros(p.shape[1])
            ranked = np.flatnonzero(np.isfinite(p[t]))
            k = leg_size(ranked.size, quantile)
            if k:
                order = ranked[np.argsort(p[t, ranked], kind="stable")]
                current[order[-k:]] = 1.0 / k
                current[order[:k]] = -1.0 / k
        weights[t] = current
    return weights


def turnover(weights: Any) -> np.ndarray:
    """(n_dates,) the sum of absolute weight changes into each date's weights
    (n_dates, n_symbols), the first date's from flat."""
    w = np.asarray(weights, dtype=float)
    return np.abs(np.diff(w, axis=0, prepend=np.zeros((1, w.shape[1])))).sum(axis=1)


def portfolio_returns(weights: Any, next_day_returns: Any, cost_bps: float) -> np.ndarray:
    """(n_dates,) daily net returns: each date's weights times each symbol's simple
    return to its next close (n_dates, n_symbols; NaN, a symbol without a row, counts
    as 0), less cost_bps / 1e4 per unit of `turnover`."""
    if cost_bps < 0:
        raise ValueError(f"cost_bps must be >= 0, got {cost_bps!r}")
    w = np.asarray(weights, dtype=float)
    r = np.nan_to_num(np.asarray(next_day_returns, dtype=float))
    if w.shape != r.shape:
        raise ValueError(f"weights {w.shape} and returns {r.shape} must share their shape")
    return (w * r).sum(axis=1) - cost_bps * 1e-4 * turnover(w)


def long_short_returns(
    dates: Any,
    symbols: Any,
    probabilities: Any,
    next_day_returns: Any,
    quantile: float,
    rebalance_days: int,
    cost_bps: float,
) -> tuple[np.ndarray, np.ndarray]:
    """The long-short portfolio of a panel's rows (each (n,): date, symbol, predicted
    probability, next-day simple return): its daily net returns and turnover, each
    (n_dates,) in date order."""
    _, _, p = panel_matrix(dates, symbols, probabilities)
    _, _, r = panel_matrix(dates, symbols, next_day_returns)
    weights = long_short_weights(p, quantile, rebalance_days)
    return portfolio_returns(weights, r, cost_bps), turnover(weights)


def sharpe_interval(
    daily: Any,
    fold_sizes: Sequence[int],
    block_days: int | Sequence[int],
    level: float,
    n_resamples: int,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile interval at `level` of the annualised Sharpe ratio of `daily` (n_days,)
    net returns over `n_resamples` circular block-bootstrap draws of its dates: each
    fold (`fold_sizes`, consecutive ranges summing to n_days) resampled within itself
    in blocks of its `block_days` (one for all, or one per fold), seeded with `seed`
    (`stratified_bootstrap_indices`: the same arguments draw the same dates, so two
    signals on one panel's dates are paired)."""
    values = np.asarray(daily, dtype=float)
    if values.ndim != 1 or values.size != sum(int(n) for n in fold_sizes):
        raise ValueError(f"daily {values.shape} must be one series of sum(fold_sizes) days")
    indices = stratified_bootstrap_indices(fold_sizes, block_days, n_resamples, seed)
    return percentile_interval(np.asarray(sharpe_ratio(values[indices])), level)


def figures(
    daily: np.ndarray,
    turnover_per_day: np.ndarray,
    fold_sizes: Sequence[int],
    block_days: int | Sequence[int],
    level: float,
    n_resamples: int,
    n_trials: int | None,
) -> LongShortFigures:
    """The figures of one signal's daily net returns and turnover (n_days,), its folds
    `fold_sizes` long: the Sharpe ratio's `sharpe_interval` at `level` over
    `n_resamples` draws in blocks of `block_days`, its DSR over `n_trials` (None: not
    known)."""
    if daily.size < MIN_DAYS:
        return LongShortFigures(skipped=f"fewer than {MIN_DAYS} test dates")
    low, high = sharpe_interval(daily, fold_sizes, block_days, level, n_resamples)
    dsr = (
        deflated_sharpe_of_count(daily, n_trials)
        if n_trials
        else DeflatedSharpe(
            value=None, trials=0, skipped="the study's trial records were not found"
        )
    )
    return LongShortFigures(
        net_annual_return=float(daily.mean() * TRADING_DAYS_PER_YEAR),
        annual_turnover=float(turnover_per_day.mean() * TRADING_DAYS_PER_YEAR),
        sharpe=float(sharpe_ratio(daily)),
        sharpe_ci=(low, high),
        dsr=dsr,
        n_days=int(daily.size),
    )


def panel_long_short(
    h: Horizon,
    runs: Sequence[EvaluationRun],
    logistic: np.ndarray | None,
    search: SearchTrials | None,
    cost_bps: float,
    quantile: float,
) -> LongShortView:
    """The `long_short` of a panel budget's row: its runs' (each seed's portfolio, the
    seeds' mean) and the logistic baseline's (`logistic`: (n_test,) pooled test
    probabilities, None without one), on the horizon's pooled test rows; the DSR over
    the trial count of the budget's `search`."""
    view = {"quantile": quantile, "cost_bps": cost_bps, "rebalance_days": h.horizon}
    if any(not r.next_day_returns or not r.test_symbols for r in runs):
        reason = "the final-evaluation runs were stored without test symbols or returns; rerun"
        return LongShortView(**view, skipped=reason)
    model: list[tuple[np.ndarray, np.ndarray]] = []
    baseline: list[tuple[np.ndarray, np.ndarray]] = []
    start = 0
    for group in by_fold(runs).values():
        first = group[0]
        rows = (first.test_dates, first.test_symbols)
        returns = np.asarray(first.next_day_returns["test"], dtype=float)  # type: ignore[index]
        per_seed = [
            long_short_returns(*rows, r.predictions["test"], returns, quantile, h.horizon, cost_bps)
            for r in group
        ]
        model.append(
            (np.mean([s[0] for s in per_seed], axis=0), np.mean([s[1] for s in per_seed], axis=0))
        )
        n = len(first.test_dates)
        if logistic is not None:
            p = logistic[start : start + n]
            baseline.append(long_short_returns(*rows, p, returns, quantile, h.horizon, cost_bps))
        start += n
    sizes = [daily.size for daily, _ in model]
    n_resamples = h.pooled.indices.shape[0]
    n_trials = search.complete if search is not None else None

    def of(paths: list[tuple[np.ndarray, np.ndarray]]) -> LongShortFigures:
        daily = np.concatenate([d for d, _ in paths])
        traded = np.concatenate([t for _, t in paths])
        return figures(daily, traded, sizes, h.fold_block_days, h.level, n_resamples, n_trials)

    return LongShortView(**view, model=of(model), logistic=of(baseline) if baseline else None)
