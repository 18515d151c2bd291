"""The summary of one study: what a researcher reads after a search, as JSON and markdown.

Trial records answer "what happened in trial 17"; the summary answers "what
did the search find": the best trial and how it classifies, how the
validation log loss spreads, how it moves with each architecture dimension
and training param, and which dimension values were barely tried. It is
derived from the records (and importances from the storage) only, so it can be
re-created at any time.

Duplicates (trials that reused a near-duplicate's value instead of training)
are left out of every statistic: they repeat a value already counted and would
weight that configuration twice. They still appear in the counts, the
coverage and the trials table.

This module holds the summary's data (`summarize`, summary.json);
`summary_document` turns it into the blocks of summary.md.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState

from finscale.atomic import write_json_atomic, write_text_atomic
from finscale.execution import (
    BUDGET_ATTR,
    DIMENSION_VALUES_ATTR,
    DUPLICATE_ATTR,
    EXCLUDED_ATTR,
    GRID_HASH_ATTR,
    GRID_SIZE_ATTR,
    HORIZON_ATTR,
    STUDY_NAME_ATTR,
    SURPLUS_ATTR,
    TIER_ATTR,
    TRIALS_ATTR,
)
from finscale.hpo.coverage import coverage
from finscale.hpo.finalists import attrs_of_records, crown
from finscale.hpo.space import DIMENSIONS, TRAINING_PARAMS
from finscale.hpo.summary_document import sensitivity_rank, summary_markdown
from finscale.hpo.trial_records import best_trial, state_counts

SUMMARY_VERSION = 1
SUMMARY_JSON = "summary.json"
SUMMARY_MD = "summary.md"
# Below this many points a rank correlation says nothing.
MIN_SPEARMAN_POINTS = 3
BEST_METRICS = (
    "precision",
    "recall",
    "f1",
    "roc_auc",
    "prediction_range",
    "accuracy",
    "positive_rate",
    "n_samples",
)
# The counts of summary.json: a summary is made of records, which are all finished.
SUMMARY_COUNT_KEYS = ("complete", "pruned", "failed", "duplicates", "finished")
TRIAL_COLUMNS = (
    "number",
    "state",
    "value",
    *DIMENSIONS,
    "param_count",
    *TRAINING_PARAMS,
    "epochs_run",
    "duration_seconds",
    "duplicate_of",
    "forced_extreme",
    "failure_reason",
)


def param_importances(study: optuna.Study) -> dict[str, float] | None:
    """Optuna's param importances (normalised to sum 1) over the complete,
    non-duplicate trials of `study`, most important first; None when fewer than
    two such trials exist, no param varied among them, or the evaluator fails.
    Params that never varied are left out (no importance, not zero).

    Optuna 5's default evaluator is PED-ANOVA (numpy only, no scikit-learn);
    it measures how much each param's distribution among the top 10% of trials
    differs from its distribution among all of them.
    """
    trials = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if DUPLICATE_ATTR not in t.user_attrs and not t.user_attrs.get(SURPLUS_ATTR)
    ]
    if len(trials) < 2:
        return None
    # A param that never varied has no importance to measure, yet PED-ANOVA gives
    # it one (its kernel bandwidth differs between the top trials and all).
    names = sorted({name for t in trials for name in t.params})
    varied = [name for name in names if len({repr(t.params.get(name)) for t in trials}) > 1]
    if not varied:
        return None
    try:
        # A copy in memory, so duplicates do not enter the evaluation and the
        # study's own storage is only read.
        copy = optuna.create_study(directions=study.directions)
        copy.add_trials(trials)
        with warnings.catch_warnings():
            # Optuna warns on small studies; the caller asked for a best effort.
            warnings.simplefilter("ignore")
            importances = optuna.importance.get_param_importances(copy, params=varied)
    except Exception:  # an evaluator's failure must not fail the summary
        return None
    return {name: float(value) for name, value in importances.items()}


# ---------------------------------------------------------------- the summary dict


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _table_value(record: dict[str, Any]) -> float | None:
    """A complete trial's value, or a pruned trial's last validation loss."""
    if record.get("state") == "COMPLETE":
        return _finite(record.get("value"))
    if record.get("state") == "PRUNED":
        return _finite(record.get("last_value"))
    return None


def _scored(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Complete, non-duplicate records with a finite value: the trials statistics use."""
    return [
        r
        for r in records
        if r.get("state") == "COMPLETE"
        and r.get("duplicate_of") is None
        and _finite(r.get("value")) is not None
    ]


def _architecture_value(record: dict[str, Any], name: str) -> Any:
    return (record.get("architecture") or {}).get(name)


def _trial_row(record: dict[str, Any]) -> dict[str, Any]:
    params = record.get("params") or {}
    return {
        "number": record["number"],
        "state": record.get("state"),
        "value": _table_value(record),
        **{name: _architecture_value(record, name) for name in (*DIMENSIONS, "param_count")},
        **{name: params.get(name) for name in TRAINING_PARAMS},
        "epochs_run": record.get("epochs_run"),
        "duration_seconds": record.get("duration_seconds"),
        "duplicate_of": record.get("duplicate_of"),
        "forced_extreme": record.get("forced_extreme"),
        "failure_reason": record.get("failure_reason"),
    }


def _by_dimension(
    scored: list[dict[str, Any]], name: str, dimension_values: list[str]
) -> dict[str, dict[str, Any]]:
    table = {}
    for value in dimension_values:
        group = [r for r in scored if str(_architecture_value(r, name)) == value]
        losses = [float(r["value"]) for r in group]
        best = best_trial(group)
        table[value] = {
            "complete": len(group),
            "best_value": best["value"] if best else None,
            "best_trial": best["number"] if best else None,
            "mean_value": float(np.mean(losses)) if losses else None,
            "median_value": float(np.median(losses)) if losses else None,
        }
    return table


def _spearman(xs: list[float], ys: list[float]) -> tuple[float | None, float | None]:
    """(rho, p-value), or (None, None) when too few points or an input is constant."""
    from scipy.stats import spearmanr

    if len(xs) < MIN_SPEARMAN_POINTS or len(set(xs)) < 2 or len(set(ys)) < 2:
        return None, None
    result = spearmanr(xs, ys)
    return _finite(result.statistic), _finite(result.pvalue)


def _param_value(record: dict[str, Any], name: str) -> Any:
    if name == "param_count":
        return _architecture_value(record, name)
    return (record.get("params") or {}).get(name)


def _sensitivity(
    scored: list[dict[str, Any]],
    records: list[dict[str, Any]],
    importances: dict[str, float] | None,
) -> dict[str, dict[str, Any]]:
    names = {name for r in records for name in (r.get("params") or {})} | {"param_count"}
    table = {}
    for name in sorted(names, key=sensitivity_rank):
        pairs = [
            (float(x), float(r["value"]))
            for r in scored
            if (x := _param_value(r, name)) is not None
        ]
        rho, p_value = _spearman([x for x, _ in pairs], [y for _, y in pairs])
        table[name] = {
            "n": len(pairs),
            "spearman": rho,
            "p_value": p_value,
            "importance": (importances or {}).get(name),
        }
    return table


def _distribution(scored: list[dict[str, Any]]) -> dict[str, Any]:
    losses = np.array([float(r["value"]) for r in scored])
    if losses.size == 0:
        return {"n": 0, **dict.fromkeys(("min", "q1", "median", "q3", "max", "mean", "std"))}
    q1, median, q3 = np.percentile(losses, [25, 50, 75])
    return {
        "n": int(losses.size),
        "min": float(losses.min()),
        "q1": float(q1),
        "median": float(median),
        "q3": float(q3),
        "max": float(losses.max()),
        "mean": float(losses.mean()),
        # Sample std: these trials are a sample of the search space.
        "std": float(losses.std(ddof=1)) if losses.size > 1 else None,
    }


def _best(scored: list[dict[str, Any]], attrs: dict[str, Any]) -> dict[str, Any] | None:
    """The crowned trial (`finalists.crown`): `value` is its seed mean over `seeds` seeds
    where the study ran finalists, `trial_value` its own trial's."""
    crowning = crown(scored, attrs)
    best = crowning.trial
    if best is None or crowning.mean is None:
        return None
    metrics = best.get("val_metrics") or {}
    return {
        "number": best["number"],
        "value": crowning.mean,
        "trial_value": float(best["value"]),
        "seeds": crowning.seeds.get(best["number"], 1),
        "crowned_by": "finalists" if crowning.by_finalists else "best value",
        "params": best.get("params"),
        "architecture": best.get("architecture"),
        "forced_extreme": best.get("forced_extreme"),
        "confusion_matrix": metrics.get("confusion_matrix") or best.get("confusion_matrix"),
        **{
            name: (int(metrics[name]) if name == "n_samples" else _finite(metrics[name]))
            if metrics.get(name) is not None
            else None
            for name in BEST_METRICS
        },
    }


def summarize(
    study_info: dict[str, Any],
    records: list[dict[str, Any]],
    importances: dict[str, float] | None,
) -> dict[str, Any]:
    """The summary of a study as a JSON-serialisable dict (no NaN or inf).

    `study_info` is the content of RUN_DIR/study.json, `records` every trial
    record of the study (any state), `importances` from `param_importances`.
    Values are validation log loss. Keys: summary_version, study, counts,
    best, distribution, by_d_model, by_n_layers, by_n_heads, sensitivity,
    coverage, trials.

    Dimension values for coverage and the by-dimension tables are those the
    records' architectures hold, plus ``study_info["dimension_values"]`` where
    the study file carries it (then values never tried show up with zeros).
    """
    records = sorted(records, key=lambda r: r["number"])
    scored = _scored(records)
    cov = coverage(records, study_info.get(DIMENSION_VALUES_ATTR) or {})
    counts = state_counts(records)
    summary: dict[str, Any] = {
        "summary_version": SUMMARY_VERSION,
        "study": {
            "name": study_info.get(STUDY_NAME_ATTR),
            "budget": study_info.get(BUDGET_ATTR),
            "tier": study_info.get(TIER_ATTR),
            "horizon_days": study_info.get(HORIZON_ATTR),
            "grid_hash": study_info.get(GRID_HASH_ATTR),
            "grid_size": study_info.get(GRID_SIZE_ATTR),
            "excluded_archs": study_info.get(EXCLUDED_ATTR),
            "trials_target": study_info.get(TRIALS_ATTR),
        },
        "counts": {key: counts[key] for key in SUMMARY_COUNT_KEYS},
        "best": _best(scored, attrs_of_records(study_info, records)),
        "distribution": _distribution(scored),
    }
    for name in DIMENSIONS:
        summary[f"by_{name}"] = _by_dimension(scored, name, list(cov[name]))
    summary["sensitivity"] = _sensitivity(scored, records, importances)
    summary["coverage"] = cov
    summary["trials"] = [_trial_row(r) for r in records]
    return summary


def write_summary(run_dir: Path, summary: dict[str, Any]) -> tuple[Path, Path]:
    """Write RUN_DIR/summary.json and RUN_DIR/summary.md atomically; returns their paths."""
    run_dir = Path(run_dir)
    json_path = write_json_atomic(run_dir / SUMMARY_JSON, summary)
    md_path = write_text_atomic(run_dir / SUMMARY_MD, summary_markdown(summary))
    return json_path, md_path
