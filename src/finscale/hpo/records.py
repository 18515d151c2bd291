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
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import optuna
from optuna.distributions import distribution_to_json, json_to_distribution
from optuna.trial import FrozenTrial, TrialState

from finscale.atomic import write_json_atomic
from finscale.errors import InputError
from finscale.hpo.attrs import (
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
)
from finscale.hpo.storage import validate_trial

RECORD_VERSION = 1
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
# The counts by state, in the order a reader scans them. Records and trials count
# alike; "finished" (complete + pruned) is what a study's target counts.
COUNT_KEYS = ("complete", "pruned", "failed", "running", "waiting", "duplicates", "finished")
# A trial's state (Optuna's TrialState name, as records store it) and the count it adds to.
STATE_COUNT_KEYS = {
    "COMPLETE": "complete",
    "PRUNED": "pruned",
    "FAIL": "failed",
    "RUNNING": "running",
    "WAITING": "waiting",
}
# A trial, or a trial record (the dict of `trial_record`).
TrialLike = TypeVar("TrialLike", FrozenTrial, Mapping[str, Any])


def trial_path(run_dir: Path, number: int) -> Path:
    return run_dir / "trials" / f"trial_{number:04d}.json"


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def trial_record(trial: FrozenTrial, study_info: dict[str, Any]) -> dict[str, Any]:
    """The JSON record of one trial."""
    attrs = trial.user_attrs
    duration = trial.duration.total_seconds() if trial.duration is not None else None
    metrics = attrs.get(VAL_METRICS_ATTR)
    return {
        "record_version": RECORD_VERSION,
        "study": study_info.get(STUDY_NAME_ATTR),
        "number": trial.number,
        "state": trial.state.name,
        "value": _finite(trial.value) if trial.state == TrialState.COMPLETE else None,
        "last_value": _finite(
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
        "optuna": {
            "distributions": {
                name: json.loads(distribution_to_json(d)) for name, d in trial.distributions.items()
            },
            "intermediate_values": {str(k): v for k, v in trial.intermediate_values.items()},
            "user_attrs": attrs,
        },
    }


# ---------------------------------------------------------------- facts of many trials


def _state(trial: FrozenTrial | Mapping[str, Any]) -> str:
    return trial.state.name if isinstance(trial, FrozenTrial) else str(trial.get("state"))


def _is_duplicate(trial: FrozenTrial | Mapping[str, Any]) -> bool:
    if isinstance(trial, FrozenTrial):
        return DUPLICATE_ATTR in trial.user_attrs
    return trial.get("duplicate_of") is not None


def _is_surplus(trial: FrozenTrial | Mapping[str, Any]) -> bool:
    # A surplus trial never ran and is never recorded: only trials can be one.
    return isinstance(trial, FrozenTrial) and bool(trial.user_attrs.get(SURPLUS_ATTR))


def _number(trial: FrozenTrial | Mapping[str, Any]) -> int:
    return trial.number if isinstance(trial, FrozenTrial) else int(trial["number"])


def _complete_value(trial: FrozenTrial | Mapping[str, Any]) -> float | None:
    """The finite value of a complete trial, else None."""
    if _state(trial) != "COMPLETE":
        return None
    value = trial.value if isinstance(trial, FrozenTrial) else trial.get("value")
    return _finite(None if value is None else float(value))


def state_counts(trials: Iterable[FrozenTrial | Mapping[str, Any]]) -> dict[str, int]:
    """How many trials (or trial records) are in each state: every key of `COUNT_KEYS`.

    ``duplicates`` counts the complete trials that reused a near-duplicate's value
    (also counted in ``complete``); ``finished`` is complete + pruned. Surplus
    trials (asked beyond the count by a racing worker, never run) count nowhere."""
    counts = dict.fromkeys(COUNT_KEYS, 0)
    for trial in trials:
        if _is_surplus(trial):
            continue
        state = _state(trial)
        if state not in STATE_COUNT_KEYS:
            continue  # a record without a state
        counts[STATE_COUNT_KEYS[state]] += 1
        if state == "COMPLETE" and _is_duplicate(trial):
            counts["duplicates"] += 1
    counts["finished"] = counts["complete"] + counts["pruned"]
    return counts


def best_trial(trials: Iterable[TrialLike]) -> TrialLike | None:
    """The complete trial (or trial record) with the lowest finite value; the lowest
    number among equals. None when no trial completed.

    A duplicate (a trial that reused a near-duplicate's value instead of training)
    is never the best: its original, trained on its own params, holds the same
    value under a lower number."""
    scored = [
        (value, _number(t), t)
        for t in trials
        if (value := _complete_value(t)) is not None and not _is_duplicate(t) and not _is_surplus(t)
    ]
    return min(scored, key=lambda item: item[:2])[2] if scored else None


def best_record(trials: list[FrozenTrial], study_info: dict[str, Any]) -> dict[str, Any]:
    """The content of RUN_DIR/{study}_best.json."""
    best = best_trial(trials)
    return {
        "study": study_info.get(STUDY_NAME_ATTR),
        "budget": study_info.get(BUDGET_ATTR),
        "grid_hash": study_info.get(GRID_HASH_ATTR),
        "best_value": best.value if best else None,
        "best_trial": best.number if best else None,
        "params": best.params if best else None,
        "architecture": best.user_attrs.get(ARCHITECTURE_ATTR) if best else None,
        "val_metrics": best.user_attrs.get(VAL_METRICS_ATTR) if best else None,
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
        self._written: dict[int, str] = {}

    def export(self, study: optuna.Study) -> dict[str, int]:
        trials = study.get_trials(deepcopy=False)
        for t in trials:
            if not t.state.is_finished() or t.user_attrs.get(SURPLUS_ATTR):
                continue
            if (
                self._written.get(t.number) == t.state.name
                and trial_path(self.run_dir, t.number).exists()
            ):
                continue
            write_json_atomic(trial_path(self.run_dir, t.number), trial_record(t, self.study_info))
            self._written[t.number] = t.state.name
        name = self.study_info[STUDY_NAME_ATTR]
        best = best_record(trials, self.study_info)
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
