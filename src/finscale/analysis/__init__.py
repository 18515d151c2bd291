"""Final evaluation of a study's winners, and the math of finished runs: baselines,
intervals (bootstrap), calibration, the scaling law, the cross-budget matrix, the
power of each comparison (MDE), the overfitting of the search (PBO, DSR), and the
results they add up to. Nothing here knows where a run directory keeps its files:
`finscale.scale` reads and writes them. Results are frozen dataclasses whose
`to_dict()` is the JSON the files hold (`finscale.analysis.serial`)."""

from finscale.analysis.baselines import C_GRID, BaselineDetails, BaselineResult, evaluate_baselines
from finscale.analysis.bayes import TEST_PROBABILITIES, BayesCheck
from finscale.analysis.bootstrap import (
    IMPROVES,
    NO_DIFFERENCE,
    WORSENS,
    MetricSummary,
    PairedDifference,
)
from finscale.analysis.calibration import CalibrationScores, ReliabilityBins, SplitScores
from finscale.analysis.comparison import paired_run_differences
from finscale.analysis.cross_budget import (
    CrossBudgetMatrix,
    cell_key,
    cross_budget_cell,
    cross_budget_seed,
    estimate_seconds,
    matrix,
    plan_pairs,
)
from finscale.analysis.data_scaling import JointHorizonFit, JointPoints, SymbolRow
from finscale.analysis.economics import SharpeView
from finscale.analysis.evaluate import (
    crowned_trial,
    evaluate_seed,
    evaluation_key,
    evaluation_seeds,
    input_key,
    winner_of,
)
from finscale.analysis.family import corrected_family, holm_rejections
from finscale.analysis.folds import FoldAgreement, FoldDifference, FoldSpan, LossSummary
from finscale.analysis.joint_law import (
    NAMES,
    JointFit,
    JointLawBootstrap,
    MarginalValue,
    bootstrap_joint_law,
    identification_problem,
)
from finscale.analysis.law_fit import Estimate
from finscale.analysis.long_short import LongShortFigures, LongShortView
from finscale.analysis.overfitting import (
    NullReference,
    PBOSummary,
    null_reference,
    probability_of_backtest_overfitting,
)
from finscale.analysis.power import (
    PowerProjection,
    minimum_detectable_effect,
    power_table,
    projected_mde,
    z_sum,
)
from finscale.analysis.records import CrossBudgetCell, EvaluationRun, SearchTrials, Winner
from finscale.analysis.results import experiment_rows, horizon_results, scaling_results
from finscale.analysis.scaling import ScalingFit, ScalingLawBootstrap, bootstrap_scaling_law
from finscale.analysis.scaling_json import (
    BaselineComparison,
    BaselineSummary,
    BudgetStep,
    CalibrationSummary,
    ComparedBudget,
    Family,
    FoldRow,
    HorizonFit,
    HorizonResult,
    RunComparison,
    ScalingResults,
    ScalingRow,
    SearchCompute,
    TransferSettings,
)
from finscale.analysis.serial import json_safe
from finscale.analysis.sharpe import (
    DeflatedSharpe,
    ProbabilisticSharpe,
    deflated_sharpe_ratio,
    probabilistic_sharpe,
    sharpe_ratio,
    strategy_returns,
)
from finscale.analysis.size_trend import (
    FALLS,
    NO_TREND,
    RISES,
    RISES_MEANING,
    SizeTrend,
    size_trend,
)
from finscale.analysis.tiers import (
    FAMILY_KIND as TIER_FAMILY_KIND,
)
from finscale.analysis.tiers import (
    TierComparison,
    TierInfo,
    TierLoss,
    TierResults,
    tier_results,
)

__all__ = [
    "C_GRID",
    "FALLS",
    "IMPROVES",
    "NAMES",
    "NO_DIFFERENCE",
    "NO_TREND",
    "RISES",
    "RISES_MEANING",
    "TEST_PROBABILITIES",
    "TIER_FAMILY_KIND",
    "WORSENS",
    "BaselineComparison",
    "BaselineDetails",
    "BaselineResult",
    "BaselineSummary",
    "BayesCheck",
    "BudgetStep",
    "CalibrationScores",
    "CalibrationSummary",
    "ComparedBudget",
    "CrossBudgetCell",
    "CrossBudgetMatrix",
    "DeflatedSharpe",
    "Estimate",
    "EvaluationRun",
    "Family",
    "FoldAgreement",
    "FoldDifference",
    "FoldRow",
    "FoldSpan",
    "HorizonFit",
    "HorizonResult",
    "JointFit",
    "JointHorizonFit",
    "JointLawBootstrap",
    "JointPoints",
    "LongShortFigures",
    "LongShortView",
    "LossSummary",
    "MarginalValue",
    "MetricSummary",
    "NullReference",
    "PBOSummary",
    "PairedDifference",
    "PowerProjection",
    "ProbabilisticSharpe",
    "ReliabilityBins",
    "RunComparison",
    "ScalingFit",
    "ScalingLawBootstrap",
    "ScalingResults",
    "ScalingRow",
    "SearchCompute",
    "SearchTrials",
    "SharpeView",
    "SizeTrend",
    "SplitScores",
    "SymbolRow",
    "TierComparison",
    "TierInfo",
    "TierLoss",
    "TierResults",
    "TransferSettings",
    "Winner",
    "bootstrap_joint_law",
    "bootstrap_scaling_law",
    "cell_key",
    "corrected_family",
    "cross_budget_cell",
    "cross_budget_seed",
    "crowned_trial",
    "deflated_sharpe_ratio",
    "estimate_seconds",
    "evaluate_baselines",
    "evaluate_seed",
    "evaluation_key",
    "evaluation_seeds",
    "experiment_rows",
    "holm_rejections",
    "horizon_results",
    "identification_problem",
    "input_key",
    "json_safe",
    "matrix",
    "minimum_detectable_effect",
    "null_reference",
    "paired_run_differences",
    "plan_pairs",
    "power_table",
    "probabilistic_sharpe",
    "probability_of_backtest_overfitting",
    "projected_mde",
    "scaling_results",
    "sharpe_ratio",
    "size_trend",
    "strategy_returns",
    "tier_results",
    "winner_of",
    "z_sum",
]
