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
from finscale.hpo.attrs import DUPLICATE_ATTR, SURPLUS_ATTR
from finscale.hpo.coverage import coverage, render_coverage
from finscale.hpo.space import DIMENSIONS, RANK_PARAMS, TRAINING_PARAMS
from finscale.units import format_budget

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
# Architecture first, then training: the order a reader scans the sensitivity table in.
SENSITIVITY_ORDER = (*RANK_PARAMS, "param_count", *TRAINING_PARAMS)
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


def _counts(records: list[dict[str, Any]]) -> dict[str, int]:
    states = [r.get("state") for r in records]
    complete = states.count("COMPLETE")
    pruned = states.count("PRUNED")
    return {
        "complete": complete,
        "pruned": pruned,
        "failed": states.count("FAIL"),
        "duplicates": sum(
            1 for r in records if r.get("state") == "COMPLETE" and r.get("duplicate_of") is not None
        ),
        "finished": complete + pruned,
    }


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
        best = min(group, key=lambda r: (r["value"], r["number"])) if group else None
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


def _sensitivity_rank(name: str) -> tuple[int, str]:
    known = name in SENSITIVITY_ORDER
    return (SENSITIVITY_ORDER.index(name) if known else len(SENSITIVITY_ORDER), name)


def _sensitivity(
    scored: list[dict[str, Any]],
    records: list[dict[str, Any]],
    importances: dict[str, float] | None,
) -> dict[str, dict[str, Any]]:
    names = {name for r in records for name in (r.get("params") or {})} | {"param_count"}
    table = {}
    for name in sorted(names, key=_sensitivity_rank):
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


def _best(scored: list[dict[str, Any]]) -> dict[str, Any] | None:
    if not scored:
        return None
    best = min(scored, key=lambda r: (r["value"], r["number"]))
    metrics = best.get("val_metrics") or {}
    return {
        "number": best["number"],
        "value": float(best["value"]),
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
    cov = coverage(records, study_info.get("dimension_values") or {})
    summary: dict[str, Any] = {
        "summary_version": SUMMARY_VERSION,
        "study": {
            "name": study_info.get("study_name"),
            "budget": study_info.get("budget"),
            "tier": study_info.get("tier"),
            "horizon_days": study_info.get("horizon_days"),
            "grid_hash": study_info.get("grid_hash"),
            "grid_size": study_info.get("grid_size"),
            "excluded_archs": study_info.get("excluded_archs"),
            "trials_target": study_info.get("trials"),
        },
        "counts": _counts(records),
        "best": _best(scored),
        "distribution": _distribution(scored),
    }
    for name in DIMENSIONS:
        summary[f"by_{name}"] = _by_dimension(scored, name, list(cov[name]))
    summary["sensitivity"] = _sensitivity(scored, records, importances)
    summary["coverage"] = cov
    summary["trials"] = [_trial_row(r) for r in records]
    return summary


# ---------------------------------------------------------------- markdown

MISSING = "-"


def _loss(value: Any) -> str:
    return MISSING if value is None else f"{value:.4f}"


def _sci(value: Any) -> str:
    return MISSING if value is None else f"{value:.2e}"


def _ratio(value: Any) -> str:
    return MISSING if value is None else f"{value:.3f}"


def _integer(value: Any) -> str:
    return MISSING if value is None else f"{int(value):,}"


def _seconds(value: Any) -> str:
    return MISSING if value is None else f"{value:.1f}"


def _text(value: Any) -> str:
    if value is None:
        return MISSING
    # A failure reason may hold pipes or newlines that would break the table.
    return str(value).replace("|", "\\|").replace("\n", " ")


# How each param's values read in a table: rates span decades, ranks are integers.
PARAM_FORMATS = {
    "learning_rate": _sci,
    "weight_decay": _sci,
    "dropout": _ratio,
    "warmup_steps": _integer,
    "param_count": _integer,
}


def _format_param(name: str, value: Any) -> str:
    if value is None:
        return MISSING
    if name in PARAM_FORMATS:
        return PARAM_FORMATS[name](value)
    return str(value) if isinstance(value, int) else f"{value:.4g}"


def _table(header: list[str], rows: list[list[str]], align: str = "---:") -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "|" + "|".join(align for _ in header) + "|",
        *("| " + " | ".join(row) + " |" for row in rows),
    ]


def _numeric_order(cells: dict[str, Any]) -> list[tuple[str, Any]]:
    # A summary read back from summary.json has its keys sorted as text ("128" < "16").
    return sorted(cells.items(), key=lambda item: int(item[0]))


def _title(study: dict[str, Any]) -> str:
    budget = study.get("budget")
    parts = [f"budget {format_budget(budget)}" if budget is not None else None]
    if study.get("tier") is not None:
        parts.append(f"tier {study['tier']}")
    if study.get("horizon_days") is not None:
        days = study["horizon_days"]
        parts.append(f"horizon {days} day" + ("" if days == 1 else "s"))
    details = ", ".join(p for p in parts if p)
    return f"# Study {study.get('name') or '(unnamed)'}" + (f": {details}" if details else "")


def _best_section(best: dict[str, Any] | None) -> list[str]:
    lines = ["## Best trial", ""]
    if best is None:
        return [*lines, "No complete trial yet.", ""]
    arch = best.get("architecture") or {}
    lines.append(
        f"Trial {best['number']}: validation log loss **{_loss(best['value'])}**, "
        f"d_model {arch.get('d_model', MISSING)}, n_layers {arch.get('n_layers', MISSING)}, "
        f"n_heads {arch.get('n_heads', MISSING)} "
        f"({_integer(arch.get('param_count'))} parameters)"
        + (f", forced extreme '{best['forced_extreme']}'" if best.get("forced_extreme") else "")
        + "."
    )
    params = best.get("params") or {}
    training = [n for n in TRAINING_PARAMS if n in params]
    if training:
        lines += ["", ", ".join(f"{n} {_format_param(n, params[n])}" for n in training) + "."]
    matrix = best.get("confusion_matrix")
    if matrix:
        lines += [
            "",
            "Confusion matrix on validation (rows: actual, columns: predicted):",
            "",
            *_table(
                ["actual \\ predicted", "0", "1"],
                [[str(label), *(str(int(n)) for n in row)] for label, row in enumerate(matrix)],
            ),
        ]
    lines += [
        "",
        f"Precision {_ratio(best.get('precision'))}, recall {_ratio(best.get('recall'))}, "
        f"F1 {_ratio(best.get('f1'))}, ROC AUC {_ratio(best.get('roc_auc'))}, "
        f"accuracy {_ratio(best.get('accuracy'))}; positive rate "
        f"{_ratio(best.get('positive_rate'))} of {_integer(best.get('n_samples'))} samples.",
        "",
        f"Prediction range {_loss(best.get('prediction_range'))} (max - min predicted "
        "probability; near 0 means the model predicts a constant).",
        "",
    ]
    return lines


def render_markdown(summary: dict[str, Any]) -> str:
    """A readable report of a `summarize` result."""
    study, counts = summary["study"], summary["counts"]
    lines = [_title(study), ""]
    if study.get("grid_hash"):
        lines += [
            f"Grid {str(study['grid_hash'])[:12]} ({_integer(study.get('grid_size'))} "
            f"architectures, excluded {study.get('excluded_archs') or 'none'}); "
            f"target {_integer(study.get('trials_target'))} finished trials.",
            "",
        ]
    lines += [
        "## Counts",
        "",
        *_table(
            ["complete", "pruned", "failed", "duplicates", "finished"],
            [[str(counts[k]) for k in ("complete", "pruned", "failed", "duplicates", "finished")]],
        ),
        "",
        *_best_section(summary["best"]),
    ]

    dist = summary["distribution"]
    stats = ("min", "q1", "median", "q3", "max", "mean", "std")
    lines += [
        "## Distribution of validation log loss",
        "",
        "Complete trials, duplicates left out.",
        "",
        *_table(["n", *stats], [[str(dist["n"]), *(_loss(dist[k]) for k in stats)]]),
        "",
    ]

    for name in DIMENSIONS:
        rows = [
            [
                value,
                str(cell["complete"]),
                _loss(cell["best_value"]),
                MISSING if cell["best_trial"] is None else str(cell["best_trial"]),
                _loss(cell["mean_value"]),
                _loss(cell["median_value"]),
            ]
            for value, cell in _numeric_order(summary[f"by_{name}"])
        ]
        lines += [
            f"## By {name}",
            "",
            *_table([name, "complete", "best", "best trial", "mean", "median"], rows),
            "",
        ]

    rows = [
        [
            name,
            str(cell["n"]),
            _ratio(cell["spearman"]),
            _ratio(cell["p_value"]),
            _ratio(cell["importance"]),
        ]
        for name, cell in sorted(
            summary["sensitivity"].items(), key=lambda item: _sensitivity_rank(item[0])
        )
    ]
    lines += [
        "## Sensitivity",
        "",
        "Spearman rank correlation of validation log loss with each param over complete, "
        "non-duplicate trials (positive: larger values lose more); importance from Optuna, "
        "normalised to sum 1.",
        "",
        *_table(["param", "n", "spearman", "p-value", "importance"], rows),
        "",
        "## Coverage",
        "",
        "Trials per value of each dimension, by how they ended.",
        "",
        render_coverage(summary["coverage"]).rstrip("\n"),
        "",
    ]

    header = [
        "#",
        "state",
        "value",
        "d_model",
        "n_layers",
        "n_heads",
        "params",
        "learning_rate",
        "weight_decay",
        "warmup",
        "dropout",
        "epochs",
        "seconds",
        "duplicate of",
        "forced",
        "failure",
    ]
    rows = [
        [
            str(row["number"]),
            row["state"] or MISSING,
            _loss(row["value"]),
            *(_text(row[name]) for name in DIMENSIONS),
            _integer(row["param_count"]),
            *(_format_param(name, row[name]) for name in TRAINING_PARAMS),
            _text(row["epochs_run"]),
            _seconds(row["duration_seconds"]),
            _text(row["duplicate_of"]),
            _text(row["forced_extreme"]),
            _text(row["failure_reason"]),
        ]
        for row in summary["trials"]
    ]
    lines += [
        "## Trials",
        "",
        "Value: validation log loss of a complete trial, the last epoch's of a pruned one.",
        "",
        *_table(header, rows),
    ]
    return "\n".join(lines) + "\n"


def write_summary(run_dir: Path, summary: dict[str, Any]) -> tuple[Path, Path]:
    """Write RUN_DIR/summary.json and RUN_DIR/summary.md atomically; returns their paths."""
    run_dir = Path(run_dir)
    json_path = write_json_atomic(run_dir / SUMMARY_JSON, summary)
    md_path = write_text_atomic(run_dir / SUMMARY_MD, render_markdown(summary))
    return json_path, md_path
