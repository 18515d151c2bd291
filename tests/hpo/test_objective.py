"""Trials of a real study: duplicate reuse, failures recorded with their reason,
pruning of trials behind the others, the search's own patience, the GP sampler."""

import optuna
import pytest
from optuna.trial import TrialState

from finscale.hpo import prepare, train_configuration
from finscale.hpo.spec import make_sampler
from finscale.hpo.study import run_study
from finscale.hpo.trial_records import read_trial_records
from tests.hpo.conftest import load


def test_near_duplicates_reuse_the_earlier_result(make_spec):
    # Zero-width training ranges: every trial on an architecture already trained is
    # a duplicate, so at most one trial per architecture trains.
    spec = make_spec(
        **{
            "search.learning_rate": [1e-3, 1e-3],
            "search.weight_decay": [1e-2, 1e-2],
            "search.warmup_steps": [10, 10],
            "search.dropout": [0.1, 0.1],
            "search.trials": 12,
        }
    )
    outcome = run_study(spec)
    study = load(spec)
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    duplicates = [t for t in complete if "duplicate_of" in t.user_attrs]
    trained = [t for t in complete if "duplicate_of" not in t.user_attrs]
    assert duplicates and outcome.counts["duplicates"] == len(duplicates)
    assert len({t.user_attrs["architecture"]["index"] for t in trained}) == len(trained)
    by_number = {t.number: t for t in study.trials}
    for dup in duplicates:
        original = by_number[dup.user_attrs["duplicate_of"]]
        assert dup.value == original.value
        assert dup.user_attrs["architecture"] == original.user_attrs["architecture"]
        assert "learning_curve" not in dup.user_attrs  # nothing was trained


@pytest.mark.slow
def test_failed_trials_are_recorded_with_their_reason_and_the_study_goes_on(make_spec):
    # Half the log range is absurd: those trials diverge, the others complete.
    spec = make_spec(
        **{
            "search.learning_rate": [1e-3, 1e7],
            "train.grad_clip": 0.0,
            "search.forced_extremes": False,
            "search.trials": 4,
            "search.max_consecutive_failures": 50,
        }
    )
    outcome = run_study(spec)
    assert outcome.counts["finished"] == 4 and outcome.counts["failed"] >= 1
    failed = [r for r in read_trial_records(spec.run_dir) if r["state"] == "FAIL"]
    assert failed and all("diverged" in r["failure_reason"] for r in failed)


@pytest.mark.parametrize("pruner", ["median", "successive_halving", "hyperband"])
@pytest.mark.slow
def test_pruning_stops_trials_behind_the_others(make_spec, pruner):
    # Learning rates down to 1e-7 barely move the loss: those trials fall behind.
    spec = make_spec(
        **{
            "search.pruner": pruner,
            "search.pruner_warmup_epochs": 1,
            "search.learning_rate": [1e-7, 3e-3],
            "search.forced_extremes": False,
            "search.n_startup_trials": 12,
            "search.trials": 12,
            "train.max_epochs": 6,
            "train.patience": 6,
        }
    )
    outcome = run_study(spec)
    assert outcome.counts["finished"] == 12 and outcome.counts["pruned"] >= 1
    for record in read_trial_records(spec.run_dir):
        if record["state"] == "PRUNED":
            assert record["value"] is None and record["last_value"] is not None
            assert 1 <= record["epochs_run"] < 6
            assert record["val_metrics"] is None


def test_a_trial_stops_on_the_search_patience_and_a_retraining_on_the_train_patience(
    make_spec,
):
    # A min_delta no epoch can reach: every epoch after the first is without improvement,
    # so a run lasts exactly 1 + patience epochs.
    spec = make_spec(
        **{
            "search.trials": 1,
            "search.forced_extremes": False,
            "search.patience": 1,
            "train.patience": 3,
            "train.max_epochs": 8,
            "train.min_delta": 10.0,
        }
    )
    run_study(spec)
    (record,) = read_trial_records(spec.run_dir)
    assert record["state"] == "COMPLETE" and record["epochs_run"] == 2
    arch_index = record["architecture"]["index"]
    retrained = train_configuration(prepare(spec), spec.config, arch_index, record["params"])
    assert retrained.epochs_run == 4


def test_the_gp_sampler_models_the_loss_as_noisy_and_runs_a_study(make_spec):
    spec = make_spec(**{"search.sampler": "gp", "search.n_startup_trials": 2, "search.trials": 4})
    sampler = make_sampler(spec.config, seed=0)
    assert isinstance(sampler, optuna.samplers.GPSampler)
    outcome = run_study(spec)
    assert outcome.counts["finished"] == 4
    params = [r["params"] for r in read_trial_records(spec.run_dir)]
    assert len({tuple(sorted(p.items())) for p in params}) == 4  # the GP proposed anew
