"""From a study's finished runs to its answer: the rows of `experiment_results.csv`
and the content of `scaling.json` (`finscale.analysis.scaling_json`'s types).

Pure computation on records already loaded (final-evaluation runs, baselines,
cross-budget cells); `finscale.scale` reads them from a run directory and
writes what this returns. Every figure compared across budgets carries an
interval: across seeds (Student t) and over test dates (a block bootstrap
whose index draws are shared by every model of a horizon, so comparisons are
paired).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from finscale.analysis.baselines import BaselineDetails, BaselineResult
from finscale.analysis.bayes import bayes_check, horizon_bayes_log_loss, pooled_label_probabilities
from finscale.analysis.bootstrap import IMPROVES, METRICS, sample_log_loss
from finscale.analysis.cross_budget import cross_budget_seed, matrix
from finscale.analysis.data_scaling import joint_fit, symbol_rows
from finscale.analysis.economics import SharpeView, economic_view, no_dsr
from finscale.analysis.family import corrected_family
from finscale.analysis.folds import (
    FoldDifference,
    FoldLoss,
    Horizon,
    by_fold,
    fold_agreement,
    loss_summary,
)
from finscale.analysis.long_short import panel_long_short
from finscale.analysis.overfitting import (
    PBOSummary,
    search_pbo,
)
from finscale.analysis.records import CrossBudgetCell, EvaluationRun, SearchTrials, targets_text
from finscale.analysis.resampling import resampled_means
from finscale.analysis.run_calibration import calibration_of_runs
from finscale.analysis.scaling import bootstrap_scaling_law, identification
from finscale.analysis.scaling_json import (
    BaselineComparison,
    BaselineSummary,
    BudgetStep,
    FoldRow,
    HorizonFit,
    HorizonResult,
    LawPoints,
    ScalingResults,
    ScalingRow,
    step_noise,
)
from finscale.analysis.sharpe import (
    ProbabilisticSharpe,
)
from finscale.analysis.size_trend import SizeTrend, size_trend
from finscale.analysis.tiers import tier_results
from finscale.config import EvaluationConfig, ScaleConfig, StudyConfig
from finscale.errors import InputError
from finscale.units import format_budget

# Scalar metrics of a record's val/test metrics, as CSV columns.
METRIC_NAMES = (*METRICS, "predicted_positive_rate", "positive_rate", "n_samples")
# Fewer distinct parameter counts than this leave E, A and alpha unidentified.
MIN_FIT_BUDGETS = 3


def experiment_rows(evaluations: Mapping[tuple[int, int], Sequence[EvaluationRun]]) -> pd.DataFrame:
    """One row per budget x horizon x data fraction x fold x seed; `evaluations` is keyed
    by (budget, horizon). `fold` is None (an empty CSV cell) under holdout;
    `train_samples` is the run's training-sample count D."""
    rows = []
    for (budget, horizon), runs in sorted(evaluations.items(), key=lambda kv: kv[0][::-1]):
        for r in runs:
            arch, params = r.winner.architecture, r.winner.params
            row = {
                "tier": r.tier,
                "budget": budget,
                "horizon": horizon,
                "seed": r.seed,
                "d_model": arch["d_model"],
                "n_layers": arch["n_layers"],
                "n_heads": arch["n_heads"],
                "d_ff": arch["d_ff"],
                "param_count": arch["param_count"],
                "micro_batch": r.micro_batch,
                "accumulation": r.accumulation_steps,
                "epochs": r.epochs_run,
                "fold": r.fold,
                "data_fraction": r.data_fraction,
                "train_samples": r.n_train,
                "best_epoch": r.best_epoch,
                "arch_index": arch["index"],
                "hpo_trial": r.winner.trial,
                **{name: params[name] for name in sorted(params)},
                "n_train": r.n_train,
                "samples_per_param": r.samples_per_param,
                "train_seconds": r.train_seconds,
                "device": r.device,
                "dtype": r.dtype,
            }
            for split, metrics in (("test", r.test_metrics), ("val", r.val_metrics)):
                for name in METRIC_NAMES:
                    row[f"{split}_{name}"] = metrics[name]
            rows.append(row)
    return pd.DataFrame(rows)


def baseline_results(record: Mapping[str, Any]) -> dict[str, BaselineResult]:
    """The baselines of a stored baselines record (its other keys: key, horizon, fold)."""
    return {
        name: BaselineResult.from_dict(value)
        for name, value in record.items()
        if isinstance(value, dict) and "predictions" in value
    }


def _baseline_predictions(
    h: Horizon, baselines: Sequence[Mapping[str, Any] | None]
) -> tuple[dict[str, BaselineSummary], dict[str, np.ndarray]]:
    """Each stored baseline's summary, and its (1, n_test) pooled test predictions.

    `baselines` holds one stored record per fold, in fold order (one under
    holdout); a baseline missing from any fold is left out.
    """
    records = [baseline_results(r) for r in baselines if isinstance(r, dict)]
    if len(records) != len(baselines) or not records:
        return {}, {}
    names = [name for name in records[0] if all(name in r for r in records)]
    summaries: dict[str, BaselineSummary] = {}
    preds: dict[str, np.ndarray] = {}
    for name in names:
        p = np.concatenate([np.array(r[name].predictions["test"], dtype=float) for r in records])
        if p.shape[0] != h.n_test:
            raise InputError(f"{h.what}: baseline {name} was scored on other test dates", h.what)
        preds[name] = p[None, :]
        details = [r[name].details for r in records]
        folds = None
        if h.walk_forward:
            folds = tuple(
                FoldLoss(fold=fold, log_loss=loss_summary(sample, preds[name][:, mask]))
                for fold, mask, sample in zip(h.fold_numbers, h.masks, h.per_fold, strict=True)
            )
        summaries[name] = BaselineSummary(
            metrics=h.summarize(preds[name]),
            details=details[0] if len(details) == 1 else BaselineDetails(folds=tuple(details)),
            folds=folds,
        )
    return summaries, preds


def _fold_rows(
    h: Horizon, budget: int, baseline_preds: Mapping[str, np.ndarray]
) -> tuple[FoldRow, ...]:
    """A budget's test log loss on each fold, and its difference to each baseline there."""
    rows = []
    preds = h.preds[budget]
    for span, mask, sample in zip(h.fold_spans, h.masks, h.per_fold, strict=False):
        vs = {
            name: FoldDifference.from_attributes(
                sample.difference(p[:, mask], preds[:, mask], "log_loss"), fold=None
            )
            for name, p in baseline_preds.items()
        }
        rows.append(
            FoldRow.from_attributes(
                span,
                n_test=int(mask.sum()),
                log_loss=loss_summary(sample, preds[:, mask]),
                vs_baselines=vs,
            )
        )
    return tuple(rows)


def _comparison(h: Horizon, baseline: np.ndarray, preds: np.ndarray) -> BaselineComparison:
    """The budget's predictions `preds` against a baseline's on the pooled test dates."""
    log_loss = h.difference(baseline, preds, "log_loss")
    per_fold = h.fold_differences(baseline, preds) if h.walk_forward else None
    return BaselineComparison(
        log_loss=log_loss,
        roc_auc=h.difference(baseline, preds, "roc_auc"),
        beats=log_loss.verdict == IMPROVES,
        folds_agree=None if per_fold is None else fold_agreement(per_fold),
    )


def _scaling_row(
    h: Horizon,
    budget: int,
    runs: Sequence[EvaluationRun],
    baseline_preds: Mapping[str, np.ndarray],
    scale: ScaleConfig,
    search: SearchTrials | None,
    evaluation: EvaluationConfig,
) -> ScalingRow:
    winner = runs[0].winner
    # Under walk-forward each fold trains on its own history: the row gives the mean.
    first_of_fold = [group[0] for group in by_fold(runs).values()]
    n_train = round(float(np.mean([r.n_train for r in first_of_fold])))
    samples_per_param = n_train / winner.param_count
    long_short = None
    if h.panel:
        # A panel is judged by its long-short portfolio, not one series' long/flat signal.
        reason = "a panel's illustration is its long-short portfolio (`long_short`)"
        sharpe, dsr = SharpeView.not_shown(reason), no_dsr(reason)
        psr = ProbabilisticSharpe.not_known(reason)
        logistic = baseline_preds.get("logistic")
        long_short = panel_long_short(
            h,
            runs,
            None if logistic is None else logistic[0],
            search,
            evaluation.cost_bps,
            evaluation.long_short_quantile,
        )
    else:
        sharpe, dsr, psr = economic_view(
            runs, search, h.horizon, evaluation.cost_bps, h.pooled.indices, h.level
        )
    # The winner's budget, study, hpo_val_log_loss, architecture, param_count and params.
    return ScalingRow.from_attributes(
        winner,
        budget_label=format_budget(budget),
        hpo_trial=winner.trial,
        n_train=n_train,
        samples_per_param=samples_per_param,
        data_limited=samples_per_param < scale.min_samples_per_param,
        seeds=len(by_fold(runs)[runs[0].fold]),
        epochs_run=tuple(r.epochs_run for r in runs),
        metrics=h.summarize(h.preds[budget]),
        val_log_loss=tuple(r.val_metrics["log_loss"] for r in runs),
        vs_baselines={
            name: _comparison(h, p, h.preds[budget]) for name, p in baseline_preds.items()
        },
        calibration=calibration_of_runs(runs),
        folds=_fold_rows(h, budget, baseline_preds),
        sharpe=sharpe,
        dsr=dsr,
        psr=psr,
        long_short=long_short,
        pbo=_pbo(search, evaluation.pbo_blocks),
    )


def _pbo(search: SearchTrials | None, blocks: int) -> PBOSummary:
    """The study's probability of backtest overfitting, or why it is not known."""
    if search is None:
        reason = "the study's records hold no validation labels (made by an older version)"
        return PBOSummary(value=None, blocks=blocks, trials=0, skipped=reason)
    predictions = np.array(list(search.predictions.values()), dtype=float)
    return search_pbo(np.array(search.labels), predictions, blocks, np.array(search.dates))


def _steps(
    h: Horizon, evaluations: Mapping[int, Sequence[EvaluationRun]]
) -> tuple[BudgetStep, ...]:
    """The verdict of each step from one budget to the next larger one."""
    steps = []
    for small, large in itertools.pairwise(h.budgets):
        diff = h.difference(h.preds[small], h.preds[large], "log_loss")
        per_fold = h.fold_differences(h.preds[small], h.preds[large]) if h.walk_forward else None
        steps.append(
            BudgetStep(
                from_budget=small,
                to_budget=large,
                from_params=evaluations[small][0].winner.param_count,
                to_params=evaluations[large][0].winner.param_count,
                log_loss=diff,
                verdict=diff.verdict,
                mde=diff.mde,
                per_fold=per_fold,
                folds_agree=None if per_fold is None else fold_agreement(per_fold),
            )
        )
    return tuple(steps)


def _size_trend(h: Horizon, evaluations: Mapping[int, Sequence[EvaluationRun]]) -> SizeTrend | None:
    """The primary test's slope of test log loss against log10 N (None with fewer than
    two distinct parameter counts)."""
    counts = [evaluations[b][0].winner.param_count for b in h.budgets]
    if len(set(counts)) < 2:
        return None
    return size_trend(
        h.y_test,
        [h.preds[b] for b in h.budgets],
        counts,
        h.pooled.indices,
        h.horizon,
        h.level,
    )


def _fit(h: Horizon, scale: ScaleConfig, noise: float | None) -> HorizonFit:
    """The scaling law L(N) fitted to every seed's pooled test log loss, with its intervals
    and whether the runs identify it (`noise`: the standard error of a budget step,
    nats, which tells flat losses)."""
    per_sample = {b: sample_log_loss(h.y_test, h.preds[b]) for b in h.budgets}
    param_counts = {r.winner.budget: r.winner.param_count for r in h.runs}
    n_params = np.concatenate(
        [np.full(len(per_sample[b]), param_counts[b], dtype=float) for b in h.budgets]
    )
    losses = np.concatenate([per_sample[b].mean(axis=1) for b in h.budgets])
    points = LawPoints(n_params=tuple(n_params.tolist()), test_log_loss=tuple(losses.tolist()))
    distinct = len(set(n_params.tolist()))
    if distinct < MIN_FIT_BUDGETS:
        return HorizonFit(
            skipped=f"the law has 3 parameters and needs at least {MIN_FIT_BUDGETS} distinct "
            f"parameter counts; this horizon has {distinct}",
            points=points,
        )
    # Each date resample of the comparisons rescored for every run, so the law's
    # intervals carry the same test-date noise as the verdicts.
    stacked = np.concatenate([per_sample[b] for b in h.budgets])
    law = bootstrap_scaling_law(
        n_params,
        losses,
        n_resamples=scale.bootstrap_resamples,
        seed=0,
        level=h.level,
        resampled_losses=resampled_means(stacked, h.pooled.indices),
    )
    judged = identification(law, n_params, losses, noise)
    return HorizonFit(law=law, points=points, identified=judged.identified, why=judged.why)


def horizon_results(
    horizon: int,
    evaluations: Mapping[int, Sequence[EvaluationRun]],
    baselines: Mapping[str, Any] | Sequence[Mapping[str, Any] | None] | None,
    cross_cells: Mapping[tuple[int, int], float],
    scale: ScaleConfig,
    threshold: float,
    searches: Mapping[int, SearchTrials | None] | None = None,
    evaluation: EvaluationConfig | None = None,
    data_runs: Mapping[int, Mapping[float, Sequence[EvaluationRun]]] | None = None,
    *,
    cross_seed: int,
) -> HorizonResult:
    """Everything the report says about one horizon: each budget's row (with its
    search's PBO and its economic illustration), the baselines, the budget steps,
    the scaling-law fit, the cross-budget matrix, and where the baselines records
    hold the test rows' true label probabilities (a planted market), their Bayes log
    loss with the budgets and the law's E set against it.

    `evaluations` maps each budget to its runs (fold by fold, the evaluation seeds in
    order within a fold); `baselines` is the stored baselines record of the horizon,
    or one per fold in fold order; `cross_cells` maps (values_from,
    architecture_of) to the validation log loss of the cell trained with `cross_seed`
    (`cross_budget_seed`), whose diagonal is each winner's own run of that seed;
    `searches` maps each budget to what its study's trials predicted on validation;
    `data_runs` maps each budget to its data-scaling runs by data fraction (< 1), for
    the joint law.
    """
    h = Horizon(horizon, evaluations, scale, threshold)
    steps = _steps(h, evaluations)
    records = baselines if isinstance(baselines, list | tuple) else [baselines]
    baseline_out, baseline_preds = _baseline_predictions(h, records)
    searches = searches or {}
    evaluation = evaluation or EvaluationConfig()
    rows = [
        _scaling_row(h, b, evaluations[b], baseline_preds, scale, searches.get(b), evaluation)
        for b in h.budgets
    ]
    cross = None
    if cross_cells:
        cells = dict(cross_cells)
        for b in h.budgets:  # the diagonal: the winner itself, its run of the cells' seed
            cells.setdefault((b, b), _own_cell(evaluations[b], cross_seed))
        cross = matrix(h.budgets, cells, cross_seed)
    fit = _fit(h, scale, step_noise(steps))
    bayes = horizon_bayes_log_loss(pooled_label_probabilities(records, h.n_test, h.what))
    return HorizonResult(
        horizon_days=horizon,
        n_test=h.n_test,
        test_first_date=min(h.test_dates),
        test_last_date=max(h.test_dates),
        scheme="walk_forward" if h.walk_forward else "holdout",
        folds=tuple(h.fold_spans),
        block_days=h.block_days,
        fold_block_days=tuple(h.fold_block_days),
        block_rule="config" if scale.block_days else "politis_white",
        bootstrap_resamples=scale.bootstrap_resamples,
        budgets=tuple(rows),
        baselines=baseline_out,
        steps=steps,
        size_trend=_size_trend(h, evaluations),
        fit=fit,
        joint_fit=joint_fit(h, evaluations, data_runs or {}, scale),
        symbols=symbol_rows(h, baseline_preds, scale, threshold),
        cross_budget=cross,
        bayes_log_loss=bayes,
        bayes_check=bayes_check(bayes, rows, fit.law),
    )


def _own_cell(runs: Sequence[EvaluationRun], seed: int) -> float:
    """The diagonal cell of a budget: the validation log loss of its final-evaluation
    run with `seed` (on the first fold under walk-forward); NaN where none has it."""
    first_fold = runs[0].fold
    for r in runs:
        if r.fold == first_fold and r.seed == seed:
            return r.val_metrics["log_loss"]
    return math.nan


def data_limited_warnings(horizon: int, rows: Sequence[ScalingRow], threshold: float) -> list[str]:
    """One line per budget with fewer training samples per parameter than `threshold`."""
    return [
        f"h={horizon}, budget {row.budget_label}: {row.samples_per_param:.3g} training "
        f"samples per parameter (< {threshold:g}): a data-limited regime; a flat or rising "
        "curve here says more about the data than about model size"
        for row in rows
        if row.data_limited
    ]


def scaling_results(
    study: str,
    config: Mapping[str, Any],
    evaluations: Mapping[tuple[int, int], Sequence[EvaluationRun]],
    baselines: Mapping[int, Mapping[str, Any] | None],
    cells: Mapping[int, Sequence[CrossBudgetCell]],
    searches: Mapping[tuple[int, int], SearchTrials | None] | None = None,
    data_runs: Mapping[tuple[int, int], Mapping[float, Sequence[EvaluationRun]]] | None = None,
    tier_runs: Mapping[str, Mapping[tuple[int, int], Sequence[EvaluationRun]]] | None = None,
    n_features: Mapping[str, int] | None = None,
) -> ScalingResults:
    """The content of `scaling.json`, but for what the run directory adds (each
    search's cost, the transfer settings, a compared run).

    `config` is the study config as stored (a `StudyConfig` dump); `evaluations`
    maps (budget, horizon) to its runs, the evaluation seeds in order; `baselines` and
    `cells` map each horizon to its stored baselines record and cross-budget cells
    (those of another seed than `cross_budget_seed`'s, left by an older version, are
    left out: the matrix is of one seed, that of its diagonal); `searches`
    maps (budget, horizon) to its study's trials' validation predictions, and
    `data_runs` to its data-scaling runs by fraction. In a study of several feature
    tiers (`scale.tiers`), `tier_runs` maps each tier besides the data section's to
    its runs as `evaluations` does, and `n_features` every tier to its feature count.
    """
    study_config = StudyConfig(**config)
    scale = study_config.scale
    cross_seed = cross_budget_seed(study_config)
    horizons = {}
    warnings = []
    for horizon in scale.horizons:
        by_budget = {b: runs for (b, h), runs in evaluations.items() if h == horizon}
        cross = {
            (c.values_from, c.architecture_of): c.val_log_loss
            for c in cells.get(horizon, ())
            if c.values_from != c.architecture_of and c.seed == cross_seed
        }
        result = horizon_results(
            horizon,
            by_budget,
            baselines.get(horizon),
            cross,
            scale,
            study_config.train.decision_threshold,
            {b: s for (b, h), s in (searches or {}).items() if h == horizon},
            study_config.evaluation,
            {b: runs for (b, h), runs in (data_runs or {}).items() if h == horizon},
            cross_seed=cross_seed,
        )
        horizons[str(horizon)] = result
        warnings += data_limited_warnings(horizon, result.budgets, scale.min_samples_per_param)
    primary = scale.horizons[0]
    tiers = None
    if len(study_config.tiers) > 1:
        runs = {**(tier_runs or {}), study_config.data.tier: evaluations}
        tiers = tier_results(
            {t: runs[t] for t in study_config.tiers},
            n_features or {},
            scale,
            study_config.train.decision_threshold,
        )
    horizons, family, tiers = corrected_family(horizons, primary, scale.confidence_level, tiers)
    return ScalingResults(
        study=study,
        tier=study_config.data.tier,
        target=targets_text(study_config, evaluations),
        confidence_level=scale.confidence_level,
        seeds=scale.seeds,
        config=dict(config),
        horizons=horizons,
        warnings=tuple(warnings),
        null_control=study_config.data.null_control,
        label_mode=study_config.data.label_mode,
        primary=horizons[str(primary)].size_trend,
        family=family,
        tiers=tiers,
    )
