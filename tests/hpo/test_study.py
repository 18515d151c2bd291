"""Studies run in-process on a real journal storage: exact counts, resume, forced
extremes, duplicate reuse, graceful stop, dead workers, refusing another grid,
moving a study between storages."""

import json
import time

import optuna
import pytest
from optuna.trial import TrialState

from finscale.errors import InputError, RunError
from finscale.hpo.attrs import FORCED_ATTR
from finscale.hpo.control import request_stop
from finscale.hpo.records import read_trial_records, state_counts
from finscale.hpo.reaper import reap_dead_trials, worker_identity
from finscale.hpo.spec import prepare
from finscale.hpo.storage import enqueued_params, open_storage
from finscale.hpo.study import create_or_load, import_trials, run_study


def load(spec):
    return optuna.load_study(study_name=spec.study_name, storage=open_storage(spec.storage))


def finished(study):
    return [t for t in study.trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]


def test_study_reaches_the_count_and_resumes_to_a_larger_one(make_spec):
    spec = make_spec()
    first = run_study(spec)
    assert first.created and first.finished
    assert first.counts["finished"] == 8
    study = load(spec)
    forced = [t.user_attrs[FORCED_ATTR] for t in study.trials if FORCED_ATTR in t.user_attrs]
    assert len(forced) == len(set(forced)) == len(study.user_attrs["forced_extremes"]) >= 4
    # Forced extremes are the first trials.
    assert all(FORCED_ATTR in t.user_attrs for t in study.trials[: len(forced)])

    bigger = make_spec(**{"search.trials": 11})
    second = run_study(bigger)
    assert not second.created
    study = load(spec)
    assert len(finished(study)) == 11
    forced_again = [t for t in study.trials if FORCED_ATTR in t.user_attrs]
    assert len(forced_again) == len(forced), "forced extremes were enqueued again on resume"

    # Every finished trial has a valid record; the best file agrees with the storage.
    records = read_trial_records(spec.run_dir)
    assert [r["number"] for r in records] == [
        t.number for t in study.trials if t.state.is_finished()
    ]
    best = json.loads((spec.run_dir / "tiny_best.json").read_text())
    assert best["best_value"] == study.best_value and best["best_trial"] == study.best_trial.number
    assert best["counts"]["finished"] == 11
    everything = json.loads((spec.run_dir / "tiny_all_trials.json").read_text())
    values = [r["value"] if r["value"] is not None else r["last_value"] for r in everything]
    assert values == sorted(values) and len(everything) == 11
    record = records[0]
    assert record["architecture"]["param_count"] > 0
    assert record["batch"]["micro_batch"] * record["batch"]["accumulation_steps"] >= 256
    assert len(record["learning_curve"]) == record["epochs_run"] > 0
    assert record["split_statistics"]["train"]["samples"] > 0
    assert record["resources"][0]["rss_bytes"] > 0
    assert set(record["confusion_matrix"][0]) <= set(range(10**6))


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


def test_resuming_on_another_grid_is_refused(make_spec):
    spec = make_spec(**{"search.trials": 2})
    run_study(spec)
    other = make_spec(**{"search.trials": 2, "model.n_heads": [2]})
    with pytest.raises(InputError, match="grid"):
        create_or_load(other, prepare(other))


def test_deadline_stops_mid_trial_and_resume_reruns_that_configuration_first(make_spec):
    slow = {"train.max_epochs": 200, "train.patience": 200, "search.trials": 3}
    spec = make_spec(**slow)
    prepared = prepare(spec)
    stopped = run_study(
        type(spec)(**{**spec.__dict__, "deadline": time.time() + 3.0}), prepared=prepared
    )
    assert stopped.stop_reason and "time limit" in stopped.stop_reason
    study = load(spec)
    failed = [t for t in study.trials if t.state == TrialState.FAIL]
    assert len(failed) == 1 and failed[0].user_attrs["failed_for_resume"]
    assert 0 < failed[0].user_attrs["epochs_run"] < 200  # it finished its current epoch
    record = json.loads(
        (spec.run_dir / "trials" / f"trial_{failed[0].number:04d}.json").read_text()
    )
    assert record["state"] == "FAIL" and "stopped" in record["failure_reason"]

    # The resume runs the stopped configuration first, then reaches exactly 3.
    resumed = run_study(make_spec(**{**slow, "train.max_epochs": 2}))
    assert resumed.finished
    study = load(spec)
    retry = next(t for t in study.trials if t.user_attrs.get("retry_of") == failed[0].number)
    assert retry.params == failed[0].params and retry.state == TrialState.COMPLETE
    assert len(finished(study)) == 3


def test_stop_file_stops_before_the_next_trial(make_spec):
    spec = make_spec(**{"search.trials": 6})
    calls = []

    def on_trial(study, trial, outcome, counts, worker):
        calls.append(trial.number)
        request_stop(spec.run_dir)

    outcome = run_study(spec, on_trial=on_trial)
    assert calls == [0] and outcome.counts["finished"] == 1
    assert "stop requested" in outcome.stop_reason


def test_a_dead_workers_trial_is_failed_and_requeued(make_spec):
    spec = make_spec(**{"search.trials": 3})
    prepared = prepare(spec)
    study, _ = create_or_load(spec, prepared)
    # A trial left running by a process that no longer exists.
    trial = study.ask()
    trial.suggest_int("d_model_rank", 0, 1)
    identity = worker_identity(0) | {"pid": 2**22 + 12345}
    trial.set_user_attr("worker", identity)
    # A trial of a live worker (this process) is left alone.
    live = study.ask()
    live.set_user_attr("worker", worker_identity(0))
    assert reap_dead_trials(study, spec.run_dir) == [trial.number]
    dead = study.trials[trial.number]
    assert dead.state == TrialState.FAIL and "died" in dead.user_attrs["fail_reason"]
    assert study.trials[live.number].state == TrialState.RUNNING
    retry = [t for t in study.trials if t.user_attrs.get("retry_of") == trial.number]
    assert len(retry) == 1 and retry[0].state == TrialState.WAITING
    assert enqueued_params(retry[0]) == dead.params
    study.tell(live, state=TrialState.FAIL)


def test_import_trials_rebuilds_the_study_in_another_storage(make_spec, tmp_path):
    spec = make_spec(**{"search.trials": 5})
    run_study(spec)
    source = load(spec)
    target_dir = tmp_path / "moved"
    created = import_trials(spec.run_dir, str(target_dir / "other.journal"), target_dir)
    assert created["trials"] == len([t for t in source.trials if t.state.is_finished()])
    moved = optuna.load_study(
        study_name="tiny", storage=open_storage(str(target_dir / "other.journal"))
    )

    def key(t):
        return (t.state, t.value, t.params, t.intermediate_values, t.user_attrs.get("architecture"))

    assert [key(t) for t in moved.trials] == [
        key(t) for t in source.trials if t.state.is_finished()
    ]
    assert moved.user_attrs["grid_hash"] == source.user_attrs["grid_hash"]
    # The imported study resumes like the original: no forced extremes again.
    resumed = run_study(
        make_spec(run_dir=target_dir, **{"search.trials": 6}).__class__(
            **{
                **make_spec(run_dir=target_dir, **{"search.trials": 6}).__dict__,
                "storage": str(target_dir / "other.journal"),
            }
        )
    )
    assert resumed.counts["finished"] == 6
    assert state_counts(moved.trials)["waiting"] == 0
    with pytest.raises(InputError, match="already exists"):
        import_trials(spec.run_dir, str(target_dir / "other.journal"), target_dir)


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


def test_a_worker_gives_up_after_too_many_failures_in_a_row(make_spec):
    spec = make_spec(
        **{
            "search.learning_rate": [1e6, 1e7],
            "train.grad_clip": 0.0,
            "search.forced_extremes": False,
            "search.max_consecutive_failures": 3,
        }
    )
    with pytest.raises(RunError, match="3 trials in a row failed, the last with: TrainingDiverged"):
        run_study(spec)
    assert len(read_trial_records(spec.run_dir)) == 3


@pytest.mark.parametrize("pruner", ["median", "hyperband"])
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
