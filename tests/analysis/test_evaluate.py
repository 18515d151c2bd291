"""The trial final evaluation trains again: the study's crown, not its best single value."""

import optuna
import pytest
from optuna.distributions import FloatDistribution

from finscale.analysis import crowned_trial
from finscale.errors import InputError
from finscale.hpo import best_trial
from finscale.hpo.finalists import finalist_key
from tests.hpo.test_finalists import SETTINGS, reruns

X = FloatDistribution(0.0, 1.0)


def study_of(*values, attrs=None):
    study = optuna.create_study(study_name="s")
    for value in values:
        study.add_trial(
            optuna.trial.create_trial(value=value, params={"x": 0.5}, distributions={"x": X})
        )
    for key, value in (attrs or {}).items():
        study.set_user_attr(key, value)
    return study


def test_the_crowned_trial_is_the_best_seed_mean_where_hpo_best_trial_is_the_best_value():
    # Trial 1 drew the best value; its re-runs are poor and trial 2's hold up.
    study = study_of(0.5, 0.30, 0.31, attrs={**SETTINGS, **reruns(n1=[0.36, 0.35], n2=[0.31])})
    assert best_trial(study.get_trials()).number == 1
    assert crowned_trial(study).number == 1  # trial 2 lacks a re-run: the best value stands
    study.set_user_attr(finalist_key(2, 7), {"val_loss": 0.32, "epochs": 4})
    assert best_trial(study.get_trials()).number == 1
    assert crowned_trial(study).number == 2


def test_a_study_without_a_complete_trial_says_what_to_run():
    with pytest.raises(InputError, match=r"no completed trial.*finscale hpo/scale resumes"):
        crowned_trial(study_of())
