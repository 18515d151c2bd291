"""Records of a study, exported from its Optuna storage after every trial.

    RUN_DIR/study.json                 the study: name, budget, grid hash, config, splits
    RUN_DIR/trials/trial_NNNN.json     one per finished trial (complete, pruned, failed)
    RUN_DIR/{study}_best.json          the best trial and the counts by state
    RUN_DIR/{study}_all_trials.json    every complete and pruned trial, best first

Every file is written atomically and can be re-created from the storage. A
trial record also carries what Optuna needs to rebuild the trial
(distributions, intermediate values, attrs), so `import_trials` can move a
study to another storage.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import distribution_to_json, json_to_distribution
from optuna.trial import FrozenTrial, TrialState

from finscale.atomic import write_json_atomic
from finscale.errors import InputError
from finscale.execution import (
    ARCHITECTURE_ATTR,
    BATCH_ATTR,
    BUDGET_ATTR,
    DUPLICATE_ATTR,
    EPOCHS_RUN_ATTR,
    FAIL_ATTR,
    FORCED_ATTR,
    GRID_HASH_ATTR,
    IMPORTED_FROM_ATTR,
    LEARNING_CURVE_ATTR,
    RESOURCES_ATTR,
    RETRY_ATTR,
    SPLITS_ATTR,
    STUDY_NAME_ATTR,
    SURPLUS_ATTR,
    TRAINING_ATTR,
    VAL_METRICS_ATTR,
    validate_trial,
)
from finscale.hpo.finalists import crown, finalist_epochs, finalist_record, finalist_runs
from finscale.hpo.ranking import (  # noqa: F401  (re-exported: records are where readers look)
    COUNT_KEYS,
    TrialLike,
    best_trial,
    finite,
    ranked_trials,
    state_counts,
)

RECORD_VERSION = 1
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def trial_path(run_dir: Path, number: int) -> Path:
    return run_dir / "trials" / f"trial_{number:04d}.json"


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def trial_record(
    trial: FrozenTrial, study_info: dict[str, Any], study_attrs: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The JSON record of one trial; `study_attrs` (the study's user attrs) adds its
    finalist re-runs, where it has some."""
    attrs = trial.user_attrs
    duration = trial.duration.total_seconds() if trial.duration is not None else None
    metrics = attrs.get(VAL_METRICS_ATTR)
    return {
        "record_version": RECORD_VERSION,
        "study": study_info.get(STUDY_NAME_ATTR),
        "number": trial.number,
        "state": trial.state.name,
        "value": finite(trial.value) if trial.state == TrialState.COMPLETE else None,
        "last_value": finite(
            trial.intermediate_values[max(trial.intermediate_values)]
            if trial.intermediate_values
            else None
        ),
        "params": trial.params,
        "architecture": attrs.get(ARCHITECTURE_ATTR),
        "batch": attrs.get(BATCH_ATTR),
        "start_time": _iso(trial.datetime_start),
        "end_time": _iso(trial.datetime_complete),
        "duration_seconds": duration,
        "epochs_run": attrs.get(EPOCHS_RUN_ATTR, 0),
        "training": attrs.get(TRAINING_ATTR),
        "learning_curve": attrs.get(LEARNING_CURVE_ATTR, []),
        "val_metrics": metrics,
        "confusion_matrix": metrics.get("confusion_matrix") if metrics else None,
        "split_statistics": study_info.get(SPLITS_ATTR),
        "resources": attrs.get(RESOURCES_ATTR, []),
        "failure_reason": attrs.get(FAIL_ATTR),
        "duplicate_of": attrs.get(DUPLICATE_ATTR),
        "retry_of": attrs.get(RETRY_ATTR),
        "forced_extreme": attrs.get(FORCED_ATTR),
        "finalist": finalist_record(trial.number, study_attrs or {}),
        "optuna": {
            "distributions": {
                name: json.loads(distribution_to_json(d)) for name, d in trial.distributions.items()
            },
            "intermediate_values": {str(k): v for k, v in trial.intermediate_values.items()},
            "user_attrs": attrs,
        },
    }


def best_record(
    trials: list[FrozenTrial],
    study_info: dict[str, Any],
    study_attrs: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The content of RUN_DIR/{study}_best.json: the crowned trial (the finalist with the
    lowest seed mean once the finalists have run, else the best value), with
    `epochs_spent`, every epoch the study trained (trials and finalists' re-runs)."""
    attrs = study_attrs or {}
    crowning = crown(trials, attrs)
    best = crowning.trial
    trial_epochs = sum(int(t.user_attrs.get(EPOCHS_RUN_ATTR, 0)) for t in trials)
    return {
        "study": study_info.get(STUDY_NAME_ATTR),
        "budget": study_info.get(BUDGET_ATTR),
        "grid_hash": study_info.get(GRID_HASH_ATTR),
        "best_value": crowning.mean,
        "best_trial": best.number if best else None,
        "params": best.params if best else None,
        "architecture": best.user_attrs.get(ARCHITECTURE_ATTR) if best else None,
        "val_metrics": best.user_attrs.get(VAL_METRICS_ATTR) if best else None,
        "crowned_by": "finalists" if crowning.by_finalists else "best value",
        "trial_value": best.value if best else None,
        "finalists": [
            {"trial": number, "mean_val_loss": mean, "seeds": crowning.seeds[number]}
            for number, mean in crowning.finalists.items()
        ],
        "epochs_spent": trial_epochs + finalist_epochs(attrs),
        "counts": state_counts(trials),
    }


def all_trials_record(trials: list[FrozenTrial], study_info: dict[str, Any]) -> list[dict]:
    finished = [t for t in trials if t.state in FINISHED]
    records = [trial_record(t, study_info) for t in finished]

    def sort_key(r: dict[str, Any]) -> tuple[float, int]:
        value = r["value"] if r["value"] is not None else r["last_value"]
        return (value if value is not None else math.inf, r["number"])

    return sorted(records, key=sort_key)


class RecordWriter:
    """Exports a study's records; remembers what it wrote so each trial file is
    written once per state change."""

    def __init__(self, run_dir: Path, study_info: dict[str, Any]) -> None:
        self.run_dir = run_dir
        self.study_info = study_info
        self._written: dict[int, tuple[str, int]] = {}

    def export(self, study: optuna.Study) -> dict[str, int]:
        trials = study.get_trials(deepcopy=False)
        attrs = study.user_attrs
        reruns = {n: len(r) for n, r in finalist_runs(attrs).items()}
        for t in trials:
            if not t.state.is_finished() or t.user_attrs.get(SURPLUS_ATTR):
                continue
            # A record changes with its trial's state and with each finalist re-run.
            written = (t.state.name, reruns.get(t.number, 0))
            if (
                self._written.get(t.number) == written
                and trial_path(self.run_dir, t.number).exists()
            ):
                continue
            record = trial_record(t, self.study_info, attrs)
            write_json_atomic(trial_path(self.run_dir, t.number), record)
            self._written[t.number] = written
        name = self.study_info[STUDY_NAME_ATTR]
        best = best_record(trials, self.study_info, attrs)
        write_json_atomic(self.run_dir / f"{name}_best.json", best)
        write_json_atomic(
            self.run_dir / f"{name}_all_trials.json", all_trials_record(trials, self.study_info)
        )
        return best["counts"]


def read_trial_records(folder: Path) -> list[dict[str, Any]]:
    """Every trial record in `folder` (a run directory or its trials/ folder), by number."""
    folder = Path(folder)
    if (folder / "trials").is_dir():
        folder = folder / "trials"
    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder of trial records", "DIR")
    records = []
    for path in sorted(folder.glob("trial_*.json")):
        try:
            record = json.loads(path.read_text())
            record["optuna"]["distributions"]
        except (json.JSONDecodeError, KeyError, TypeError):
            raise InputError(f"{path.name} is not a finscale trial record", str(path)) from None
        records.append(record)
    if not records:
        raise InputError(f"no trial_*.json records in {folder}", "DIR")
    return sorted(records, key=lambda r: r["number"])


def frozen_from_record(record: dict[str, Any]) -> FrozenTrial:
    """An Optuna trial rebuilt from its record, ready for `study.add_trial`."""
    state = TrialState[record["state"]]
    if not state.is_finished():
        raise InputError(
            f"trial {record['number']} is {record['state']}; only finished trials import",
            "DIR",
        )
    optuna_part = record["optuna"]
    distributions = {
        name: json_to_distribution(json.dumps(d))
        for name, d in optuna_part["distributions"].items()
    }
    intermediate = {int(k): v for k, v in optuna_part["intermediate_values"].items()}
    user_attrs = {**optuna_part["user_attrs"], IMPORTED_FROM_ATTR: record["number"]}
    trial = FrozenTrial(
        number=record["number"],
        state=state,
        value=record["value"] if state == TrialState.COMPLETE else None,
        datetime_start=_parse_time(record["start_time"]),
        datetime_complete=_parse_time(record["end_time"]),
        params=record["params"],
        distributions=distributions,
        user_attrs=user_attrs,
        system_attrs={},
        intermediate_values=intermediate,
        trial_id=record["number"],
    )
    validate_trial(trial)
    return trial


def _parse_time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None
