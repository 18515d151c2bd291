"""Final evaluation of a study's winners, and the math of finished runs: baselines,
intervals (bootstrap), calibration, the scaling law, the cross-budget matrix, the
power of each comparison (MDE), the overfitting of the search (PBO, DSR), and the
results they add up to. Nothing here knows where a run directory keeps its files:
`finscale.scale` reads and writes them."""

from finscale.analysis.baselines import evaluate_baselines
from finscale.analysis.cross_budget import cross_budget_cell, matrix
from finscale.analysis.evaluate import crowned_trial, evaluate_seed, winner_of
from finscale.analysis.overfitting import (
    deflated_sharpe_ratio,
    probability_of_backtest_overfitting,
    sharpe_ratio,
    strategy_returns,
)
from finscale.analysis.power import minimum_detectable_effect, power_table
from finscale.analysis.records import CrossBudgetCell, EvaluationRun, ScalingRow, Winner
from finscale.analysis.results import experiment_rows, horizon_results, scaling_results

__all__ = [
    "CrossBudgetCell",
    "EvaluationRun",
    "ScalingRow",
    "Winner",
    "cross_budget_cell",
    "crowned_trial",
    "deflated_sharpe_ratio",
    "evaluate_baselines",
    "evaluate_seed",
    "experiment_rows",
    "horizon_results",
    "matrix",
    "minimum_detectable_effect",
    "power_table",
    "probability_of_backtest_overfitting",
    "scaling_results",
    "sharpe_ratio",
    "strategy_returns",
    "winner_of",
]
