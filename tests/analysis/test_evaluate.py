"""The trial final evaluation trains again (the study's crown, not its best single value),
and the seeds it trains with (none the search trained with)."""

import optuna
import pytest
from optuna.distributions import FloatDistribution

from finscale.analysis import cross_budget_seed, crowned_trial, evaluation_seeds
from finscale.config import load_study_config
from finscale.errors import InputError
from finscale.execution.attrs import CONFIG_ATTR
from finscale.hpo import best_trial
from finscale.hpo.finalists import finalist_key, pending
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


def _search_seeds(config):
    """The seeds a search of `config` trains with, as the search's own code picks them
    from the study's stored config: every trial's (`train.seed`, the objective's
    default) and every finalist re-run's (finalists turned on, so each is asked for)."""
    stored = config.model_dump(mode="json")
    stored["search"]["finalists"] = 1
    reruns = [seed for _, seed in pending(study_of(0.3).get_trials(), {CONFIG_ATTR: stored})]
    assert len(reruns) == config.search.finalist_seeds
    return {config.train.seed, *reruns}


@pytest.mark.parametrize(
    "sets",
    [
        {},
        {"train.seed": 5, "search.finalist_seeds": 3},
        {"train.seed": 5, "search.finalists": 2, "search.finalist_seeds": 3, "scale.seeds": 4},
        {"train.seed": 4, "search.finalist_seeds": 40, "scale.seeds": 1},
    ],
    ids=["defaults", "seed5-3reruns", "finalists-on", "many-reruns"],
)
def test_evaluation_seeds_never_repeat_a_seed_the_search_trains_with(sets):
    config = load_study_config(overrides=sets)
    seeds = evaluation_seeds(config)
    assert len(set(seeds)) == len(seeds) == config.scale.seeds
    assert _search_seeds(config).isdisjoint(seeds)
    # The cross-budget matrix trains with the first: its diagonal is that seed's run.
    assert cross_budget_seed(config) == seeds[0]


def test_the_default_evaluation_seeds_follow_the_search_and_stay_put_when_finalists_turn_on():
    config = load_study_config()
    assert (config.train.seed, config.search.finalists) == (0, 0)
    assert evaluation_seeds(config) == (3, 4, 5)
    # More evaluation seeds extend the list: a resume keeps the runs it has.
    assert evaluation_seeds(load_study_config(overrides={"scale.seeds": 5})) == (3, 4, 5, 6, 7)
    # Finalists re-run with seeds 1 and 2 whether or not they are on: no evaluation seed moves.
    with_finalists = load_study_config(overrides={"search.finalists": 3})
    assert evaluation_seeds(with_finalists) == (3, 4, 5)
