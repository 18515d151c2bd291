"""The best trial and the counts by state: one rule for Optuna trials and for trial
records alike."""

import math

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState

from finscale.execution.attrs import DUPLICATE_ATTR, SURPLUS_ATTR
from finscale.hpo.trial_records import COUNT_KEYS, best_trial, state_counts, trial_record

X = FloatDistribution(0.0, 1.0)


def trials(*specs):
    """Frozen trials numbered in order, from (state, value, user_attrs)."""
    study = optuna.create_study()
    for state, value, attrs in specs:
        study.add_trial(
            optuna.trial.create_trial(
                state=state,
                value=value if state == TrialState.COMPLETE else None,
                params={"x": 0.5},
                distributions={"x": X},
                user_attrs=attrs,
            )
        )
    return study.get_trials()


MIXED = (
    (TrialState.COMPLETE, 0.6, {}),
    (TrialState.COMPLETE, 0.4, {}),
    (TrialState.COMPLETE, 0.4, {}),  # ties with 1: the earlier wins
    (TrialState.COMPLETE, 0.4, {DUPLICATE_ATTR: 1}),
    (TrialState.PRUNED, None, {}),
    (TrialState.FAIL, None, {}),
    (TrialState.FAIL, None, {SURPLUS_ATTR: True}),
    (TrialState.RUNNING, None, {}),
    (TrialState.WAITING, None, {}),
)


@pytest.mark.parametrize("as_records", [False, True], ids=["trials", "records"])
def test_best_is_the_lowest_complete_value_ties_to_the_earlier(as_records):
    items = trials(*MIXED)
    if as_records:
        items = [trial_record(t, {}) for t in items if t.state.is_finished()]
    best = best_trial(reversed(items))
    number = best["number"] if as_records else best.number
    assert number == 1


@pytest.mark.parametrize("as_records", [False, True], ids=["trials", "records"])
def test_a_duplicate_is_never_the_best(as_records):
    items = trials((TrialState.COMPLETE, 0.5, {}), (TrialState.COMPLETE, 0.1, {DUPLICATE_ATTR: 0}))
    if as_records:
        items = [trial_record(t, {}) for t in items]
    best = best_trial(items)
    assert (best["number"] if as_records else best.number) == 0


def test_no_complete_trial_no_best():
    assert best_trial([]) is None
    assert best_trial(trials((TrialState.PRUNED, None, {}), (TrialState.FAIL, None, {}))) is None
    record = {"number": 0, "state": "COMPLETE", "value": None}  # a NaN stored as null
    assert best_trial([record, {"number": 1, "state": "COMPLETE", "value": math.inf}]) is None


def test_state_counts_of_trials_and_of_their_records_agree():
    items = trials(*MIXED)
    counts = state_counts(items)
    assert counts == {
        "complete": 4,
        "pruned": 1,
        "failed": 1,  # the surplus trial never ran and counts nowhere
        "running": 1,
        "waiting": 1,
        "duplicates": 1,
        "finished": 5,
    }
    assert list(counts) == list(COUNT_KEYS)
    records = [trial_record(t, {}) for t in items if not t.user_attrs.get(SURPLUS_ATTR)]
    assert state_counts(records) == counts
