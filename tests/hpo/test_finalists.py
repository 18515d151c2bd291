"""Finalists: the top trials retrained with more seeds, and the crowned winner their
lowest seed mean."""

import json

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState

from finscale.execution import clear_stop
from finscale.execution.attrs import CONFIG_ATTR, DUPLICATE_ATTR
from finscale.execution.control import request_stop
from finscale.hpo import crown, run_study
from finscale.hpo.finalists import finalist_key, pending
from finscale.hpo.trial_records import read_trial_records
from tests.hpo.conftest import load

X = FloatDistribution(0.0, 1.0)
SETTINGS = {CONFIG_ATTR: {"search": {"finalists": 2, "finalist_seeds": 2}, "train": {"seed": 5}}}


def trials(*values, attrs=None):
    study = optuna.create_study()
    for number, value in enumerate(values):
        study.add_trial(
            optuna.trial.create_trial(
                value=value,
                params={"x": 0.5},
                distributions={"x": X},
                user_attrs=(attrs or {}).get(number, {}),
            )
        )
    return study.get_trials()


def reruns(**losses):
    """Study attrs of stored re-runs: {"n3": [a, b]} -> trial 3's seeds 6 and 7."""
    return {
        finalist_key(int(key[1:]), 6 + k): {"val_loss": loss, "epochs": 4}
        for key, values in losses.items()
        for k, loss in enumerate(values)
    }


def test_without_finalists_the_best_value_is_crowned():
    items = trials(0.5, 0.3, 0.4)
    crowning = crown(items, {})
    assert crowning.trial.number == 1 and crowning.mean == 0.3 and not crowning.by_finalists
    assert pending(items, {}) == []


def test_the_lowest_seed_mean_is_crowned_over_a_lucky_value():
    # Trial 1 drew the best value but its other seeds are poor; trial 2 holds up.
    items = trials(0.5, 0.30, 0.31, 0.32)
    attrs = {**SETTINGS, **reruns(n1=[0.36, 0.35], n2=[0.31, 0.32])}
    crowning = crown(items, attrs)
    assert crowning.by_finalists and crowning.trial.number == 2
    assert crowning.mean == pytest.approx((0.31 + 0.31 + 0.32) / 3)
    assert set(crowning.finalists) == {1, 2} and crowning.seeds == {1: 3, 2: 3}


def test_finalists_need_every_re_run_before_they_crown():
    items = trials(0.5, 0.30, 0.31)
    attrs = {**SETTINGS, **reruns(n1=[0.36, 0.35], n2=[0.31])}
    assert crown(items, attrs).trial.number == 1  # the best value until all have run
    # The one missing: trial 2's second seed (the training seed + 2).
    assert [(t.number, seed) for t, seed in pending(items, attrs)] == [(2, 7)]


def test_duplicates_are_never_finalists():
    items = trials(0.5, 0.30, 0.30, 0.31, attrs={2: {DUPLICATE_ATTR: 1}})
    assert [(t.number, s) for t, s in pending(items, SETTINGS)] == [(1, 6), (1, 7), (3, 6), (3, 7)]


@pytest.mark.slow
def test_a_study_retrains_its_finalists_records_them_and_resumes_only_the_missing(make_spec):
    settings = {"search.trials": 5, "search.finalists": 2, "search.finalist_seeds": 2}
    spec = make_spec(**settings)
    seen = []

    def stop_after_first(run, done, total):
        seen.append((run.number, run.seed, done, total))
        request_stop(spec.run_dir)

    outcome = run_study(spec, on_finalist=stop_after_first)
    assert outcome.stop_reason and len(seen) == 1 and seen[0][3] == 4
    study = load(spec)
    assert not crown(study.trials, study.user_attrs).by_finalists  # 1 of 4 re-runs

    clear_stop(spec.run_dir)  # as the command does before it resumes
    resumed = []
    outcome = run_study(spec, on_finalist=lambda run, done, total: resumed.append(run))
    assert outcome.stop_reason is None and len(resumed) == 3
    assert {(r.number, r.seed) for r in resumed}.isdisjoint({seen[0][:2]})
    study = load(spec)
    crowning = crown(study.trials, study.user_attrs)
    assert crowning.by_finalists and set(crowning.seeds.values()) == {3}

    best = json.loads((spec.run_dir / "tiny_best.json").read_text())
    assert best["crowned_by"] == "finalists" and best["best_trial"] == crowning.trial.number
    assert best["best_value"] == pytest.approx(crowning.mean)
    records = read_trial_records(spec.run_dir)
    trial_epochs = sum(r["epochs_run"] for r in records)
    rerun_epochs = sum(
        run["epochs"] for r in records if r["finalist"] for run in r["finalist"]["runs"]
    )
    assert best["epochs_spent"] == trial_epochs + rerun_epochs and rerun_epochs > 0
    with_reruns = [r["number"] for r in records if r["finalist"]]
    assert sorted(with_reruns) == sorted(crowning.finalists)
    # A trial's re-runs use other seeds than its own (the config's training seed).
    seed = spec.config.train.seed
    assert all(
        run["seed"] != seed for r in records if r["finalist"] for run in r["finalist"]["runs"]
    )
    assert all(t.state != TrialState.RUNNING for t in load(spec).trials)
    # Nothing left to train: another run would find no pending re-run.
    assert pending(study.trials, study.user_attrs) == []
