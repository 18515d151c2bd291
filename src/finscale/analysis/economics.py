"""The economic illustration of a budget's winner: what its probabilities would
have been worth as a long/flat signal, and whether that survives the search.

Each final-evaluation run (a seed, on a fold) chooses its threshold on its own
validation dates (`choose_threshold`) and trades its test dates with it
(`strategy_returns`: overlapping tranches over the label horizon, net of
`cost_bps`). The budget's daily return is the mean over its seeds (each seed
holding an equal share of the capital), the folds one after another. Its
annualised Sharpe ratio carries a percentile interval over the horizon's
block-bootstrap draws of test dates, and its Deflated Sharpe Ratio deflates it
by the best of the study's trials' validation Sharpe ratios. An illustration,
not a trading system: one target, no capacity, no financing, one cost figure.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from finscale.analysis.bootstrap import percentile_interval
from finscale.analysis.folds import by_fold
from finscale.analysis.overfitting import (
    TRADING_DAYS_PER_YEAR,
    choose_threshold,
    deflated_sharpe_ratio,
    sharpe_ratio,
    strategy_returns,
    trial_sharpes,
)
from finscale.analysis.records import EvaluationRun, SearchTrials


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
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The `sharpe` and `dsr` objects of a budget's row in scaling.json.

    indices: (n_resamples, n_test) the horizon's bootstrap draws of test dates.
    `sharpe`: `value` (annualised), `interval` ([low, high] at `level`), the
    annualised mean and volatility of the daily returns, the thresholds. `dsr`:
    `value` in [0, 1] (the probability that the true Sharpe ratio beats the
    best of `trials` unskilled trials), `trials`, the benchmark SR_0; `value`
    None with the reason `skipped` when the study stored no trial predictions.
    """
    if any(not r.next_day_returns for r in runs):
        reason = "the final-evaluation runs were stored without next-day returns; rerun them"
        return {"value": None, "interval": None, "skipped": reason}, _no_dsr(0, reason)
    daily, thresholds = pooled_returns(runs, horizon_days, cost_bps)
    low, high = percentile_interval(np.asarray(sharpe_ratio(daily[indices])), level)
    sharpe = {
        "value": float(sharpe_ratio(daily)),
        "interval": [low, high],
        "annual_return": float(daily.mean() * TRADING_DAYS_PER_YEAR),
        "annual_volatility": float(daily.std(ddof=1) * np.sqrt(TRADING_DAYS_PER_YEAR)),
        "cost_bps": cost_bps,
        "n_days": int(daily.size),
        "thresholds": thresholds,
    }
    if search is None or not search.predictions:
        return sharpe, _no_dsr(0, "the study's trial records hold no validation predictions")
    trials = np.array(list(search.predictions.values()), dtype=float)
    per_trial = trial_sharpes(trials, np.asarray(search.next_day_returns), horizon_days, cost_bps)
    dsr = deflated_sharpe_ratio(daily, per_trial)
    dsr["trial_sharpe_spread"] = float(per_trial.std(ddof=1)) if per_trial.size > 1 else 0.0
    dsr["annualised_benchmark_sharpe"] = dsr["benchmark_sharpe"] * np.sqrt(TRADING_DAYS_PER_YEAR)
    return sharpe, dsr


def _no_dsr(trials: int, reason: str) -> dict[str, Any]:
    return {"value": None, "trials": trials, "skipped": reason}
