"""The results and the report of a run directory: `finscale report` and the last two
stages of `finscale scale`.

Reads only what the stages stored (final-evaluation runs, baselines,
cross-budget cells, the studies' trial records), hands them to
`finscale.analysis.results` and `finscale.report`, and writes what they
return, so a report is rebuilt without training.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from finscale.analysis import (
    ComparedBudget,
    CrossBudgetCell,
    EvaluationRun,
    RunComparison,
    ScalingResults,
    SearchCompute,
    SearchTrials,
    TransferSettings,
    evaluation_seeds,
    experiment_rows,
    json_safe,
    paired_run_differences,
    scaling_results,
)
from finscale.atomic import write_json_atomic, write_text_atomic
from finscale.config import StudyConfig
from finscale.errors import InputError
from finscale.execution import (
    TRANSFER_ATTR,
    VAL_DATES_ATTR,
    VAL_LABELS_ATTR,
    VAL_PREDICTIONS_ATTR,
    VAL_RETURNS_ATTR,
)
from finscale.hpo import STUDY_FILE
from finscale.report import StudyFiles, write_report
from finscale.scale.layout import (
    RESULTS_CSV,
    SCALING_JSON,
    baselines_path,
    cross_budget_path,
    evaluation_path,
    read_json,
    study_dir,
)
from finscale.scale.scale_spec import read_scale_file


def load_evaluations(
    run_dir: Path,
    studies: Sequence[Mapping[str, Any]],
    seeds: Sequence[int],
    folds: Sequence[int | None],
    data_fraction: float = 1.0,
) -> dict[tuple[int, int], list[EvaluationRun]]:
    """The stored final-evaluation runs of every study of scale.json's plan (on
    `data_fraction` of the training data), by (budget, horizon), fold by fold and in
    the order of `seeds` (`finscale.analysis.evaluation_seeds`) within a fold. Only
    those seeds' files are read: another seed's file in the folder (an older
    version's seed_0.json, whose run repeated the search's) is not one of the runs. A
    study without all its runs is an error that names what to run."""
    out = {}
    for study in studies:
        runs = []
        for fold in folds:
            for seed in seeds:
                path = evaluation_path(run_dir, study["study_name"], seed, fold, data_fraction)
                record = read_json(path)
                if record is None:
                    which = f"seed {seed}" if fold is None else f"fold {fold}, seed {seed}"
                    if data_fraction != 1.0:
                        which += f" on data fraction {data_fraction:g}"
                    raise InputError(
                        f"study {study['study_name']} has no final evaluation of {which}; "
                        "run `finscale scale` with the same options to finish it",
                        str(run_dir),
                    )
                runs.append(_parsed(EvaluationRun, record, path))
        out[(study["budget"], study["horizon_days"])] = runs
    return out


def load_cross_budget_cells(run_dir: Path, horizon: int, budgets: Sequence[int]) -> list:
    """The stored cross-budget cells among `budgets` at `horizon` (none when the stage
    was not run)."""
    cells = []
    for a in budgets:
        for b in budgets:
            path = cross_budget_path(run_dir, horizon, a, b)
            record = read_json(path) if a != b else None
            if record is not None:
                cells.append(_parsed(CrossBudgetCell, record, path))
    return cells


def _parsed(kind: Any, record: dict[str, Any], path: Path) -> Any:
    try:
        return kind.from_dict(record)
    except KeyError as exc:
        raise InputError(
            f"{path} lacks {exc}; it was written by another version: remove it and rerun "
            "`finscale scale` with the same options to redo it",
            str(path),
        ) from None


def study_trials(folder: Path, study: str) -> list[dict[str, Any]]:
    """A study's finished trials' records in number order: the per-trial files, or the
    export of finished trials where those are gone."""
    trials = [read_json(p) for p in sorted((folder / "trials").glob("trial_*.json"))]
    if not trials:
        trials = read_json(folder / f"{study}_all_trials.json") or []
    return sorted((t for t in trials if t), key=lambda t: t["number"])


def load_search(run_dir: Path, study: str) -> SearchTrials | None:
    """What a study's trials predicted on its validation dates, from its study.json and
    trial records; None when the study stored no validation labels."""
    folder = study_dir(run_dir, study)
    info = read_json(folder / STUDY_FILE) or {}
    if not info.get(VAL_LABELS_ATTR):
        return None
    dates = tuple(info[VAL_DATES_ATTR])
    complete = [t for t in study_trials(folder, study) if t.get("state") == "COMPLETE"]
    predictions = {}
    for t in complete:
        stored = ((t.get("optuna") or {}).get("user_attrs") or {}).get(VAL_PREDICTIONS_ATTR)
        if t.get("duplicate_of") is None and stored and len(stored) == len(dates):
            predictions[t["number"]] = tuple(stored)
    return SearchTrials(
        study=study,
        dates=dates,
        labels=tuple(info[VAL_LABELS_ATTR]),
        next_day_returns=tuple(info[VAL_RETURNS_ATTR]),
        predictions=predictions,
        complete=len(complete),
    )


def search_compute(trials: Sequence[Mapping[str, Any]]) -> SearchCompute:
    """What a study's search cost, from its finished trials' records."""
    trained = [t for t in trials if t.get("duplicate_of") is None]
    return SearchCompute(
        trials=len(trials),
        trained=len(trained),
        epochs=int(sum(t.get("epochs_run") or 0 for t in trained)),
        seconds=float(sum(t.get("duration_seconds") or 0.0 for t in trained)),
    )


def add_search_records(run_dir: Path, results: ScalingResults) -> ScalingResults:
    """`results` with each budget row's `hpo_compute` (`search_compute`) and `transfer`
    (the training values its study took from another's winner, or None), and the run's
    transfer settings: the mode, the parametrization, its base shape and readout init."""
    config = StudyConfig(**results.config)
    transfer = TransferSettings(
        mode=config.search.transfer,
        parametrization=config.model.parametrization,
        base_shape=tuple(config.model.base_shape),
        readout_init=config.model.readout_init,
    )
    horizons = {}
    for horizon, h in results.horizons.items():
        rows = []
        for row in h.budgets:
            folder = study_dir(run_dir, row.study)
            rows.append(
                dataclasses.replace(
                    row,
                    hpo_compute=search_compute(study_trials(folder, row.study)),
                    transfer=(read_json(folder / STUDY_FILE) or {}).get(TRANSFER_ATTR),
                )
            )
        horizons[horizon] = dataclasses.replace(h, budgets=tuple(rows))
    return dataclasses.replace(results, transfer=transfer, horizons=horizons)


def comparison_of(
    other_dir: Path,
    evaluations: Mapping[tuple[int, int], Sequence[EvaluationRun]],
    config: StudyConfig,
) -> RunComparison:
    """What the report sets beside this run (`evaluations`, under `config`) from another
    run directory (`finscale report --compare`): its transfer settings and, per horizon
    and budget, the winner's test log loss with its intervals, its search's compute,
    its own-values margin, and the change from it to this run paired on the test dates."""
    other_dir = Path(other_dir)
    stored = read_json(other_dir / SCALING_JSON)
    if stored is None:
        raise InputError(
            f"{other_dir} has no {SCALING_JSON}; run `finscale scale` (or `finscale report`) "
            "there first",
            "compare",
        )
    other_info = read_scale_file(other_dir)
    problem = _results_problem(stored)
    if problem is not None:
        raise InputError(
            f"{other_dir / SCALING_JSON} is not a scaling study's results: {problem}; "
            f"`finscale report {other_dir}` rebuilds it",
            "compare",
        )
    other = _parsed(ScalingResults, stored, other_dir / SCALING_JSON)
    if other.transfer is None:
        # the config as checked in its scale.json
        other = dataclasses.replace(other, config=other_info["config"])
        other = add_search_records(other_dir, other)
    other_config = StudyConfig(**other_info["config"])
    other_runs = load_evaluations(
        other_dir,
        other_info["studies"],
        evaluation_seeds(other_config),
        other_config.evaluation.scored_folds,
    )
    paired = paired_run_differences(
        evaluations, other_runs, config.scale, config.train.decision_threshold
    )
    horizons = {}
    for horizon, h in other.horizons.items():
        cross = h.cross_budget
        margins = dict(zip(cross.budgets, cross.own_values_margin, strict=True)) if cross else {}
        horizons[horizon] = {
            row.budget: ComparedBudget(
                test_log_loss=row.metrics["log_loss"],
                hpo_compute=row.hpo_compute,
                own_values_margin=margins.get(row.budget),
                params=row.params,
                paired=paired.get(int(horizon), {}).get(row.budget),
            )
            for row in h.budgets
        }
    return RunComparison(
        run_dir=str(other_dir), study=other.study, transfer=other.transfer, horizons=horizons
    )


def _results_problem(results: dict[str, Any]) -> str | None:
    """What in a scaling.json `comparison_of` cannot read, or None."""
    horizons = results.get("horizons")
    if not isinstance(results.get("study"), str) or not isinstance(horizons, dict):
        return "no study name or horizons"
    for horizon, h in horizons.items():
        rows = h.get("budgets") if isinstance(h, dict) else None
        if not isinstance(rows, list) or not all(
            isinstance(row, dict)
            and {"budget", "study", "params", "metrics"} <= row.keys()
            and isinstance(row["metrics"], dict)
            and "log_loss" in row["metrics"]
            for row in rows
        ):
            return f"horizon {horizon} has no rows of budget, study, params and metrics"
    return None


def build_results(run_dir: Path, compare: Path | None = None) -> ScalingResults:
    """Write experiment_results.csv and scaling.json of a scaling study's run directory
    from what its stages stored; returns the scaling.json content. With `compare`
    (another run directory), scaling.json's `comparison` holds that run's figures."""
    info = read_scale_file(run_dir)
    config = StudyConfig(**info["config"])
    scale = config.scale
    folds = config.evaluation.scored_folds
    seeds = evaluation_seeds(config)
    evaluations = load_evaluations(run_dir, info["studies"], seeds, folds)
    data_runs: dict[tuple[int, int], dict[float, list[EvaluationRun]]] = {}
    for fraction in (f for f in scale.data_fractions if f != 1.0):
        for key, runs in load_evaluations(run_dir, info["studies"], seeds, folds, fraction).items():
            data_runs.setdefault(key, {})[fraction] = runs
    every_run = {
        key: [*runs, *(r for f in sorted(data_runs.get(key, {})) for r in data_runs[key][f])]
        for key, runs in evaluations.items()
    }
    buffer = io.StringIO()
    experiment_rows(every_run).to_csv(buffer, index=False)

    baselines, cells = {}, {}
    for horizon in scale.horizons:
        budgets = [b for (b, h) in evaluations if h == horizon]
        baselines[horizon] = [read_json(baselines_path(run_dir, horizon, f)) for f in folds]
        cells[horizon] = load_cross_budget_cells(run_dir, horizon, budgets)
    searches = {
        (study["budget"], study["horizon_days"]): load_search(run_dir, study["study_name"])
        for study in info["studies"]
    }
    out = scaling_results(
        run_dir.name,
        info["config"],
        evaluations,
        baselines,
        cells,
        searches,
        data_runs,
        *_tier_inputs(run_dir, info, config),
    )
    out = add_search_records(run_dir, out)
    if compare is not None:
        out = dataclasses.replace(out, comparison=comparison_of(compare, evaluations, config))
    # Written once every input has been read: a bad --compare leaves the files as they were.
    write_text_atomic(run_dir / RESULTS_CSV, buffer.getvalue())
    write_json_atomic(run_dir / SCALING_JSON, json_safe(out.to_dict()))
    return out


def _tier_inputs(
    run_dir: Path, info: Mapping[str, Any], config: StudyConfig
) -> tuple[dict[str, dict[tuple[int, int], list[EvaluationRun]]], dict[str, int]]:
    """The runs of every tier besides the data section's (scale.json's `tier_studies`),
    by tier, and every tier's feature count."""
    from finscale.data import tier_features

    if len(config.tiers) < 2:
        return {}, {}
    seeds, folds = evaluation_seeds(config), config.evaluation.scored_folds
    studies = info.get("tier_studies", [])
    runs = {
        tier: load_evaluations(run_dir, [s for s in studies if s["tier"] == tier], seeds, folds)
        for tier in config.tiers
        if tier != config.data.tier
    }
    missing = [tier for tier, found in runs.items() if not found]
    if missing:
        raise InputError(
            f"scale.json plans tier {missing[0]} but lists none of its studies; run "
            "`finscale scale` with the same options to finish it",
            str(run_dir),
        )
    return runs, {tier: len(tier_features(tier)) for tier in config.tiers}


def load_study_files(
    run_dir: Path, study: str, seeds: Sequence[int], fold: int | None = None
) -> StudyFiles:
    """What the report draws of one study: its study.json, its finished trials' records
    and the learning curve of each of `seeds`' final evaluation (on `fold` under
    walk-forward: the report draws the last, trained on the most history)."""
    folder = study_dir(run_dir, study)
    trials = study_trials(folder, study)
    curves = {
        seed: (read_json(evaluation_path(run_dir, study, seed, fold)) or {}).get(
            "learning_curve", []
        )
        for seed in seeds
    }
    return StudyFiles(read_json(folder / STUDY_FILE) or {}, trials, curves)


def study_files_of(run_dir: Path, results: ScalingResults) -> dict[tuple[str, int], StudyFiles]:
    """The study files of every (horizon, budget) row of `results` (scaling.json)."""
    out = {}
    seeds = evaluation_seeds(StudyConfig(**results.config))
    for horizon, h in results.horizons.items():
        last_fold = h.folds[-1].fold if h.folds else None
        for row in h.budgets:
            files = load_study_files(run_dir, row.study, seeds, last_fold)
            out[(horizon, row.budget)] = files
    return out


def write_run_report(run_dir: Path, results: ScalingResults) -> list[Path]:
    """Write figures/*.png, report.md and report.html of a run directory from its results
    and its studies' records; returns the paths in the order written."""
    run_dir = Path(run_dir)
    return write_report(run_dir, results, study_files_of(run_dir, results))
