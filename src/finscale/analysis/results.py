"""From a study's finished runs to its answer: the rows of `experiment_results.csv`
and the content of `scaling.json`.

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

from finscale.analysis.bootstrap import (
    IMPROVES,
    METRICS,
    sample_log_loss,
)
from finscale.analysis.calibration import (
    METHODS,
    Calibrator,
    calibrate,
    calibration_scores,
    reliability_bins,
)
from finscale.analysis.cross_budget import matrix
from finscale.analysis.data_scaling import joint_fit, symbol_rows
from finscale.analysis.economics import economic_view
from finscale.analysis.folds import (
    FOLD_DIFFERENCE_KEYS,
    Horizon,
    by_fold,
    fold_agreement,
    loss_summary,
)
from finscale.analysis.overfitting import search_pbo
from finscale.analysis.records import CrossBudgetCell, EvaluationRun, ScalingRow, SearchTrials
from finscale.analysis.scaling import bootstrap_scaling_law
from finscale.config import EvaluationConfig, ScaleConfig, StudyConfig
from finscale.errors import InputError
from finscale.units import format_budget

# Scalar metrics of a record's val/test metrics, as CSV columns.
METRIC_NAMES = (*METRICS, "predicted_positive_rate", "positive_rate", "n_samples")
COMPARED_METRICS = ("log_loss", "roc_auc")  # transformer vs baseline, each with its interval
# Fewer distinct parameter counts than this leave E, A and alpha unidentified.
MIN_FIT_BUDGETS = 3

# Labels and predictions of one split: (n_samples,) 0/1 labels and P(label 1).
SplitArrays = tuple[np.ndarray, np.ndarray]


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


def split_arrays(run: EvaluationRun, split: str) -> SplitArrays:
    """A stored run's (labels, predictions) of one split."""
    return (
        np.array(run.labels[split], dtype=int),
        np.array(run.predictions[split], dtype=float),
    )


def calibration_summary(splits: Sequence[tuple[SplitArrays, SplitArrays]]) -> dict[str, Any]:
    """Calibration of one budget's runs, given each seed's ((y_val, p_val), (y_test,
    p_test)): every method fitted on each seed's validation predictions and scored on its
    test predictions, averaged over seeds; the best method by cross-fitted validation log
    loss; reliability bins of the pooled test predictions before and after the best method.

    When the validation split cannot fit a calibrator (a block of days without a
    positive, common with rare labels), the summary says why (`skipped`) and keeps
    the uncalibrated scores and bins instead of failing the whole report.
    """
    y = np.concatenate([y_test for _, (y_test, _) in splits])
    raw = np.concatenate([p_test for _, (_, p_test) in splits])
    try:
        per_seed = [
            calibrate(y_val, p_val, y_test, p_test) for (y_val, p_val), (y_test, p_test) in splits
        ]
    except ValueError as exc:
        scores = [calibration_scores(y_test, p_test) for _, (y_test, p_test) in splits]
        return {
            "skipped": f"no calibrator could be fitted on the validation split: {exc}",
            "methods": {
                "uncalibrated": {
                    "test": {k: float(np.mean([s[k] for s in scores])) for k in scores[0]}
                }
            },
            "best": None,
            "reliability": {"uncalibrated": reliability_bins(y, raw)},
        }
    methods: dict[str, Any] = {}
    for name in ("uncalibrated", *METHODS):
        entry: dict[str, Any] = {}
        for split in ("test", "val", "val_cv"):
            scores = [s[name][split] for s in per_seed if split in s[name]]
            if scores:
                entry[split] = {k: float(np.mean([x[k] for x in scores])) for k in scores[0]}
        methods[name] = entry
    # Chosen on validation log loss cross-fitted over blocks of days: in-sample, isotonic
    # regression always wins, and the test split is only scored.
    best = min(METHODS, key=lambda m: methods[m]["val_cv"]["log_loss"])
    # The calibrators calibrate() fitted, rebuilt from their params: not fitted twice.
    calibrated = np.concatenate(
        [
            Calibrator(best, seed_result[best]["params"]).transform(p_test)
            for seed_result, (_, (_, p_test)) in zip(per_seed, splits, strict=True)
        ]
    )
    return {
        "methods": methods,
        "best": best,
        "reliability": {
            "uncalibrated": reliability_bins(y, raw),
            best: reliability_bins(y, calibrated),
        },
    }


def calibration_of_runs(runs: Sequence[EvaluationRun]) -> dict[str, Any]:
    """`calibration_summary` of a budget's stored runs."""
    return calibration_summary([(split_arrays(r, "val"), split_arrays(r, "test")) for r in runs])


def _baseline_predictions(
    h: Horizon, baselines: Sequence[Mapping[str, Any] | None]
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Each stored baseline's summary, and its (1, n_test) pooled test predictions.

    `baselines` holds one stored record per fold, in fold order (one under
    holdout); a baseline missing from any fold is left out.
    """
    records = [r for r in baselines if isinstance(r, dict)]
    if len(records) != len(baselines) or not records:
        return {}, {}
    names = [
        name
        for name, result in records[0].items()
        if isinstance(result, dict)
        and "predictions" in result
        and all(isinstance(r.get(name), dict) and "predictions" in r[name] for r in records)
    ]
    summaries: dict[str, Any] = {}
    preds: dict[str, np.ndarray] = {}
    for name in names:
        p = np.concatenate([np.array(r[name]["predictions"]["test"], dtype=float) for r in records])
        if p.shape[0] != h.n_test:
            raise InputError(f"{h.what}: baseline {name} was scored on other test dates", h.what)
        preds[name] = p[None, :]
        details = [r[name].get("details", {}) for r in records]
        summaries[name] = {
            "metrics": h.summarize(preds[name]),
            "details": details[0] if len(details) == 1 else {"folds": details},
        }
        if h.walk_forward:
            summaries[name]["folds"] = [
                {"fold": fold, "log_loss": loss_summary(sample, preds[name][:, mask])}
                for fold, mask, sample in zip(h.fold_numbers, h.masks, h.per_fold, strict=True)
            ]
    return summaries, preds


def _fold_rows(h: Horizon, budget: int, baseline_preds: Mapping[str, np.ndarray]) -> list[dict]:
    """A budget's test log loss on each fold, and its difference to each baseline there."""
    rows = []
    preds = h.preds[budget]
    for span, mask, sample in zip(h.fold_spans, h.masks, h.per_fold, strict=False):
        vs = {}
        for name, p in baseline_preds.items():
            diff = sample.difference(p[:, mask], preds[:, mask], "log_loss")
            vs[name] = {k: diff[k] for k in FOLD_DIFFERENCE_KEYS}
        rows.append(
            {
                "fold": span["fold"],
                "test_start": span["test_start"],
                "test_end": span["test_end"],
                "n_test": int(mask.sum()),
                "log_loss": loss_summary(sample, preds[:, mask]),
                "vs_baselines": vs,
            }
        )
    return rows


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
    vs_baselines = {}
    for name, p in baseline_preds.items():
        comparison: dict[str, Any] = {
            metric: h.difference(p, h.preds[budget], metric) for metric in COMPARED_METRICS
        }
        comparison["beats"] = comparison["log_loss"]["verdict"] == IMPROVES
        if h.walk_forward:
            per_fold = h.fold_differences(p, h.preds[budget])
            comparison["folds_agree"] = fold_agreement(per_fold)
        vs_baselines[name] = comparison
    # Under walk-forward each fold trains on its own history: the row gives the mean.
    first_of_fold = [group[0] for group in by_fold(runs).values()]
    n_train = round(float(np.mean([r.n_train for r in first_of_fold])))
    samples_per_param = n_train / winner.param_count
    if h.panel:
        reason = "the illustration trades one target's series; a panel's is not in this version"
        sharpe = {"value": None, "interval": None, "skipped": reason}
        dsr = {"value": None, "trials": 0, "skipped": reason}
    else:
        sharpe, dsr = economic_view(
            runs, search, h.horizon, evaluation.cost_bps, h.pooled.indices, h.level
        )
    return ScalingRow(
        budget=budget,
        budget_label=format_budget(budget),
        study=winner.study,
        hpo_trial=winner.trial,
        hpo_val_log_loss=winner.hpo_val_log_loss,
        architecture=winner.architecture,
        param_count=winner.param_count,
        params=winner.params,
        n_train=n_train,
        samples_per_param=samples_per_param,
        data_limited=samples_per_param < scale.min_samples_per_param,
        seeds=len(by_fold(runs)[runs[0].fold]),
        epochs_run=tuple(r.epochs_run for r in runs),
        metrics=h.summarize(h.preds[budget]),
        val_log_loss=tuple(r.val_metrics["log_loss"] for r in runs),
        vs_baselines=vs_baselines,
        calibration=calibration_of_runs(runs),
        folds=tuple(_fold_rows(h, budget, baseline_preds)),
        sharpe=sharpe,
        dsr=dsr,
        pbo=_pbo(search, evaluation.pbo_blocks),
    )


def _pbo(search: SearchTrials | None, blocks: int) -> dict[str, Any]:
    """The study's probability of backtest overfitting, or why it is not known."""
    if search is None:
        reason = "the study's records hold no validation labels (made by an older version)"
        return {"value": None, "blocks": blocks, "trials": 0, "skipped": reason}
    predictions = np.array(list(search.predictions.values()), dtype=float)
    return search_pbo(np.array(search.labels), predictions, blocks, np.array(search.dates))


def _steps(h: Horizon, evaluations: Mapping[int, Sequence[EvaluationRun]]) -> list[dict]:
    """The verdict of each step from one budget to the next larger one."""
    steps = []
    for small, large in itertools.pairwise(h.budgets):
        diff = h.difference(h.preds[small], h.preds[large], "log_loss")
        step = {
            "from_budget": small,
            "to_budget": large,
            "from_params": evaluations[small][0].winner.param_count,
            "to_params": evaluations[large][0].winner.param_count,
            "log_loss": diff,
            "verdict": diff["verdict"],
            "mde": diff["mde"],
        }
        if h.walk_forward:
            step["per_fold"] = h.fold_differences(h.preds[small], h.preds[large])
            step["folds_agree"] = fold_agreement(step["per_fold"])
        steps.append(step)
    return steps


def _fit(h: Horizon, scale: ScaleConfig) -> dict[str, Any]:
    """The scaling law L(N) fitted to every seed's pooled test log loss, with its intervals."""
    per_sample = {b: sample_log_loss(h.y_test, h.preds[b]) for b in h.budgets}
    param_counts = {r.winner.budget: r.winner.param_count for r in h.runs}
    n_params = np.concatenate(
        [np.full(len(per_sample[b]), param_counts[b], dtype=float) for b in h.budgets]
    )
    losses = np.concatenate([per_sample[b].mean(axis=1) for b in h.budgets])
    distinct = len(set(n_params.tolist()))
    if distinct < MIN_FIT_BUDGETS:
        fit: dict[str, Any] = {
            "skipped": f"the law has 3 parameters and needs at least {MIN_FIT_BUDGETS} distinct "
            f"parameter counts; this horizon has {distinct}"
        }
    else:
        # Each date resample of the comparisons rescored for every run, so the law's
        # intervals carry the same test-date noise as the verdicts.
        stacked = np.concatenate([per_sample[b] for b in h.budgets])
        fit = bootstrap_scaling_law(
            n_params,
            losses,
            n_resamples=scale.bootstrap_resamples,
            seed=0,
            level=h.level,
            resampled_losses=stacked[:, h.pooled.indices].mean(axis=2).T,
        ).to_dict()
    fit["points"] = {"n_params": n_params.tolist(), "test_log_loss": losses.tolist()}
    return fit


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
) -> dict[str, Any]:
    """Everything the report says about one horizon: each budget's row (with its
    search's PBO and its economic illustration), the baselines, the budget steps,
    the scaling-law fit and the cross-budget matrix.

    `evaluations` maps each budget to its runs (fold by fold, seed 0 first within a
    fold); `baselines` is the stored baselines record of the horizon, or one per
    fold in fold order; `cross_cells` maps (values_from,
    architecture_of) to the cell's validation log loss; `searches` maps each budget
    to what its study's trials predicted on validation; `data_runs` maps each budget
    to its data-scaling runs by data fraction (< 1), for the joint law.
    """
    h = Horizon(horizon, evaluations, scale, threshold)
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
        for b in h.budgets:  # the diagonal: the winner itself, final evaluation seed 0
            cells.setdefault((b, b), evaluations[b][0].val_metrics["log_loss"])
        cross = matrix(h.budgets, cells)
    return {
        "horizon_days": horizon,
        "n_test": h.n_test,
        "test_first_date": min(h.test_dates),
        "test_last_date": max(h.test_dates),
        "scheme": "walk_forward" if h.walk_forward else "holdout",
        "folds": [{k: v for k, v in span.items() if k != "n_test"} for span in h.fold_spans],
        "block_days": h.block_days,
        "bootstrap_resamples": scale.bootstrap_resamples,
        "budgets": [row.to_dict() for row in rows],
        "baselines": baseline_out,
        "steps": _steps(h, evaluations),
        "fit": _fit(h, scale),
        "joint_fit": joint_fit(h, evaluations, data_runs or {}, scale),
        "symbols": symbol_rows(h, baseline_preds, scale, threshold),
        "cross_budget": cross,
    }


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
) -> dict[str, Any]:
    """The content of `scaling.json`.

    `config` is the study config as stored (a `StudyConfig` dump); `evaluations`
    maps (budget, horizon) to its runs, seed 0 first; `baselines` and `cells` map
    each horizon to its stored baselines record and cross-budget cells; `searches`
    maps (budget, horizon) to its study's trials' validation predictions, and
    `data_runs` to its data-scaling runs by fraction.
    """
    study_config = StudyConfig(**config)
    scale = study_config.scale
    horizons = {}
    warnings = []
    for horizon in scale.horizons:
        by_budget = {b: runs for (b, h), runs in evaluations.items() if h == horizon}
        cross = {
            (c.values_from, c.architecture_of): c.val_log_loss
            for c in cells.get(horizon, ())
            if c.values_from != c.architecture_of
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
        )
        horizons[str(horizon)] = result
        rows = [ScalingRow.from_dict(row) for row in result["budgets"]]
        warnings += data_limited_warnings(horizon, rows, scale.min_samples_per_param)
    return {
        "study": study,
        "tier": study_config.data.tier,
        "target": ", ".join(study_config.data.target_symbols),
        "confidence_level": scale.confidence_level,
        "seeds": scale.seeds,
        "config": dict(config),
        "horizons": horizons,
        "warnings": warnings,
    }


def json_safe(value: Any) -> Any:
    """NaN and infinities as null: strict JSON readers (browsers, jq) reject them."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return json_safe(value.item())
    return value
