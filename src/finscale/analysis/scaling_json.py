"""The content of `scaling.json` as types: a study's results (`ScalingResults`), each
horizon's (`HorizonResult`), each budget's row (`ScalingRow`) and their parts.

`finscale.analysis.results` computes them from a study's finished runs,
`finscale.scale` adds what the run directory knows (each search's cost, the
transfer settings, a compared run) and writes `to_dict()`; the report reads them
back with `from_dict`. The keys are the ones the file has always had.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from finscale.analysis.baselines import BaselineDetails
from finscale.analysis.bayes import BayesCheck
from finscale.analysis.bootstrap import MetricSummary, PairedDifference
from finscale.analysis.calibration import ReliabilityBins, SplitScores
from finscale.analysis.cross_budget import CrossBudgetMatrix
from finscale.analysis.data_scaling import JointHorizonFit, SymbolRow
from finscale.analysis.economics import SharpeView
from finscale.analysis.folds import (
    FoldAgreement,
    FoldDifference,
    FoldLoss,
    FoldSpan,
    LossSummary,
)
from finscale.analysis.long_short import LongShortView
from finscale.analysis.overfitting import (
    PBOSummary,
)
from finscale.analysis.scaling import Identification, ScalingLawBootstrap, identification
from finscale.analysis.serial import Record, if_key, mapping_of, stored, tuple_of
from finscale.analysis.sharpe import (
    DeflatedSharpe,
    ProbabilisticSharpe,
)
from finscale.analysis.size_trend import SizeTrend
from finscale.analysis.tiers import TierResults

_METRICS = mapping_of(MetricSummary.from_dict)
_DIFFERENCE = PairedDifference.from_dict
_FOLD_DIFFERENCES = tuple_of(FoldDifference.from_dict)


@dataclass(frozen=True, kw_only=True)
class BaselineComparison(Record):
    """A budget's transformer against one baseline on the same resampled test dates
    (transformer minus baseline): log loss and ROC AUC, whether it `beats` the
    baseline (its log-loss interval wholly below zero), and under walk-forward in how
    many folds (`folds_agree`)."""

    log_loss: PairedDifference = stored(parse=_DIFFERENCE)
    roc_auc: PairedDifference = stored(parse=_DIFFERENCE)
    beats: bool
    folds_agree: FoldAgreement | None = stored(omit_none=True, parse=FoldAgreement.from_dict)


@dataclass(frozen=True, kw_only=True)
class FoldRow(Record):
    """A budget on one walk-forward fold: its test dates, its test log loss there and
    its difference to each baseline on them."""

    fold: int
    test_start: str
    test_end: str
    n_test: int
    log_loss: LossSummary = stored(parse=LossSummary.from_dict)
    vs_baselines: Mapping[str, FoldDifference] = stored(parse=mapping_of(FoldDifference.from_dict))


@dataclass(frozen=True, kw_only=True)
class CalibrationSummary(Record):
    """Calibration of a budget's runs: each method's scores (means over seeds; the
    uncalibrated predictions' too), the `best` method by cross-fitted validation log
    loss, and reliability bins of the pooled test predictions before and after it; or,
    where no calibrator could be fitted, why (`skipped`), the uncalibrated scores and
    bins, and no best."""

    skipped: str | None = stored(omit_none=True)
    methods: Mapping[str, SplitScores] = stored(parse=mapping_of(SplitScores.from_dict))
    best: str | None
    reliability: Mapping[str, ReliabilityBins] = stored(parse=mapping_of(ReliabilityBins.from_dict))


@dataclass(frozen=True, kw_only=True)
class SearchCompute(Record):
    """What a study's search cost: its finished `trials`, those `trained` (not reusing
    a duplicate's value), their training `epochs` and `seconds`."""

    trials: int
    trained: int
    epochs: int
    seconds: float


@dataclass(frozen=True, kw_only=True)
class ScalingRow(Record):
    """What `scaling.json` says of one budget at one horizon: its winner, the
    intervals of its final runs, and its comparisons with the baselines."""

    budget: int
    budget_label: str
    study: str
    hpo_trial: int
    hpo_val_log_loss: float
    architecture: Mapping[str, Any]
    param_count: int
    params: Mapping[str, Any]
    n_train: int
    samples_per_param: float
    data_limited: bool  # fewer training samples per parameter than the study's threshold
    seeds: int
    epochs_run: tuple[int, ...] = stored("epochs")  # of each seed's run
    metrics: Mapping[str, MetricSummary] = stored(parse=_METRICS)  # by metric name
    val_log_loss: tuple[float, ...]  # of each seed's run
    vs_baselines: Mapping[str, BaselineComparison] = stored(
        parse=mapping_of(BaselineComparison.from_dict)
    )
    calibration: CalibrationSummary = stored(parse=CalibrationSummary.from_dict)
    # Walk-forward: per test fold, its test log loss and comparisons; empty under holdout.
    folds: tuple[FoldRow, ...] = stored(parse=tuple_of(FoldRow.from_dict), default=())
    # The economic illustration: the long/flat signal's test Sharpe ratio, the DSR of
    # the winner's validation Sharpe ratio (was the selected edge luck?) and the PSR of
    # the test Sharpe ratio against zero (is it above zero?; None in older files).
    sharpe: SharpeView | None = stored(parse=SharpeView.from_dict, default=None)
    dsr: DeflatedSharpe | None = stored(parse=DeflatedSharpe.from_dict, default=None)
    psr: ProbabilisticSharpe | None = stored(parse=ProbabilisticSharpe.from_dict, default=None)
    # A panel's illustration: the long-short portfolio of its symbols, the winner's and
    # the logistic baseline's (None for one target, and in a file written before it).
    long_short: LongShortView | None = stored(parse=LongShortView.from_dict, omit_none=True)
    # The probability of backtest overfitting of the budget's search (its study).
    pbo: PBOSummary | None = stored(parse=PBOSummary.from_dict, default=None)
    # What the budget's search cost, and the training values its study took from
    # another's winner (`search.transfer`, the study's record of it; None: its own).
    hpo_compute: SearchCompute | None = stored(parse=SearchCompute.from_dict, default=None)
    transfer: Mapping[str, Any] | None = None


@dataclass(frozen=True, kw_only=True)
class BaselineSummary(Record):
    """A baseline at one horizon: its metrics on the pooled test dates (one run, so only
    their test-date intervals mean anything), what it chose, and under walk-forward its
    test log loss on each fold."""

    metrics: Mapping[str, MetricSummary] = stored(parse=_METRICS)
    details: BaselineDetails = stored(parse=BaselineDetails.from_dict)
    folds: tuple[FoldLoss, ...] | None = stored(omit_none=True, parse=tuple_of(FoldLoss.from_dict))


@dataclass(frozen=True, kw_only=True)
class BudgetStep(Record):
    """The test log-loss change from one budget's winner to the next larger one's
    (nats, larger minus smaller, paired on the test dates), its verdict and minimum
    detectable effect, and under walk-forward on each fold."""

    from_budget: int
    to_budget: int
    from_params: int
    to_params: int
    log_loss: PairedDifference = stored(parse=_DIFFERENCE)
    verdict: str
    mde: float
    per_fold: tuple[FoldDifference, ...] | None = stored(omit_none=True, parse=_FOLD_DIFFERENCES)
    folds_agree: FoldAgreement | None = stored(omit_none=True, parse=FoldAgreement.from_dict)


@dataclass(frozen=True, kw_only=True)
class LawPoints(Record):
    """The runs L(N) is fitted to, one per seed and budget: parameter count and pooled
    test log loss (nats)."""

    n_params: tuple[float, ...]
    test_log_loss: tuple[float, ...]


@dataclass(frozen=True, kw_only=True)
class HorizonFit(Record):
    """`scaling.json`'s `fit` of a horizon: L(N) with its intervals (its keys stand
    among these), or why it was not fitted (`skipped`); the runs it is fitted to; and
    whether they identify it (`identified`, and `why` not in words; both None where
    skipped, and in a file written before the judgement)."""

    skipped: str | None = stored(omit_none=True)
    law: ScalingLawBootstrap | None = stored(
        flat=True, parse=if_key("fit", ScalingLawBootstrap.from_dict), default=None
    )
    points: LawPoints = stored(parse=LawPoints.from_dict)
    identified: bool | None = stored(omit_none=True)
    why: str | None = stored(omit_none=True)


def step_noise(steps: tuple[BudgetStep, ...]) -> float | None:
    """The noise of a step between budgets: the median standard error of the paired
    budget steps' test log-loss changes (nats, over test dates and seeds), or None
    without a step."""
    spreads = [s.log_loss.spread for s in steps if np.isfinite(s.log_loss.spread)]
    return float(np.median(spreads)) if spreads else None


@dataclass(frozen=True, kw_only=True)
class HorizonResult(Record):
    """Everything `scaling.json` says of one horizon: its test dates and their scheme,
    each budget's row, the baselines, the budget steps, the scaling-law fit, the joint
    law, a panel's symbols and the cross-budget matrix."""

    horizon_days: int
    n_test: int
    test_first_date: str
    test_last_date: str
    scheme: str  # "holdout" or "walk_forward"
    folds: tuple[FoldSpan, ...] = stored(parse=tuple_of(FoldSpan.from_dict), default=())
    block_days: int  # the longest of the folds' block lengths
    bootstrap_resamples: int
    # Each fold's block length (one under holdout), and how they were chosen:
    # "politis_white" (read from the data, floored at the horizon) or "config"
    # (scale.block_days). Files written before either: () and None.
    fold_block_days: tuple[int, ...] = ()
    block_rule: str | None = stored(omit_none=True)
    budgets: tuple[ScalingRow, ...] = stored(parse=tuple_of(ScalingRow.from_dict))
    baselines: Mapping[str, BaselineSummary] = stored(parse=mapping_of(BaselineSummary.from_dict))
    steps: tuple[BudgetStep, ...] = stored(parse=tuple_of(BudgetStep.from_dict))
    # The slope of test loss against log10 N (None: fewer than two parameter counts,
    # or a file written before it).
    size_trend: SizeTrend | None = stored(omit_none=True, parse=SizeTrend.from_dict)
    fit: HorizonFit = stored(parse=HorizonFit.from_dict)
    # Read back from a file written before the joint law and panels: None and none.
    joint_fit: JointHorizonFit | None = stored(parse=JointHorizonFit.from_dict, default=None)
    symbols: tuple[SymbolRow, ...] = stored(parse=tuple_of(SymbolRow.from_dict), default=())
    cross_budget: CrossBudgetMatrix | None = stored(parse=CrossBudgetMatrix.from_dict)
    # The planted-scaling control: the Bayes log loss (nats) of exactly the test rows
    # scored here (every fold's), from the labels' true probabilities; None for market
    # data and in a file written before it. The budgets and the law's E set against it
    # (`finscale.analysis.bayes`); None where it is not known.
    bayes_log_loss: float | None = None
    bayes_check: BayesCheck | None = stored(omit_none=True, parse=BayesCheck.from_dict)

    def law_identification(self) -> Identification | None:
        """Whether the runs identify L(N): the stored judgement, or for a file written
        before it, the same judgement of its stored estimates, runs and steps; None
        where the fit was skipped."""
        fit = self.fit
        if fit.law is None:
            return None
        if fit.identified is not None:
            return Identification(identified=fit.identified, why=fit.why)
        return identification(
            fit.law, fit.points.n_params, fit.points.test_log_loss, step_noise(self.steps)
        )


@dataclass(frozen=True, kw_only=True)
class TransferSettings(Record):
    """How a run's studies shared training values: `search.transfer`'s mode, the model's
    parametrization, its base shape (d_model, n_layers) and readout initialisation
    (runs written before that setting had the zero readout)."""

    mode: str
    parametrization: str
    base_shape: tuple[int, int]
    readout_init: str = "zero"


@dataclass(frozen=True, kw_only=True)
class ComparedBudget(Record):
    """A budget of another run set beside this one (`finscale report --compare`): its
    test log loss, its search's cost, its own-values margin in the cross-budget matrix
    (None without one), its training values, and the change from it to this run paired
    on the shared test dates (None where this run has no such budget)."""

    test_log_loss: MetricSummary = stored(parse=MetricSummary.from_dict)
    hpo_compute: SearchCompute | None = stored(parse=SearchCompute.from_dict)
    own_values_margin: float | None
    params: Mapping[str, Any]
    paired: PairedDifference | None = stored(parse=_DIFFERENCE)


@dataclass(frozen=True, kw_only=True)
class RunComparison(Record):
    """Another run directory's figures set beside this run's, by horizon and budget (a
    budget key is a string once read back from the file)."""

    run_dir: str
    study: str
    transfer: TransferSettings = stored(parse=TransferSettings.from_dict)
    horizons: Mapping[str, Mapping[Any, ComparedBudget]] = stored(
        parse=mapping_of(mapping_of(ComparedBudget.from_dict))
    )


@dataclass(frozen=True, kw_only=True)
class Family(Record):
    """The study's family of secondary comparisons: its `size`, the correction
    (`method`), the family-wise `level`, how many of each kind it holds (`members`)
    and how many stay detectable after the correction (`detectable`) against
    before it (`raw_detectable`)."""

    method: str
    level: float
    size: int
    members: Mapping[str, int]
    detectable: int
    raw_detectable: int


@dataclass(frozen=True, kw_only=True)
class ScalingResults(Record):
    """The content of `scaling.json`: the study, its data tier, target and label mode, the level of
    every interval, the seeds per winner, the study config as stored, each horizon's
    result (by str(horizon)), the data-limited warnings, and what the run directory
    adds: the transfer settings and a compared run."""

    study: str
    tier: str
    target: str
    confidence_level: float
    seeds: int
    config: Mapping[str, Any]
    horizons: Mapping[str, HorizonResult] = stored(parse=mapping_of(HorizonResult.from_dict))
    warnings: tuple[str, ...]
    # The config's `data.null_control` ("none", "shuffle", "random_walk"): a study on
    # data where nothing can be learned; "none" in a file written before it.
    null_control: str = "none"
    # The config's `data.label_mode` ("absolute", or "relative" to the panel's
    # equal-weight return); "absolute" in a file written before it.
    label_mode: str = "absolute"
    # The primary test (the first horizon's size trend) and the family of secondary
    # comparisons Holm corrects; None in a file written before them.
    primary: SizeTrend | None = stored(omit_none=True, parse=SizeTrend.from_dict)
    family: Family | None = stored(omit_none=True, parse=Family.from_dict)
    transfer: TransferSettings | None = stored(omit_none=True, parse=TransferSettings.from_dict)
    comparison: RunComparison | None = stored(omit_none=True, parse=RunComparison.from_dict)
    # A study on several feature tiers (`scale.tiers`): each against the next; None
    # for a study of one tier.
    tiers: TierResults | None = stored(omit_none=True, parse=TierResults.from_dict)
