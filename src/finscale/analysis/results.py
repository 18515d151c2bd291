"""From stored runs to the study's answer: `experiment_results.csv` and `scaling.json`.

Reads only what the pipeline stored (final-evaluation records, baselines,
cross-budget cells), so `finscale report` rebuilds everything without
training. Every figure compared across budgets carries an interval: across
seeds (Student t) and over test dates (a block bootstrap whose index draws are
shared by every model of a horizon, so comparisons are paired).
"""

from __future__ import annotations

import io
import itertools
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from finscale.analysis.bootstrap import (
    IMPROVES,
    METRICS,
    block_length_days,
    bootstrap_indices,
    paired_difference,
    summarize_runs,
)
from finscale.analysis.calibration import (
    METHODS,
    Calibrator,
    calibrate,
    calibration_scores,
    reliability_bins,
)
from finscale.analysis.cross_budget import matrix
from finscale.analysis.pipeline import (
    baselines_path,
    cross_budget_path,
    evaluation_path,
    read_json,
    read_scale_file,
)
from finscale.analysis.scaling import bootstrap_scaling_law
from finscale.atomic import write_json_atomic, write_text_atomic
from finscale.config import ScaleConfig
from finscale.errors import InputError
from finscale.units import format_budget

RESULTS_CSV = "experiment_results.csv"
SCALING_JSON = "scaling.json"
# Scalar metrics of a record's val/test metrics, as CSV columns.
METRIC_NAMES = (*METRICS, "predicted_positive_rate", "positive_rate", "n_samples")
COMPARED_METRICS = ("log_loss", "roc_auc")  # transformer vs baseline, each with its interval
# Fewer distinct parameter counts than this leave E, A and alpha unidentified.
MIN_FIT_BUDGETS = 3


def load_evaluations(
    run_dir: Path, studies: list[dict[str, Any]], seeds: int
) -> dict[tuple[int, int], list[dict[str, Any]]]:
    """The stored final-evaluation records of every study, seed 0 first. A study
    without all its seeds is an error that names what to run."""
    out = {}
    for study in studies:
        records = []
        for seed in range(seeds):
            record = read_json(evaluation_path(run_dir, study["study_name"], seed))
            if record is None:
                raise InputError(
                    f"study {study['study_name']} has no final evaluation of seed {seed}; "
                    "run `finscale scale` with the same options to finish it",
                    str(run_dir),
                )
            records.append(record)
        out[(study["budget"], study["horizon_days"])] = records
    return out


def experiment_rows(evaluations: dict[tuple[int, int], list[dict[str, Any]]]) -> pd.DataFrame:
    """One row per budget x horizon x seed."""
    rows = []
    for (budget, horizon), records in sorted(evaluations.items(), key=lambda kv: kv[0][::-1]):
        for r in records:
            arch = r["architecture"]
            row = {
                "tier": r["tier"],
                "budget": budget,
                "horizon": horizon,
                "seed": r["seed"],
                "d_model": arch["d_model"],
                "n_layers": arch["n_layers"],
                "n_heads": arch["n_heads"],
                "d_ff": arch["d_ff"],
                "param_count": arch["param_count"],
                "micro_batch": r["micro_batch"],
                "accumulation": r["accumulation"],
                "epochs": r["epochs"],
                "best_epoch": r["best_epoch"],
                "arch_index": arch["index"],
                "hpo_trial": r["trial"],
                **{name: r["params"][name] for name in sorted(r["params"])},
                "n_train": r["n_train"],
                "samples_per_param": r["samples_per_param"],
                "train_seconds": r["train_seconds"],
                "device": r["device"],
                "dtype": r["dtype"],
            }
            for split in ("test", "val"):
                for name in METRIC_NAMES:
                    row[f"{split}_{name}"] = r[f"{split}_metrics"][name]
            rows.append(row)
    return pd.DataFrame(rows)


def per_sample_log_loss(y: np.ndarray, preds: np.ndarray) -> np.ndarray:
    """(n_runs, n_samples) binary cross-entropy of each run's prediction of each sample,
    clipped as scikit-learn's log loss clips, so means over samples equal it."""
    p = np.clip(preds, np.finfo(float).eps, 1 - np.finfo(float).eps)
    return -(y * np.log(p) + (1 - y) * np.log1p(-p))


def _predictions(records: list[dict[str, Any]], split: str) -> np.ndarray:
    return np.array([r["predictions"][split] for r in records], dtype=float)


def _labels(records: list[dict[str, Any]], split: str, what: str) -> np.ndarray:
    labels = np.array(records[0]["labels"][split], dtype=int)
    for r in records[1:]:
        if r["labels"][split] != records[0]["labels"][split]:
            raise InputError(
                f"{what}: the stored {split} labels differ between runs of one horizon; the "
                "runs were made on different data; remove the run directory's evaluation/ "
                "folder and rerun",
                what,
            )
    return labels


def _split_arrays(record: dict[str, Any], split: str) -> tuple[np.ndarray, np.ndarray]:
    """A stored run's (labels, predictions) of one split."""
    return (
        np.array(record["labels"][split], dtype=int),
        np.array(record["predictions"][split], dtype=float),
    )


def calibration_summary(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Calibration of one budget's runs: every method fitted on each seed's validation
    predictions and scored on its test predictions, averaged over seeds; the best method
    by cross-fitted validation log loss; reliability bins of the pooled test predictions
    before and after the best method.

    When the validation split cannot fit a calibrator (a block of days without a
    positive, common with rare labels), the summary says why (`skipped`) and keeps
    the uncalibrated scores and bins instead of failing the whole report.
    """
    splits = [(_split_arrays(r, "val"), _split_arrays(r, "test")) for r in records]
    y = np.concatenate([y_test for _, (y_test, _) in splits])
    raw = np.concatenate([p_test for _, (_, p_test) in splits])
    try:
        per_seed = [
            calibrate(p_val, y_val, p_test, y_test) for (y_val, p_val), (y_test, p_test) in splits
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


def horizon_results(
    horizon: int,
    evaluations: dict[int, list[dict[str, Any]]],
    baselines: dict[str, Any] | None,
    cross_cells: dict[tuple[int, int], float],
    scale: ScaleConfig,
    threshold: float,
) -> dict[str, Any]:
    """Everything the report says about one horizon (see the module docstring)."""
    budgets = sorted(evaluations)
    what = f"h={horizon}"
    all_records = [r for b in budgets for r in evaluations[b]]
    y_test = _labels(all_records, "test", what)
    n_test = len(y_test)
    block = scale.block_days or block_length_days(n_test, horizon)
    indices = bootstrap_indices(n_test, block, scale.bootstrap_resamples, seed=0)
    level = scale.confidence_level
    preds = {b: _predictions(evaluations[b], "test") for b in budgets}

    baseline_out: dict[str, Any] = {}
    baseline_preds: dict[str, np.ndarray] = {}
    for name, result in (baselines or {}).items():
        if not isinstance(result, dict) or "predictions" not in result:
            continue
        p = np.array(result["predictions"]["test"], dtype=float)[None, :]
        if p.shape[1] != n_test:
            raise InputError(f"{what}: baseline {name} was scored on other test dates", what)
        baseline_preds[name] = p
        baseline_out[name] = {
            "metrics": summarize_runs(y_test, p, indices, threshold, level),
            "details": result.get("details", {}),
        }

    rows = []
    for b in budgets:
        records = evaluations[b]
        first = records[0]
        samples_per_param = first["samples_per_param"]
        entry = {
            "budget": b,
            "budget_label": format_budget(b),
            "study": first["study"],
            "hpo_trial": first["trial"],
            "hpo_val_log_loss": first["hpo_val_log_loss"],
            "architecture": first["architecture"],
            "param_count": first["architecture"]["param_count"],
            "params": first["params"],
            "n_train": first["n_train"],
            "samples_per_param": samples_per_param,
            "data_limited": samples_per_param < scale.min_samples_per_param,
            "seeds": len(records),
            "epochs": [r["epochs"] for r in records],
            "metrics": summarize_runs(y_test, preds[b], indices, threshold, level),
            "val_log_loss": [r["val_metrics"]["log_loss"] for r in records],
            "vs_baselines": {},
            "calibration": calibration_summary(records),
        }
        for name, p in baseline_preds.items():
            comparison = {
                metric: paired_difference(y_test, p, preds[b], indices, metric, 0, level, threshold)
                for metric in COMPARED_METRICS
            }
            comparison["beats"] = comparison["log_loss"]["verdict"] == IMPROVES
            entry["vs_baselines"][name] = comparison
        rows.append(entry)

    steps = []
    for small, large in itertools.pairwise(budgets):
        diff = paired_difference(
            y_test, preds[small], preds[large], indices, "log_loss", 0, level, threshold
        )
        steps.append(
            {
                "from_budget": small,
                "to_budget": large,
                "from_params": evaluations[small][0]["architecture"]["param_count"],
                "to_params": evaluations[large][0]["architecture"]["param_count"],
                "log_loss": diff,
                "verdict": diff["verdict"],
            }
        )

    n_params = np.array([r["architecture"]["param_count"] for r in all_records], dtype=float)
    losses = np.array([r["test_metrics"]["log_loss"] for r in all_records], dtype=float)
    if len(set(n_params.tolist())) < MIN_FIT_BUDGETS:
        fit: dict[str, Any] = {
            "skipped": f"the law has 3 parameters and needs at least {MIN_FIT_BUDGETS} distinct "
            f"parameter counts; this horizon has {len(set(n_params.tolist()))}"
        }
    else:
        # Each date resample of the comparisons rescored for every run, so the law's
        # intervals carry the same test-date noise as the verdicts.
        per_sample = np.concatenate([per_sample_log_loss(y_test, preds[b]) for b in budgets])
        fit = bootstrap_scaling_law(
            n_params,
            losses,
            n_resamples=scale.bootstrap_resamples,
            seed=0,
            level=level,
            resampled_losses=per_sample[:, indices].mean(axis=2).T,
        )
    fit["points"] = {"n_params": n_params.tolist(), "test_log_loss": losses.tolist()}

    cross = None
    if cross_cells:
        for b in budgets:  # the diagonal: the winner itself, final evaluation seed 0
            cross_cells.setdefault((b, b), evaluations[b][0]["val_metrics"]["log_loss"])
        cross = matrix(budgets, cross_cells)

    return {
        "horizon_days": horizon,
        "n_test": n_test,
        "test_first_date": all_records[0]["test_dates"][0],
        "test_last_date": all_records[0]["test_dates"][-1],
        "block_days": block,
        "bootstrap_resamples": scale.bootstrap_resamples,
        "budgets": rows,
        "baselines": baseline_out,
        "steps": steps,
        "fit": fit,
        "cross_budget": cross,
    }


def build_results(run_dir: Path) -> dict[str, Any]:
    """Write experiment_results.csv and scaling.json of a scaling study's run directory
    from what its stages stored; returns the scaling.json content."""
    from finscale.config import StudyConfig

    info = read_scale_file(run_dir)
    config = StudyConfig(**info["config"])
    scale = config.scale
    evaluations = load_evaluations(run_dir, info["studies"], scale.seeds)
    frame = experiment_rows(evaluations)
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    write_text_atomic(run_dir / RESULTS_CSV, buffer.getvalue())

    horizons = {}
    warnings = []
    for horizon in scale.horizons:
        by_budget = {b: recs for (b, h), recs in evaluations.items() if h == horizon}
        cells = {}
        for a in by_budget:
            for b in by_budget:
                cell = read_json(cross_budget_path(run_dir, horizon, a, b)) if a != b else None
                if cell is not None:
                    cells[(a, b)] = cell["val_log_loss"]
        result = horizon_results(
            horizon,
            by_budget,
            read_json(baselines_path(run_dir, horizon)),
            cells,
            scale,
            config.train.decision_threshold,
        )
        horizons[str(horizon)] = result
        for row in result["budgets"]:
            if row["data_limited"]:
                warnings.append(
                    f"h={horizon}, budget {row['budget_label']}: {row['samples_per_param']:.3g} "
                    f"training samples per parameter (< {scale.min_samples_per_param:g}): a "
                    "data-limited regime; a flat or rising curve here says more about the data "
                    "than about model size"
                )
    out = {
        "study": run_dir.name,
        "tier": config.data.tier,
        "target": config.data.target,
        "confidence_level": scale.confidence_level,
        "seeds": scale.seeds,
        "config": info["config"],
        "horizons": horizons,
        "warnings": warnings,
    }
    write_json_atomic(run_dir / SCALING_JSON, _json_safe(out))
    return out


def _json_safe(value: Any) -> Any:
    """NaN and infinities as null: strict JSON readers (browsers, jq) reject them."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return _json_safe(value.item())
    return value
