"""Facts of many trials (or trial records): the counts by state and the ranking by value.

One place for each: the study's best, its finalists, its summary and its records all
rank and count through these functions, so a duplicate or a surplus trial is treated
alike everywhere.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from optuna.trial import FrozenTrial

from finscale.execution import DUPLICATE_ATTR, SURPLUS_ATTR

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


def finite(value: float | None) -> float | None:
    """`value`, or None where it is missing, NaN or infinite."""
    return value if value is not None and math.isfinite(value) else None


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
    return finite(None if value is None else float(value))


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
    ranked = ranked_trials(trials)
    return ranked[0] if ranked else None


def ranked_trials(trials: Iterable[TrialLike]) -> list[TrialLike]:
    """The complete, trained trials by value, lowest first (the lowest number among
    equals): `best_trial` is the first; the finalists are the first few."""
    scored = [
        (value, _number(t), t)
        for t in trials
        if (value := _complete_value(t)) is not None and not _is_duplicate(t) and not _is_surplus(t)
    ]
    return [t for _, _, t in sorted(scored, key=lambda item: item[:2])]
